//! The PostgreSQL store: all SQL lives in this module's files, each named for what it
//! stores or reads.
//!
//! - `events`: every accepted event, once (the evidence);
//! - `records`: the current version of every record, and post withdrawals;
//! - `tallies`: the indicator values, and the announcement of changed totals;
//! - `rejections`: what could not be counted, and why;
//! - `read`: what the API and CLI read; `recompute`: rebuilds every tally from the
//!   records; `tracking`: the social posts the collector polls.
//!
//! # How several workers stay exact
//!
//! Any number of workers may consume the queue at once, and any of them may be killed at
//! any point. Each batch is one transaction (`crate::apply`): it inserts its events, then
//! takes one transaction-level advisory lock, [`APPLY_LOCK`], and holds it until it
//! commits or rolls back; `recompute` takes it too.
//!
//! - An event is stored once: its key (`source`, `id`) is unique. A batch inserts its
//!   events with `on conflict do nothing`; one that another open transaction holds waits
//!   for it, then is a duplicate if that one commits, or inserted if it rolls back.
//! - Everything after the inserts runs under the lock, so batches move current versions
//!   and tallies one at a time, each seeing what the batches before it committed: the plan
//!   it makes (`ledger::plan`) is right, tallies move by exact deltas, and nothing is
//!   lost to a concurrent update. The latest version wins whatever the order of the
//!   batches, so the order they take the lock in does not matter.
//! - No deadlock: a batch that holds the lock writes only what no batch writes without it
//!   (records, tallies, rejections without unique keys), so it never waits for a batch
//!   that waits for the lock.
//! - A message is acknowledged only after its batch committed. A worker killed before the
//!   commit leaves nothing behind, and its messages are redelivered; killed after the
//!   commit but before the acknowledgement, its messages come back as duplicates.
//!
//! A worker starts the next batch while the current one is applied (`consumer`): its
//! events are inserted while the current batch holds the lock, so both of PostgreSQL's
//! connections work at once. A second worker is for availability; on two cores shared
//! with PostgreSQL and RabbitMQ it drains about as fast as one (docs/performance.md).

pub mod events;
pub mod frameworks;
pub mod primary;
pub mod read;
pub mod recompute;
pub mod records;
pub mod rejections;
pub mod tallies;
pub mod tracking;

use std::net::IpAddr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use crate::config::redact;

/// The transaction-level advisory lock every batch and every recompute holds (see above).
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
    #[error("no host of {url} accepts writes: {hosts}")]
    NoPrimary { url: String, hosts: String },
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
///
/// When `url` lists several hosts ([`primary`]), the pool's connections go only to the one
/// that accepts writes, and a task follows it (one more connection) until the pool is
/// closed; this must then be called within the Tokio runtime.
pub fn connect(url: &str, max_connections: u32, timeout: Duration) -> Result<PgPool, ConnectError> {
    open(url, max_connections, timeout, None)
}

/// Opens the API's pool for reads that query (evidence, exports): at most `connections`,
/// each statement cancelled by PostgreSQL after `statement_timeout`, so that readers can
/// neither take the worker's connections nor hold one for long. It follows the primary as
/// [`connect`]'s pool does.
pub fn connect_readers(
    url: &str,
    connections: u32,
    timeout: Duration,
    statement_timeout: Duration,
) -> Result<PgPool, ConnectError> {
    open(url, connections.max(1), timeout, Some(statement_timeout))
}

/// A pool on `url`'s first host, or on the one that accepts writes (see [`connect`]), whose
/// connections cancel statements after `statement_timeout` if given. The limit is set on
/// each new connection, so that it holds on whichever host the pool moves to.
fn open(
    url: &str,
    max_connections: u32,
    timeout: Duration,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, ConnectError> {
    let hosts = primary::Hosts::parse(url)?;
    let writable_only = hosts.writable_only();
    let limit = statement_timeout.map(|t| format!("{}ms", t.as_millis()));
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .after_connect(move |connection, _| {
            let limit = limit.clone();
            Box::pin(async move {
                if writable_only {
                    primary::refuse_standby(connection).await?;
                }
                if let Some(limit) = limit {
                    sqlx::query_scalar!("select set_config('statement_timeout', $1, false)", limit)
                        .fetch_one(&mut *connection)
                        .await?;
                }
                Ok(())
            })
        })
        .connect_lazy_with(hosts.first());
    if writable_only {
        tokio::spawn(primary::follow(pool.clone(), hosts, timeout));
    }
    Ok(pool)
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
/// that a batch keeps to index look-ups (see [`lock_for_apply`]) can pass `jit_above_cost`,
/// which made PostgreSQL spend ~80 ms compiling a one-row update.
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    let options: PgConnectOptions = url.parse::<PgConnectOptions>()?.options([("jit", "off")]);
    let host = options.get_host();
    let loopback =
        host == "localhost" || host.starts_with('/') || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(if loopback && !url.contains("sslmode") { options.ssl_mode(PgSslMode::Disable) } else { options })
}

/// Applies the pending migrations, loads the shipped default framework if no framework is
/// loaded, then rebuilds the tallies if a migration changed stored records (see
/// [`recompute::if_pending`]).
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await?;
    if let Some(loaded) = recompute::load_default_if_none(pool).await? {
        tracing::info!(framework = loaded.id, records = loaded.records, "Loaded the default framework.");
    }
    recompute::if_pending(pool).await?;
    Ok(())
}

/// Takes the apply lock for the rest of the transaction.
pub async fn lock(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_xact_lock($1) as locked", APPLY_LOCK).fetch_one(&mut *tx).await?;
    Ok(())
}

/// Takes the apply lock for the rest of the transaction, and keeps the planner to index
/// look-ups: every statement of a batch looks rows up by key, a few hundred or thousand at
/// a time, and left to its estimates the planner sometimes joins them to a whole-table
/// scan, whose cost grows with the table.
pub async fn lock_for_apply(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select pg_advisory_xact_lock($1) as locked, set_config('enable_seqscan', 'off', true) as seqscan,
            set_config('enable_hashjoin', 'off', true) as hashjoin,
            set_config('enable_mergejoin', 'off', true) as mergejoin",
        APPLY_LOCK
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(())
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
