//! Applying a batch of messages: the one way every event goes from bytes to tallies.
//!
//! In one transaction (see `store` for why this keeps several workers exact):
//! 1. store the batch's new events (an event already stored is a duplicate);
//! 2. take the apply lock, and load the frameworks (if they changed) and the current
//!    versions of every record they name;
//! 3. decide, with [`ledger::plan`], which versions become current;
//! 4. write the new current versions, and meanwhile add up how the tallies move
//!    ([`ledger::Plan::delta`]); move the tallies, keep the rejections, and announce the
//!    changed tally rows (to the API's values in memory and the live streams);
//! 5. commit. The consumer acknowledges the messages only after that.

use std::collections::BTreeMap;

use sqlx::PgPool;

use crate::envelope::{Decoded, Reason};
use crate::ledger;
use crate::store::events::{self, Arrived};
use crate::store::tallies::{self, TotalChange};
use crate::store::{self, frameworks, records, rejections};

/// One message taken from the broker, decoded.
#[derive(Debug)]
pub struct Message {
    pub routing_key: String,
    /// The AMQP headers, as JSON (kept with rejections).
    pub headers: serde_json::Value,
    /// The body's size in bytes.
    pub size: usize,
    pub decoded: Decoded,
    /// The message may have been applied before (redelivered by the broker, or its batch
    /// retried after a failure whose commit may have gone through): its rejections are
    /// stored only if not already there.
    pub maybe_applied: bool,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub duplicates: usize,
    pub stale: usize,
    pub rejected: Vec<Reason>,
    pub totals: Vec<TotalChange>,
}

/// Why a batch was not applied. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database cannot be reached (connection lost or refused, pool exhausted, server
    /// restarting): retry.
    #[error("database unreachable: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// The database is there but gave way (serialization failure, deadlock, out of
    /// resources): retry.
    #[error("database busy: {0}")]
    Busy(#[source] sqlx::Error),
    /// The database refused the batch (a constraint, a trigger, a value it cannot hold):
    /// retrying the same batch cannot help.
    #[error("the database refused the batch: {0}")]
    Refused(#[source] sqlx::Error),
    /// A stored current version does not decode: retrying cannot help either.
    #[error("the stored record {what} cannot be read: {detail}")]
    Corrupt { what: String, detail: String },
    /// A framework stored in the database does not read with this version of the service:
    /// retried (nothing is rejected for it) until the framework is loaded again or removed.
    #[error("{0}")]
    Framework(String),
}

impl ApplyError {
    /// Whether the error may go away by itself: retry the batch, never reject it.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApplyError::Unreachable(_) | ApplyError::Busy(_) | ApplyError::Framework(_))
    }
}

impl From<frameworks::ReadError> for ApplyError {
    fn from(error: frameworks::ReadError) -> ApplyError {
        match error {
            frameworks::ReadError::Database(e) => e.into(),
            unreadable => ApplyError::Framework(unreadable.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApplyError {
    fn from(error: sqlx::Error) -> ApplyError {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => ApplyError::Unreachable(error),
            sqlx::Error::Database(db) => match db.code().as_deref().unwrap_or_default() {
                // 08: connection exception; 57P0x: server shutting down or starting.
                code if code.starts_with("08") || code.starts_with("57P") => ApplyError::Unreachable(error),
                // Serialization failure, deadlock; 53: insufficient resources.
                code if code == "40001" || code == "40P01" || code.starts_with("53") => ApplyError::Busy(error),
                _ => ApplyError::Refused(error),
            },
            _ => ApplyError::Refused(error),
        }
    }
}

/// Applies `messages` in one transaction; nothing is written if it fails.
pub async fn apply(pool: &PgPool, messages: &[Message]) -> Result<Outcome, ApplyError> {
    let mut tx = pool.begin().await?;
    let arrived = messages.iter().flat_map(|message| {
        let routing_key = message.routing_key.as_str();
        message.decoded.events.iter().map(move |event| Arrived { routing_key, event })
    });
    let (unique, repeated) = events::unique(arrived);
    let new_events = events::insert(&mut tx, &unique).await?;
    store::lock_for_apply(&mut tx).await?;
    let frameworks = frameworks::current(&mut tx).await?;

    let before = records::load(&mut tx, new_events.iter().map(|&(_, event)| event)).await?;
    let plan = ledger::plan(&before, &new_events);

    // The tallies' delta is added up while PostgreSQL writes the records: the write is
    // polled first, so its statement is sent before the delta takes the thread.
    let (written, delta) =
        tokio::join!(records::write(&mut tx, &plan, &before), async { plan.delta(&before, &frameworks) });
    written?;
    let rows = tallies::apply(&mut tx, delta, &frameworks).await?;
    let rejected = rejections::insert(&mut tx, messages).await?;
    // Every batch that stored an event is announced, even one that moved no tally: the
    // evidence changed (a new version, current or not).
    if !rows.is_empty() || !new_events.is_empty() {
        tallies::notify(&mut tx, &rows).await?;
    }
    tx.commit().await?;

    Ok(Outcome {
        applied: plan.applied,
        duplicates: repeated + unique.len() - new_events.len(),
        stale: plan.stale,
        rejected,
        totals: rows.iter().filter_map(tallies::RowChange::total).collect(),
    })
}

/// Rejection counts by reason, for logs.
pub fn count_reasons(reasons: &[Reason]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason.as_str()).or_default() += 1;
    }
    counts
}
