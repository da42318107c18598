//! What readiness depends on, shared by the consumer and the HTTP API.

use std::sync::atomic::{AtomicBool, Ordering};

/// Flags set by the worker as it starts, and cleared when a dependency is lost.
#[derive(Debug, Default)]
pub struct Health {
    migrated: AtomicBool,
    consuming: AtomicBool,
    database_ok: AtomicBool,
}

impl Health {
    pub fn set_migrated(&self) {
        self.migrated.store(true, Ordering::Relaxed);
    }

    /// The topology is declared and the consumer runs (false while reconnecting).
    pub fn set_consuming(&self, on: bool) {
        crate::metrics::broker_up(on);
        self.consuming.store(on, Ordering::Relaxed);
    }

    /// The last database operation succeeded (false while batches are being retried).
    pub fn set_database_ok(&self, ok: bool) {
        crate::metrics::database_up(ok);
        self.database_ok.store(ok, Ordering::Relaxed);
    }

    /// Why the worker is not ready, or `None` when it is.
    pub fn not_ready_because(&self) -> Option<&'static str> {
        if !self.migrated.load(Ordering::Relaxed) {
            Some("migrations not applied yet")
        } else if !self.consuming.load(Ordering::Relaxed) {
            Some("not consuming from RabbitMQ")
        } else if !self.database_ok.load(Ordering::Relaxed) {
            Some("database unreachable")
        } else {
            None
        }
    }
}
