//! Reading deliveries: take messages from the broker into batches, decode them, and keep
//! the prefetch window fitted to the messages' size.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout_at};
use tracing::{error, info};

use super::window::Window;
use crate::apply::Message;
use crate::broker::{BrokerError, headers_json};
use crate::config::Consumer as ConsumerSettings;
use crate::envelope::decode;
use crate::metrics;
use crate::producers::{Producers, enforce};

/// Decoded messages to apply together, with their delivery tags (in the order read). The
/// bodies are not kept: once decoded, a message's events hold what is stored.
#[derive(Debug, Default)]
pub struct Batch {
    pub tags: Vec<u64>,
    pub messages: Vec<Message>,
}

/// Where deliveries are read from.
pub(super) struct Source {
    pub(super) channel: Channel,
    pub(super) queue: String,
    pub(super) consumer: Consumer,
    /// The tag of the consumer deliveries come from now (the session cancels it at shutdown).
    pub(super) tag: Arc<Mutex<String>>,
    pub(super) window: Window,
    /// Times the window was resized.
    resized: u32,
    /// The consumer with the new window, while the old one (cancelled) hands over what the
    /// broker had already sent it.
    replacement: Option<Consumer>,
    /// The greatest delivery tag read so far on this channel.
    last_tag: u64,
}

impl Source {
    /// Starts consuming `queue` on `channel` with the first window.
    pub(super) async fn start(channel: Channel, queue: &str, window: Window) -> Result<Source, BrokerError> {
        let tag = consumer_tag(0);
        let consumer = consume(&channel, queue, &tag, window.current).await?;
        Ok(Source {
            channel,
            queue: queue.to_owned(),
            consumer,
            tag: Arc::new(Mutex::new(tag)),
            window,
            resized: 0,
            replacement: None,
            last_tag: 0,
        })
    }

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

    /// Batches are acknowledged with `multiple`, which is right only if deliveries are read
    /// in the order of their tags. They are (one consumer at a time on the channel); should
    /// that ever not hold, it is logged and counted (`ecpat_deliveries_out_of_order_total`).
    fn check_order(&mut self, batch: &Batch) {
        for &tag in &batch.tags {
            if tag <= self.last_tag {
                error!(tag, after = self.last_tag, "Delivery read out of tag order.");
                metrics::delivery_out_of_order();
            }
            self.last_tag = self.last_tag.max(tag);
        }
    }
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

/// Takes deliveries into batches and sends them on, decoded, until shutdown or the consumer
/// ends; resizes the prefetch window to the messages' size. It runs while the previous
/// batch is applied, so decoding overlaps the database's work.
pub(super) async fn read_batches(
    mut source: Source,
    settings: ConsumerSettings,
    producers: Producers,
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
        let filled = fill_batch(first, &mut source.consumer, &settings, &producers).await?;
        source.check_order(&filled.batch);
        let messages = filled.batch.messages.len();
        if sender.send(filled.batch).await.is_err() {
            return Ok(());
        }
        if filled.ended && !source.take_over(&shutdown)? {
            return Ok(());
        }
        if source.replacement.is_none()
            && let Some(prefetch) = source.window.observe(messages, filled.events, filled.bytes)
        {
            source.resize(prefetch).await?;
        }
    }
}

/// A batch as [`fill_batch`] took it.
struct Filled {
    batch: Batch,
    /// Its events (a message that holds none counts as one).
    events: usize,
    /// Its messages' bytes.
    bytes: usize,
    /// The consumer's stream ended after it.
    ended: bool,
}

/// Adds deliveries to `first` until the batch holds `batch_size` events (or messages), or
/// its time is up (`batch_timeout_ms` after its first message), or no message came for
/// `batch_idle_ms`: in a backlog batches fill at once, and under a steady flow a batch
/// goes as soon as the flow pauses instead of waiting out its whole window.
async fn fill_batch(
    first: Delivery,
    consumer: &mut Consumer,
    settings: &ConsumerSettings,
    producers: &Producers,
) -> Result<Filled, BrokerError> {
    let deadline = Instant::now() + Duration::from_millis(settings.batch_timeout_ms);
    let idle = Duration::from_millis(settings.batch_idle_ms);
    let mut filled = Filled { batch: Batch::default(), events: 0, bytes: 0, ended: false };
    let mut next = Some(first);
    while let Some(delivery) = next.take() {
        let message = to_message(&delivery, producers);
        filled.events += message.decoded.events.len().max(1);
        filled.bytes += message.size;
        filled.batch.tags.push(delivery.delivery_tag);
        filled.batch.messages.push(message);
        if filled.events >= settings.batch_size {
            break;
        }
        match timeout_at(deadline.min(Instant::now() + idle), consumer.next()).await {
            Ok(Some(delivery)) => next = Some(delivery?),
            Ok(None) => {
                filled.ended = true;
                break;
            }
            Err(_) => break,
        }
    }
    Ok(filled)
}

/// A delivery decoded, its events judged by the producer rules against its `user_id`.
fn to_message(delivery: &Delivery, producers: &Producers) -> Message {
    let mut decoded = decode(&delivery.data);
    let user = delivery.properties.user_id().as_ref().map(|user| user.as_str());
    enforce(producers, user, &delivery.data, &mut decoded);
    Message {
        routing_key: delivery.routing_key.as_str().to_owned(),
        headers: headers_json(delivery.properties.headers().as_ref()),
        size: delivery.data.len(),
        decoded,
        maybe_applied: delivery.redelivered,
    }
}
