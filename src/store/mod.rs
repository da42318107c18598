//! The PostgreSQL store: all SQL lives in this module's files.
//!
//! - `batch`: applies a batch of messages in one transaction;
//! - `read`: what the API and CLI read (tallies, rejections);
//! - `recompute`: rebuilds every tally from the stored records;
//! - `tracking`: the social posts the collector polls.

pub mod batch;
pub mod known;
pub mod read;
pub mod recompute;
pub mod tracking;

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::config::redact;

/// Every batch and every recompute holds this transaction-level advisory lock, so that
/// worker processes apply their batches one at a time: tallies cannot suffer lost
/// updates or deadlocks, whatever the number of workers.
const APPLY_LOCK: i64 = 0x4543_5041_5431;

/// Why no connection to PostgreSQL could be made, with the URL's password removed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid PostgreSQL URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("PostgreSQL at {url} did not answer within {} s", .timeout.as_secs_f32())]
    TimedOut { url: String, timeout: Duration },
    #[error("PostgreSQL at {url} refused the connection: {reason}")]
    Refused { url: String, reason: String },
    #[error("cannot reach PostgreSQL at {url}")]
    Unreachable { url: String, source: sqlx::Error },
}

impl ConnectError {
    /// What `error`, met while connecting to `url`, means.
    pub fn from_sqlx(url: &str, error: sqlx::Error, timeout: Duration) -> ConnectError {
        let url = redact(url);
        match error {
            sqlx::Error::Configuration(reason) => ConnectError::InvalidUrl { url, reason: reason.to_string() },
            sqlx::Error::PoolTimedOut => ConnectError::TimedOut { url, timeout },
            // A missing role or database, a wrong password, no more connections allowed.
            sqlx::Error::Database(db) => ConnectError::Refused { url, reason: db.message().to_owned() },
            source => ConnectError::Unreachable { url, source },
        }
    }
}

/// Opens a pool. Connections are made lazily, so a worker starts while the database is
/// down and reports not ready until it is back; opening one, or waiting for one, takes at
/// most `timeout`.
pub fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<PgPool, ConnectError> {
    check_url(url)?;
    let options = connect_options(url).map_err(|e| ConnectError::from_sqlx(url, e, timeout))?;
    Ok(PgPoolOptions::new().max_connections(max_connections).acquire_timeout(timeout).connect_lazy_with(options))
}

/// Checks that `url` is a PostgreSQL URL: sqlx reads any scheme (`mysql://`, `http://`) as
/// one, and would then try to speak PostgreSQL to whatever answers.
pub fn check_url(url: &str) -> Result<(), ConnectError> {
    let invalid = |reason: String| ConnectError::InvalidUrl { url: redact(url), reason };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    match parsed.scheme() {
        "postgres" | "postgresql" => Ok(()),
        other => Err(invalid(format!("the scheme must be postgres:// or postgresql://, not {other}://"))),
    }
}

/// The URL's options; on a loopback host with no `sslmode` in the URL, TLS is off: it
/// protects nothing there and cost two thirds of the throughput (docs/performance.md).
/// Anywhere else the URL decides (sqlx's default is `prefer`).
///
/// JIT compilation is off: every query here is short, and the planner's cost of a plan
/// that a batch keeps to index look-ups (see `store::batch`) can pass `jit_above_cost`,
/// which made PostgreSQL spend ~80 ms compiling a one-row update.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse::<PgConnectOptions>()?.options([("jit", "off")]);
    let host = options.get_host();
    let loopback =
        host == "localhost" || host.starts_with('/') || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(if loopback && !url.contains("sslmode") { options.ssl_mode(PgSslMode::Disable) } else { options })
}

/// Applies the pending migrations, then rebuilds the tallies if one of them changed stored
/// records (see [`recompute::if_pending`]).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    sqlx::migrate!("./migrations").run(pool).await?;
    recompute::if_pending(pool).await.map_err(sqlx::migrate::MigrateError::Execute)?;
    Ok(())
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
            code.starts_with("08")
                || code == "40001"
                || code == "40P01"
                || code.starts_with("53")
                || code.starts_with("57P")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_off_on_loopback_unless_the_url_asks_for_it() {
        let mode = |url: &str| format!("{:?}", connect_options(url).unwrap().get_ssl_mode());
        assert_eq!(mode("postgres://u@127.0.0.1:5432/db"), "Disable");
        assert_eq!(mode("postgres://u@localhost/db"), "Disable");
        assert_eq!(mode("postgres://u@127.0.0.1/db?sslmode=require"), "Require");
        assert_eq!(mode("postgres://u@db.example.org/db"), "Prefer");
    }
}
