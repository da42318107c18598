//! What readiness depends on, shared by the consumer and the HTTP API.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Flags set by the worker as it starts, and cleared when a dependency is lost.
#[derive(Debug, Default)]
pub struct Health {
    migrated: AtomicBool,
    consuming: AtomicBool,
    /// Why the database work is being retried, while it is (`None` before the first).
    database: Mutex<Option<String>>,
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

    /// The last database operation succeeded.
    pub fn set_database_ok(&self) {
        crate::metrics::database_up(true);
        *self.database.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The last database operation failed and is being retried: `unreachable`, or busy
    /// (`why`, e.g. a deadlock or no more room).
    pub fn set_database_retrying(&self, unreachable: bool, why: &str) {
        crate::metrics::database_up(!unreachable);
        let reason = if unreachable { "database unreachable".to_owned() } else { format!("database busy: {why}") };
        *self.database.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Why the worker is not ready, or `None` when it is.
    pub fn not_ready_because(&self) -> Option<String> {
        if !self.migrated.load(Ordering::Relaxed) {
            Some("migrations not applied yet".into())
        } else if !self.consuming.load(Ordering::Relaxed) {
            Some("not consuming from RabbitMQ".into())
        } else {
            self.database.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }
}
