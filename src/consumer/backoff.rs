//! Waits between retries: exponential, with jitter, between the configured bounds.

use std::time::Duration;

use crate::config::Settings;

/// Exponential backoff with jitter, between the configured bounds.
pub(super) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(super) fn new(settings: &Settings) -> Self {
        let initial = Duration::from_millis(settings.consumer.retry_initial_ms);
        Backoff { initial, max: Duration::from_millis(settings.consumer.retry_max_ms), current: initial }
    }

    pub(super) fn next(&mut self) -> Duration {
        let wait = self.current;
        self.current = (self.current * 2).min(self.max);
        // Up to 25% jitter, so that several workers do not retry in step.
        let jitter = wait.as_millis() as u64 * (u64::from(std::process::id()) % 7 + rand_nanos() % 19) / 100;
        wait + Duration::from_millis(jitter)
    }

    /// The longest wait (and the waits after it stay there until a reset).
    pub(super) fn longest(&mut self) -> Duration {
        self.current = self.max;
        self.next()
    }

    pub(super) fn reset(&mut self) {
        self.current = self.initial;
    }
}

fn rand_nanos() -> u64 {
    u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0))
}
