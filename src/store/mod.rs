//! The PostgreSQL store: all SQL lives in this module's files.
//!
//! - `batch`: applies a batch of messages in one transaction;
//! - `read`: what the API and CLI read (tallies, rejections);
//! - `recompute`: rebuilds every tally from the stored records;
//! - `tracking`: the social posts the collector polls.

pub mod batch;
pub mod read;
pub mod recompute;
pub mod tracking;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// Every batch and every recompute holds this transaction-level advisory lock, so that
/// worker processes apply their batches one at a time: tallies cannot suffer lost
/// updates or deadlocks, whatever the number of workers.
const APPLY_LOCK: i64 = 0x4543_5041_5431;

/// Opens a pool. Connections are made lazily, so a worker starts while the database is
/// down and reports not ready until it is back.
pub fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy(url)
}

/// Applies the pending migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await
}

/// Whether an error may go away by itself (connection lost, pool exhausted, server
/// restarting, serialization failure or deadlock): retry, never reject, for those.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 40001/40P01: serialization failure, deadlock;
            // 53: insufficient resources; 57P0x: server shutting down or starting.
            code.starts_with("08") || code == "40001" || code == "40P01" || code.starts_with("53") || code.starts_with("57P")
        }),
        _ => false,
    }
}
