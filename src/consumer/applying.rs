//! Applying batches: apply, then acknowledge; retry what may go away by itself; apply a
//! batch the database refuses message by message, so that only the messages at fault go
//! back to the queue (and, after the delivery limit, to the dead-letter queue).

use std::time::Duration;

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::sleep;
use tracing::{debug, error, warn};

use super::deliveries::Batch;
use crate::apply::{self, ApplyError, Message, Outcome};
use crate::backoff::Backoff;
use crate::broker::BrokerError;
use crate::health::Health;
use crate::metrics;
use crate::telemetry::one_line;

/// What applying needs, kept from one batch to the next.
pub(super) struct Applier<'a> {
    pub(super) channel: &'a Channel,
    pub(super) pool: &'a PgPool,
    pub(super) health: &'a Health,
    pub(super) backoff: Backoff,
    pub(super) shutdown: watch::Receiver<bool>,
}

/// How applying some messages ended.
enum Applied {
    Done(Outcome),
    /// Shutdown came while the database work was being retried.
    ShuttingDown,
    /// The database refused them: retrying the same messages cannot help.
    Refused(ApplyError),
}

impl Applier<'_> {
    /// Acknowledges `batch` once applied: `first` is how its first attempt ended, after
    /// `took`; a failure is retried, or the batch applied message by message. Returns
    /// `false` when shutdown came while the database was unavailable (the batch is left
    /// unacknowledged, to be redelivered).
    pub(super) async fn settle(
        &mut self,
        mut batch: Batch,
        first: Result<Outcome, ApplyError>,
        took: Duration,
    ) -> Result<bool, BrokerError> {
        let applied = match first {
            Ok(outcome) => {
                self.committed(batch.messages.len(), &outcome, took);
                Applied::Done(outcome)
            }
            Err(e) if e.is_transient() => {
                may_have_committed(&mut batch.messages);
                warn!(error = one_line(&e), "Batch not applied; applying it again.");
                self.apply_with_retry(&mut batch.messages).await
            }
            Err(e) => Applied::Refused(e),
        };
        match applied {
            Applied::Done(outcome) => {
                let last = *batch.tags.last().expect("a batch is never empty");
                self.channel.basic_ack(last, BasicAckOptions { multiple: true }).await?;
                log_outcome(batch.messages.len(), &outcome);
                Ok(true)
            }
            Applied::ShuttingDown => Ok(false),
            Applied::Refused(e) => {
                warn!(
                    error = one_line(&e),
                    messages = batch.messages.len(),
                    "Batch refused by the database; applying its messages one by one."
                );
                self.one_by_one(batch).await
            }
        }
    }

    /// Applies each message of a refused batch alone; a message the database still refuses
    /// goes back to the queue, and after the delivery limit the broker moves it to the
    /// dead-letter queue, where it is kept for an operator.
    async fn one_by_one(&mut self, batch: Batch) -> Result<bool, BrokerError> {
        for (tag, mut message) in batch.tags.into_iter().zip(batch.messages) {
            message.maybe_applied = true;
            match self.apply_with_retry(std::slice::from_mut(&mut message)).await {
                Applied::Done(outcome) => {
                    self.channel.basic_ack(tag, BasicAckOptions::default()).await?;
                    log_outcome(1, &outcome);
                }
                Applied::ShuttingDown => return Ok(false),
                Applied::Refused(e) => {
                    error!(
                        error = one_line(&e),
                        routing_key = %message.routing_key,
                        "Message cannot be applied; returning it to the queue."
                    );
                    metrics::message_returned();
                    self.channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue: true }).await?;
                }
            }
        }
        Ok(true)
    }

    /// Applies `messages`, retrying transient failures with backoff until shutdown.
    async fn apply_with_retry(&mut self, messages: &mut [Message]) -> Applied {
        loop {
            let started = std::time::Instant::now();
            match apply::apply(self.pool, messages).await {
                Ok(outcome) => {
                    self.committed(messages.len(), &outcome, started.elapsed());
                    return Applied::Done(outcome);
                }
                Err(e) if e.is_transient() => {
                    may_have_committed(messages);
                    let line = one_line(&e);
                    self.health.set_database_retrying(matches!(e, ApplyError::Unreachable(_)), &line);
                    metrics::batch_retried();
                    let wait = self.backoff.next_wait();
                    warn!(error = line, retry_in_ms = wait.as_millis() as u64, "Batch not applied; retrying.");
                    tokio::select! {
                        _ = sleep(wait) => {}
                        _ = self.shutdown.wait_for(|stop| *stop) => return Applied::ShuttingDown,
                    }
                }
                Err(e) => return Applied::Refused(e),
            }
        }
    }

    /// After a commit: metrics, health, and the backoff starts over.
    fn committed(&mut self, messages: usize, outcome: &Outcome, took: Duration) {
        metrics::batch_committed(messages, outcome, took);
        self.health.set_database_ok();
        self.backoff.reset();
    }
}

/// After a transient failure: the commit may have gone through before the connection was
/// lost, so the messages' rejections are stored again only if not already there.
fn may_have_committed(messages: &mut [Message]) {
    messages.iter_mut().for_each(|m| m.maybe_applied = true);
}

fn log_outcome(messages: usize, outcome: &Outcome) {
    debug!(
        messages,
        applied = outcome.applied,
        duplicates = outcome.duplicates,
        stale = outcome.stale,
        rejected = ?apply::count_reasons(&outcome.rejected),
        totals_changed = outcome.totals.len(),
        "Committed batch."
    );
}
