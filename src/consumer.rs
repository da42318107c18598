//! The consumer: take messages in batches, apply each batch in one transaction,
//! acknowledge after commit; reconnect to the broker when it is lost.
//!
//! - `deliveries`: reading deliveries into decoded batches (a task of its own);
//! - `applying`: applying them ([`crate::apply`]) and acknowledging, with retries.

mod applying;
mod deliveries;
mod window;

use std::sync::Arc;

use futures::StreamExt;
use lapin::options::BasicCancelOptions;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch};
use tokio::time::sleep;
use tracing::{error, info, warn};

use crate::apply::apply;
use crate::broker::{self, BrokerError};
use crate::config::{Settings, redact};
use crate::health::Health;
use crate::telemetry::one_line;

use crate::backoff::Backoff;
use applying::Applier;
pub use deliveries::Batch;
use deliveries::{Source, read_batches};
use window::Window;

/// Runs until `shutdown` turns true: consumes, reconnecting whenever the broker is lost.
pub async fn run(settings: Settings, pool: PgPool, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(&settings);
    // Where in `amqp.urls` the next connection starts: after the node of the last one.
    let mut next = 0;
    while !*shutdown.borrow() {
        match session(&settings, &pool, &health, &mut shutdown, &mut backoff, &mut next).await {
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
                let wait = backoff.next_wait();
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

/// One connection's life: connect to the first broker of `amqp.urls` that answers from
/// `next` (which then names the one after it), declare, consume, apply batches. Returns
/// `Ok` on shutdown. Once it consumes, the reconnection `backoff` starts over.
///
/// A reader task takes and decodes the next batch while the current one is applied;
/// batches are applied (and acknowledged) in order.
async fn session(
    settings: &Settings,
    pool: &PgPool,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
    backoff: &mut Backoff,
    next: &mut usize,
) -> Result<(), BrokerError> {
    let name = format!("ecpat-indicators worker pid {}", std::process::id());
    let (connection, node) = tokio::select! {
        connected = broker::connect_from(&settings.amqp, &name, *next) => connected?,
        _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
    };
    *next = node + 1;
    let node = redact(&settings.amqp.urls()[node]);
    let channel = connection.create_channel().await?;
    broker::declare_topology(&connection, &settings.amqp).await?;
    let consumer = &settings.consumer;
    let window = Window::new(settings.amqp.prefetch, consumer.events_in_flight, consumer.mib_in_flight << 20);
    let source = Source::start(channel.clone(), &settings.amqp.queue, window).await?;
    health.set_consuming(true);
    backoff.reset();
    info!(queue = %settings.amqp.queue, %node, prefetch = source.window.current, "Consuming.");

    let tag = source.tag.clone();
    let (sender, mut batches) = mpsc::channel::<Batch>(1);
    let reader =
        tokio::spawn(read_batches(source, consumer.clone(), settings.producers.clone(), sender, shutdown.clone()));
    let mut applier =
        Applier { channel: &channel, pool, health, backoff: Backoff::new(settings), shutdown: shutdown.clone() };
    // Each batch is applied in a task of its own, the next one starting while the current
    // one runs (its events are stored meanwhile: see `store`); they are settled, and
    // acknowledged, in order.
    let started = futures::stream::poll_fn(|cx| batches.poll_recv(cx)).map(|batch| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = apply(&pool, &batch.messages).await;
            (batch, result, started.elapsed())
        })
    });
    let mut in_order = started.buffered(2);
    let mut applied = Ok(true);
    while let Some(task) = in_order.next().await {
        let (batch, result, took) = task.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        applied = applier.settle(batch, result, took).await;
        if !matches!(applied, Ok(true)) {
            break;
        }
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
