//! Placeholder replaced by the test suite.
