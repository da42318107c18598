//! The consumer loop: take messages in batches, apply each batch in one transaction,
//! acknowledge after commit; retry transient database failures; reconnect to the broker.

mod backoff;
mod window;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout_at};
use tracing::{debug, error, info, warn};

use crate::broker::{self, BrokerError, headers_json};
use crate::config::{Consumer as ConsumerSettings, Settings};
use crate::envelope::decode;
use crate::health::Health;
use crate::metrics;
use crate::store::batch::{self, EventKeys, Message, Outcome, Stored};
use crate::store::is_transient;
use crate::store::known::Known;
use crate::telemetry::one_line;

use backoff::Backoff;
use window::Window;

/// Runs until `shutdown` turns true: consumes, reconnecting whenever the broker is lost.
pub async fn run(settings: Settings, pool: PgPool, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(&settings);
    while !*shutdown.borrow() {
        match session(&settings, &pool, &health, &mut shutdown, &mut backoff).await {
            Ok(()) => break,
            Err(e) if e.is_refused() => {
                // Credentials or a virtual host are wrong: someone must act, and trying
                // again at once only floods the logs (and the broker's).
                health.set_consuming(false);
                let wait = backoff.longest();
                error!(
                    error = one_line(&e),
                    retry_in_ms = wait.as_millis() as u64,
                    "Lost the broker: it refuses this worker (login or virtual host); retrying slowly."
                );
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
            }
            Err(e) => {
                health.set_consuming(false);
                let wait = backoff.next();
                warn!(error = one_line(&e), retry_in_ms = wait.as_millis() as u64, "Lost the broker; reconnecting.");
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
/// Once it consumes, the reconnection `backoff` starts over.
///
/// A reader task takes and decodes the next batch while the current one is applied, so
/// decoding overlaps the database's work; batches are applied (and acknowledged) in order.
async fn session(
    settings: &Settings,
    pool: &PgPool,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
) -> Result<(), BrokerError> {
    let name = format!("ecpat-indicators worker pid {}", std::process::id());
    let connection = tokio::select! {
        connection = broker::connect(&settings.amqp, &name) => connection?,
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    };
    let channel = connection.create_channel().await?;
    broker::declare_topology(&connection, &settings.amqp).await?;
    let window = Window::new(settings.amqp.prefetch, settings.consumer.events_in_flight);
    let tag = consumer_tag(0);
    let consumer = consume(&channel, &settings.amqp.queue, &tag, window.current).await?;
    health.set_consuming(true);
    backoff.reset();
    info!(queue = %settings.amqp.queue, prefetch = window.current, "Consuming.");

    let (sender, mut batches) = mpsc::channel::<Batch>(1);
    let tag = Arc::new(Mutex::new(tag));
    let source = Source {
        channel: channel.clone(),
        queue: settings.amqp.queue.clone(),
        consumer,
        tag: tag.clone(),
        resized: 0,
        replacement: None,
        last_tag: 0,
        window,
    };
    let reader = tokio::spawn(read_batches(source, settings.consumer.clone(), sender, shutdown.clone()));
    let mut carried = Carried { backoff: Backoff::new(settings), known: Known::new(settings.consumer.known_records) };
    let mut applied = Ok(true);
    let mut ahead: Option<Ahead> = None;
    loop {
        let (deliveries, messages, stored) = match ahead.take() {
            Some(Ahead::Storing { deliveries, task }) => {
                let (messages, stored) = joined(task).await;
                (deliveries, messages, Some(stored))
            }
            Some(Ahead::Unstored { deliveries, messages }) => (deliveries, messages, None),
            None => match batches.recv().await {
                Some(batch) => {
                    let (deliveries, messages) = batch.into_iter().unzip();
                    (deliveries, messages, None)
                }
                None => break,
            },
        };
        let mut pipeline = Pipeline { batches: &mut batches, ahead: &mut ahead };
        applied =
            process(&channel, pool, health, (deliveries, messages, stored), &mut pipeline, &mut carried, shutdown)
                .await;
        if !matches!(applied, Ok(true)) {
            break;
        }
    }
    if let Some(Ahead::Storing { task, .. }) = ahead.take()
        && let (_, Ok(stored)) = joined(task).await
    {
        stored.abandon().await;
    }
    reader.abort();
    let read = reader.await.unwrap_or(Ok(()));
    applied?;
    read?;
    // Stop deliveries; what was prefetched but not applied goes back to the queue.
    let tag = tag.lock().unwrap_or_else(|e| e.into_inner()).clone();
    channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await?;
    channel.close(200, "shutdown".into()).await?;
    connection.close(200, "shutdown".into()).await?;
    Ok(())
}

fn consumer_tag(resized: u32) -> String {
    format!("ecpat-indicators-{}-{resized}", std::process::id())
}

/// Sets the prefetch window, then consumes the queue (the window applies to consumers
/// created after it is set).
async fn consume(channel: &Channel, queue: &str, tag: &str, prefetch: u16) -> Result<Consumer, BrokerError> {
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer =
        channel.basic_consume(queue.into(), tag.into(), BasicConsumeOptions::default(), FieldTable::default()).await?;
    metrics::prefetch(prefetch);
    Ok(consumer)
}

/// Where the reader takes deliveries from.
struct Source {
    channel: Channel,
    queue: String,
    consumer: Consumer,
    /// The tag of the consumer deliveries come from now (the session cancels it at shutdown).
    tag: Arc<Mutex<String>>,
    /// Times the window was resized.
    resized: u32,
    /// The consumer with the new window, while the old one (cancelled) hands over what the
    /// broker had already sent it.
    replacement: Option<Consumer>,
    /// The greatest delivery tag read so far on this channel.
    last_tag: u64,
    window: Window,
}

impl Source {
    /// Changes the prefetch window: the old consumer is cancelled, then a new one starts with
    /// the new window. Messages already delivered to the old one stay this channel's to
    /// acknowledge; its stream ends after them, and the new one takes over
    /// ([`Source::take_over`]).
    async fn resize(&mut self, prefetch: u16) -> Result<(), BrokerError> {
        // The old consumer first: once it is cancelled the broker sends it nothing more, so
        // every delivery to the new one has a greater tag than every delivery to the old one.
        // Batches are acknowledged in order with `multiple`, which covers every lower tag of
        // the channel: with both consumers receiving at once, a batch of the old consumer
        // could acknowledge a message still waiting, unapplied, with the new one.
        let old = self.tag.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.channel.basic_cancel(old.as_str().into(), BasicCancelOptions::default()).await?;
        self.resized += 1;
        let tag = consumer_tag(self.resized);
        let next = consume(&self.channel, &self.queue, &tag, prefetch).await?;
        *self.tag.lock().unwrap_or_else(|e| e.into_inner()) = tag;
        info!(from = self.window.current, to = prefetch, "Prefetch window resized.");
        self.window.current = prefetch;
        self.replacement = Some(next);
        Ok(())
    }

    /// The consumer's stream ended: the replacement takes over (`true`); without one the
    /// reader stops, at shutdown (`false`) or because the broker ended it.
    fn take_over(&mut self, shutdown: &watch::Receiver<bool>) -> Result<bool, BrokerError> {
        match self.replacement.take() {
            Some(next) => {
                self.consumer = next;
                Ok(true)
            }
            None if *shutdown.borrow() => Ok(false),
            None => Err(BrokerError::ConsumerEnded),
        }
    }
}

/// Takes deliveries into batches (full, or `batch_timeout_ms` after their first message)
/// and decodes them, until shutdown or the consumer ends; resizes the prefetch window to
/// the messages' size.
async fn read_batches(
    mut source: Source,
    settings: ConsumerSettings,
    sender: mpsc::Sender<Batch>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BrokerError> {
    loop {
        let first = tokio::select! {
            next = source.consumer.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
        };
        let first = match first {
            Some(delivery) => delivery?,
            None if source.take_over(&shutdown)? => continue,
            None => return Ok(()),
        };
        let Filled { batch, size, ended } = fill_batch(first, &mut source.consumer, &settings).await?;
        check_order(&batch, &mut source.last_tag);
        let messages = batch.len();
        if sender.send(batch).await.is_err() {
            return Ok(());
        }
        if ended && !source.take_over(&shutdown)? {
            return Ok(());
        }
        if source.replacement.is_none()
            && let Some(prefetch) = source.window.observe(messages, size)
        {
            source.resize(prefetch).await?;
        }
    }
}

/// Batches are acknowledged with `multiple`, which is right only if deliveries are read in
/// the order of their tags. They are (one consumer at a time on the channel); should that
/// ever not hold, it is logged and counted (`ecpat_deliveries_out_of_order_total`).
fn check_order(batch: &Batch, last_tag: &mut u64) {
    for (delivery, _) in batch {
        if delivery.delivery_tag <= *last_tag {
            error!(tag = delivery.delivery_tag, after = *last_tag, "Delivery read out of tag order.");
            metrics::delivery_out_of_order();
        }
        *last_tag = (*last_tag).max(delivery.delivery_tag);
    }
}

/// Adds deliveries to `first` until the batch holds `batch_size` events (or messages), or
/// its time is up (`batch_timeout_ms` after its first message), or no message came for
/// `batch_idle_ms`: in a backlog batches fill at once, and under a steady flow a batch
/// goes as soon as the flow pauses instead of waiting out its whole window. Decodes each.
async fn fill_batch(
    first: Delivery,
    consumer: &mut Consumer,
    settings: &ConsumerSettings,
) -> Result<Filled, BrokerError> {
    let deadline = Instant::now() + Duration::from_millis(settings.batch_timeout_ms);
    let idle = Duration::from_millis(settings.batch_idle_ms);
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
        match timeout_at(deadline.min(Instant::now() + idle), consumer.next()).await {
            Ok(Some(delivery)) => next = Some(delivery?),
            Ok(None) => return Ok(Filled { batch, size, ended: true }),
            Err(_) => break,
        }
    }
    Ok(Filled { batch, size, ended: false })
}

/// A batch as [`fill_batch`] took it.
struct Filled {
    batch: Batch,
    /// Its events (a message that holds none counts as one).
    size: usize,
    /// The consumer's stream ended after it.
    ended: bool,
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

/// The next batch, taken while the current one is applied.
enum Ahead {
    /// Its events are being stored (see [`batch::Stored`]).
    Storing { deliveries: Vec<Delivery>, task: JoinHandle<(Vec<Message>, Result<Stored, sqlx::Error>)> },
    /// To be applied from the start.
    Unstored { deliveries: Vec<Delivery>, messages: Vec<Message> },
}

/// Where the next batch comes from, and where it waits once taken.
struct Pipeline<'a> {
    batches: &'a mut mpsc::Receiver<Batch>,
    ahead: &'a mut Option<Ahead>,
}

impl Pipeline<'_> {
    /// If the next batch is already decoded, starts storing its events on another
    /// connection while the current batch is applied (the two stages overlap).
    /// `in_flight`: the current batch's event keys (see [`batch::store`]).
    fn look_ahead(&mut self, pool: &PgPool, in_flight: EventKeys) {
        if let Ok(batch) = self.batches.try_recv() {
            let (deliveries, messages): (Vec<Delivery>, Vec<Message>) = batch.into_iter().unzip();
            let pool = pool.clone();
            let task = tokio::spawn(async move {
                let stored = batch::store(&pool, &messages, Some(&in_flight)).await;
                (messages, stored)
            });
            *self.ahead = Some(Ahead::Storing { deliveries, task });
        }
    }

    /// Rolls back what the batch ahead stored: it skipped the current batch's events as
    /// stored by that batch, which has failed (see [`batch::store`]).
    async fn set_back(&mut self) {
        if let Some(Ahead::Storing { deliveries, task }) = self.ahead.take() {
            let (messages, stored) = joined(task).await;
            if let Ok(stored) = stored {
                stored.abandon().await;
            }
            *self.ahead = Some(Ahead::Unstored { deliveries, messages });
        }
    }
}

async fn joined<T>(task: JoinHandle<T>) -> T {
    task.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// What a session carries from one batch to the next.
struct Carried {
    backoff: Backoff,
    /// The current versions this worker knows (see [`Known`]).
    known: Known,
}

/// A batch: its deliveries, its messages, and its events if already stored.
type Taken = (Vec<Delivery>, Vec<Message>, Option<Result<Stored, sqlx::Error>>);

/// Applies a batch and acknowledges it. Returns `false` when shutdown came while the
/// database was unreachable (the batch is left unacknowledged, to be redelivered).
///
/// First in two stages (store the events, then apply them under the lock) while the next
/// batch's events are stored; on any failure, with the batch ahead set back, by
/// [`apply_with_retry`], then message by message.
async fn process(
    channel: &Channel,
    pool: &PgPool,
    health: &Health,
    (deliveries, mut messages, stored): Taken,
    pipeline: &mut Pipeline<'_>,
    carried: &mut Carried,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<bool, BrokerError> {
    let Carried { backoff, known } = carried;
    let started = std::time::Instant::now();
    let stored = match stored {
        Some(stored) => stored,
        None => batch::store(pool, &messages, None).await,
    };
    if let Ok(stored) = stored {
        pipeline.look_ahead(pool, stored.keys());
        match batch::finish(stored, &messages, known).await {
            Ok(outcome) => {
                committed(health, backoff, messages.len(), &outcome, started);
                acknowledge(channel, &deliveries, &messages, &outcome).await?;
                return Ok(true);
            }
            Err(e) => {
                if is_transient(&e) {
                    may_have_committed(&mut messages);
                }
                warn!(error = one_line(&e), "Batch failed; applying it again.");
                pipeline.set_back().await;
            }
        }
    }
    match apply_with_retry(pool, health, &mut messages, backoff, known, shutdown).await {
        Applied::Done(outcome) => {
            acknowledge(channel, &deliveries, &messages, &outcome).await?;
            Ok(true)
        }
        Applied::ShuttingDown => Ok(false),
        Applied::Failed(e) => {
            warn!(
                error = one_line(&e),
                messages = messages.len(),
                "Batch failed permanently; applying its messages one by one."
            );
            for (delivery, mut message) in deliveries.iter().zip(messages) {
                message.maybe_applied = true;
                let one = std::slice::from_mut(&mut message);
                match apply_with_retry(pool, health, one, backoff, known, shutdown).await {
                    Applied::Done(outcome) => {
                        channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await?;
                        log_outcome(1, &outcome);
                    }
                    Applied::ShuttingDown => return Ok(false),
                    Applied::Failed(e) => {
                        // Back to the queue; after the delivery limit the broker moves it to
                        // the dead-letter queue, where it is kept for an operator.
                        error!(error = one_line(&e), routing_key = %message.routing_key, "Message cannot be applied; returning it to the queue.");
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

/// Acknowledges a whole committed batch at once.
async fn acknowledge(
    channel: &Channel,
    deliveries: &[Delivery],
    messages: &[Message],
    outcome: &Outcome,
) -> Result<(), BrokerError> {
    let last = deliveries.last().expect("a batch is never empty").delivery_tag;
    channel.basic_ack(last, BasicAckOptions { multiple: true }).await?;
    log_outcome(messages.len(), outcome);
    Ok(())
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
    known: &mut Known,
    shutdown: &mut watch::Receiver<bool>,
) -> Applied {
    loop {
        let started = std::time::Instant::now();
        match batch::apply(pool, messages, known).await {
            Ok(outcome) => {
                committed(health, backoff, messages.len(), &outcome, started);
                return Applied::Done(outcome);
            }
            Err(e) if is_transient(&e) => {
                may_have_committed(messages);
                health.set_database_ok(false);
                metrics::batch_retried();
                let wait = backoff.next();
                warn!(
                    error = one_line(&e),
                    retry_in_ms = wait.as_millis() as u64,
                    "Database unavailable; batch not acknowledged, retrying."
                );
                tokio::select! {
                    _ = sleep(wait) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Applied::ShuttingDown,
                }
            }
            Err(e) => return Applied::Failed(e),
        }
    }
}

/// After a commit: metrics, health, and the backoff starts over.
fn committed(health: &Health, backoff: &mut Backoff, messages: usize, outcome: &Outcome, started: std::time::Instant) {
    metrics::batch_committed(messages, outcome, started.elapsed());
    health.set_database_ok(true);
    backoff.reset();
}

/// After a transient failure: the commit may have gone through before the connection was
/// lost, so the messages' rejections are stored again only if not already there.
fn may_have_committed(messages: &mut [Message]) {
    messages.iter_mut().for_each(|m| m.maybe_applied = true);
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
