//! The consumer loop: take messages in batches, apply each batch in one transaction,
//! acknowledge after commit; retry transient database failures; reconnect to the broker.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{debug, error, info, warn};

use crate::broker::{self, BrokerError, headers_json};
use crate::config::{Consumer as ConsumerSettings, Settings};
use crate::envelope::decode;
use crate::health::Health;
use crate::metrics;
use crate::store::batch::{self, Message, Outcome};
use crate::store::is_transient;

/// Runs until `shutdown` turns true: consumes, reconnecting whenever the broker is lost.
pub async fn run(settings: Settings, pool: PgPool, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(&settings);
    while !*shutdown.borrow() {
        match session(&settings, &pool, &health, &mut shutdown).await {
            Ok(()) => break,
            Err(e) => {
                health.set_consuming(false);
                let wait = backoff.next();
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Lost the broker; reconnecting.");
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            }
        }
    }
    health.set_consuming(false);
    info!("Consumer stopped.");
}

/// A batch of deliveries, decoded.
type Batch = Vec<(Delivery, Message)>;

/// One connection's life: declare, consume, apply batches. Returns `Ok` on shutdown.
///
/// A reader task takes and decodes the next batch while the current one is applied, so
/// decoding overlaps the database's work; batches are applied (and acknowledged) in order.
async fn session(
    settings: &Settings,
    pool: &PgPool,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    let name = format!("ecpat-indicators worker pid {}", std::process::id());
    let connection = broker::connect(&settings.amqp, &name).await?;
    let channel = connection.create_channel().await?;
    broker::declare_topology(&channel, &settings.amqp).await?;
    channel.basic_qos(settings.amqp.prefetch, BasicQosOptions::default()).await?;
    let tag = format!("ecpat-indicators-{}", std::process::id());
    let consumer = channel
        .basic_consume(
            settings.amqp.queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    health.set_consuming(true);
    info!(queue = %settings.amqp.queue, "Consuming.");

    let (sender, mut batches) = mpsc::channel::<Batch>(1);
    let reader = tokio::spawn(read_batches(consumer, settings.consumer.clone(), sender, shutdown.clone()));
    let mut backoff = Backoff::new(settings);
    let mut applied = Ok(true);
    while let Some(batch) = batches.recv().await {
        applied = process(&channel, pool, health, batch, &mut backoff, shutdown).await;
        if !matches!(applied, Ok(true)) {
            break;
        }
    }
    reader.abort();
    let read = reader.await.unwrap_or(Ok(()));
    applied?;
    read?;
    // Stop deliveries; what was prefetched but not applied goes back to the queue.
    channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await?;
    channel.close(200, "shutdown".into()).await?;
    connection.close(200, "shutdown".into()).await?;
    Ok(())
}

/// Takes deliveries into batches (full, or `batch_timeout_ms` after their first message)
/// and decodes them, until shutdown or the consumer ends.
async fn read_batches(
    mut consumer: Consumer,
    settings: ConsumerSettings,
    sender: mpsc::Sender<Batch>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    loop {
        let first = tokio::select! {
            next = consumer.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        };
        let first = match first {
            Some(delivery) => delivery?,
            None if *shutdown.borrow() => return Ok(()),
            None => return Err(BrokerError::ConsumerEnded),
        };
        let batch = fill_batch(first, &mut consumer, &settings).await?;
        if sender.send(batch).await.is_err() {
            return Ok(());
        }
    }
}

/// Adds deliveries to `first` until the batch holds `batch_size` events (or messages) or
/// its time is up, decoding each.
async fn fill_batch(
    first: Delivery,
    consumer: &mut Consumer,
    settings: &ConsumerSettings,
) -> Result<Batch, BrokerError> {
    let deadline = Instant::now() + Duration::from_millis(settings.batch_timeout_ms);
    let mut size = 0;
    let mut batch = Vec::new();
    let mut next = Some(first);
    while let Some(delivery) = next.take() {
        let message = to_message(&delivery);
        size += message.decoded.events.len().max(1);
        batch.push((delivery, message));
        if size >= settings.batch_size {
            break;
        }
        match timeout_at(deadline, consumer.next()).await {
            Ok(Some(delivery)) => next = Some(delivery?),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(batch)
}

fn to_message(delivery: &Delivery) -> Message {
    Message {
        routing_key: delivery.routing_key.as_str().to_owned(),
        headers: headers_json(delivery.properties.headers().as_ref()),
        size: delivery.data.len(),
        decoded: decode(&delivery.data),
        maybe_applied: delivery.redelivered,
    }
}

/// Applies a batch and acknowledges it. Returns `false` when shutdown came while the
/// database was unreachable (the batch is left unacknowledged, to be redelivered).
async fn process(
    channel: &Channel,
    pool: &PgPool,
    health: &Health,
    batch: Batch,
    backoff: &mut Backoff,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, BrokerError> {
    let (deliveries, mut messages): (Vec<Delivery>, Vec<Message>) = batch.into_iter().unzip();
    match apply_with_retry(pool, health, &mut messages, backoff, shutdown).await {
        Applied::Done(outcome) => {
            let last = deliveries.last().expect("a batch is never empty").delivery_tag;
            channel.basic_ack(last, BasicAckOptions { multiple: true }).await?;
            log_outcome(messages.len(), &outcome);
            Ok(true)
        }
        Applied::ShuttingDown => Ok(false),
        Applied::Failed(e) => {
            warn!(error = %e, messages = messages.len(), "Batch failed permanently; applying its messages one by one.");
            for (delivery, mut message) in deliveries.iter().zip(messages) {
                message.maybe_applied = true;
                match apply_with_retry(pool, health, std::slice::from_mut(&mut message), backoff, shutdown).await {
                    Applied::Done(outcome) => {
                        channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await?;
                        log_outcome(1, &outcome);
                    }
                    Applied::ShuttingDown => return Ok(false),
                    Applied::Failed(e) => {
                        // Back to the queue; after the delivery limit the broker moves it to
                        // the dead-letter queue, where it is kept for an operator.
                        error!(error = %e, routing_key = %message.routing_key, "Message cannot be applied; returning it to the queue.");
                        metrics::message_returned();
                        channel
                            .basic_nack(delivery.delivery_tag, BasicNackOptions { multiple: false, requeue: true })
                            .await?;
                    }
                }
            }
            Ok(true)
        }
    }
}

enum Applied {
    Done(Outcome),
    ShuttingDown,
    Failed(sqlx::Error),
}

/// Applies `messages`, retrying transient failures with backoff until shutdown.
async fn apply_with_retry(
    pool: &PgPool,
    health: &Health,
    messages: &mut [Message],
    backoff: &mut Backoff,
    shutdown: &mut watch::Receiver<bool>,
) -> Applied {
    loop {
        let started = std::time::Instant::now();
        match batch::apply(pool, messages).await {
            Ok(outcome) => {
                metrics::batch_committed(messages.len(), &outcome, started.elapsed());
                health.set_database_ok(true);
                backoff.reset();
                return Applied::Done(outcome);
            }
            Err(e) if is_transient(&e) => {
                // The commit may have gone through before the connection was lost.
                messages.iter_mut().for_each(|m| m.maybe_applied = true);
                health.set_database_ok(false);
                metrics::batch_retried();
                let wait = backoff.next();
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Database unavailable; batch not acknowledged, retrying.");
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Applied::ShuttingDown,
                }
            }
            Err(e) => return Applied::Failed(e),
        }
    }
}

fn log_outcome(messages: usize, outcome: &Outcome) {
    let rejected = batch::count_reasons(&outcome.rejected);
    debug!(
        messages,
        applied = outcome.applied,
        duplicates = outcome.duplicates,
        stale = outcome.stale,
        rejected = ?rejected,
        totals_changed = outcome.totals.len(),
        "Committed batch."
    );
}

/// Exponential backoff with jitter, between the configured bounds.
struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    fn new(settings: &Settings) -> Self {
        let initial = Duration::from_millis(settings.consumer.retry_initial_ms);
        Backoff { initial, max: Duration::from_millis(settings.consumer.retry_max_ms), current: initial }
    }

    fn next(&mut self) -> Duration {
        let wait = self.current;
        self.current = (self.current * 2).min(self.max);
        // Up to 25% jitter, so that several workers do not retry in step.
        let jitter = wait.as_millis() as u64 * (u64::from(std::process::id()) % 7 + rand_nanos() % 19) / 100;
        wait + Duration::from_millis(jitter)
    }

    fn reset(&mut self) {
        self.current = self.initial;
    }
}

fn rand_nanos() -> u64 {
    u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0))
}
