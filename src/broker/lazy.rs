//! A publisher with a connection of its own, to the first node of `amqp.urls` that
//! answers, opened on first use (or when asked) and again after a failure, starting with the
//! node after the one it lost. The HTTP API's publisher gives up after one more try, so
//! that a broker outage costs the requests made during it and nothing more; the commands'
//! (`publish`, `import`, `collect`, `rejections replay`) are patient: they publish again
//! what was not confirmed, with the worker's backoff. Events are identified by `source` and
//! `id`, so a message published twice is counted once.

use std::sync::Arc;
use std::time::Duration;

use lapin::Connection;
use tokio::sync::Mutex;
use tracing::warn;

use super::{BrokerError, Publisher, connect_from, declare_topology};
use crate::backoff::Backoff;
use crate::config::{Amqp, Settings, redact};
use crate::telemetry::one_line;

/// Attempts in a row a patient publisher makes before it gives up: with the default backoff
/// (0.1 s doubling up to 10 s), about 10 to 20 s of waiting in all.
const ATTEMPTS: u32 = 8;

/// A connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    publisher: Publisher,
    /// The index of its broker in `amqp.urls`.
    node: usize,
}

/// The open link, if any, and where the next connection starts.
struct Slot {
    link: Option<Arc<Link>>,
    next: usize,
}

/// What to publish: events (routing key, body), or stored rejections (id, routing key, body).
#[derive(Clone, Copy)]
enum Outgoing<'a> {
    Events(&'a [(String, Vec<u8>)]),
    Replays(&'a [(i64, String, Vec<u8>)]),
}

/// Publishes with publisher confirms on a connection of its own.
pub struct LazyPublisher {
    settings: Amqp,
    /// The connection's name, for operators (RabbitMQ's management UI shows it).
    name: String,
    /// The lock is held while connecting, so that concurrent requests open one connection,
    /// not one each.
    slot: Mutex<Slot>,
    /// How long confirms may take (`None`: as long as the broker takes).
    confirm_timeout: Option<Duration>,
    /// The waits of a patient publisher between attempts (`None`: not patient).
    patience: Option<std::sync::Mutex<Backoff>>,
}

impl LazyPublisher {
    /// A publisher to `settings.exchange` for requests: it connects on its first
    /// [`publish`](Self::publish), waits `amqp.connect_timeout_secs` at most for connecting
    /// and as much for the confirms, and tries once more at once, on a new connection, when
    /// the connection it had is lost.
    pub fn new(settings: Amqp, name: &str) -> Self {
        let confirm_timeout = Some(settings.connect_timeout());
        LazyPublisher { settings, name: name.to_owned(), slot: Self::empty(), confirm_timeout, patience: None }
    }

    /// A publisher for the commands: it waits for confirms as long as the broker takes,
    /// and when its node is lost or does not confirm, publishes again on the next node that
    /// answers, with the backoff of `consumer.retry_initial_ms` and `retry_max_ms`, up to
    /// [`ATTEMPTS`] attempts in a row.
    pub fn patient(settings: &Settings, name: &str) -> Self {
        LazyPublisher {
            settings: settings.amqp.clone(),
            name: name.to_owned(),
            slot: Self::empty(),
            confirm_timeout: None,
            patience: Some(std::sync::Mutex::new(Backoff::new(settings))),
        }
    }

    fn empty() -> Mutex<Slot> {
        Mutex::new(Slot { link: None, next: 0 })
    }

    /// Connects now (declaring the topology), rather than on first use: a command says at
    /// once that no broker answers.
    pub async fn connect(&self) -> Result<(), BrokerError> {
        self.link().await.map(|_| ())
    }

    /// Publishes persistent messages (routing key, body) and waits until the broker has
    /// confirmed them all.
    pub async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<(), BrokerError> {
        self.send(Outgoing::Events(messages)).await
    }

    /// Publishes stored rejections (id, routing key, body) again, each with its id in
    /// [`super::REPLAY_OF_HEADER`], and waits until the broker has confirmed them all.
    pub async fn publish_replays(&self, replays: &[(i64, String, Vec<u8>)]) -> Result<(), BrokerError> {
        self.send(Outgoing::Replays(replays)).await
    }

    /// Closes the connection, if one is open.
    pub async fn close(&self) {
        if let Some(link) = self.slot.lock().await.link.take() {
            let _ = link.connection.close(200, "done".into()).await;
        }
    }

    /// Publishes `outgoing`, again as long as the publisher's patience lasts. A failure on
    /// a link that was already open (its node may have gone since) is always tried once more.
    async fn send(&self, outgoing: Outgoing<'_>) -> Result<(), BrokerError> {
        for attempt in 1.. {
            let (result, fresh) = match self.link().await {
                Ok((link, fresh)) => (self.attempt(&link, outgoing).await, fresh),
                Err(e) => (Err(e), true),
            };
            let error = match result {
                Ok(()) => {
                    if let Some(patience) = &self.patience {
                        patience.lock().unwrap_or_else(|e| e.into_inner()).reset();
                    }
                    return Ok(());
                }
                Err(error) if error.is_refused() || error.is_invalid() => return Err(error),
                Err(error) => error,
            };
            match &self.patience {
                None if attempt == 1 && !fresh => {}
                Some(patience) if attempt < ATTEMPTS => {
                    let wait = patience.lock().unwrap_or_else(|e| e.into_inner()).next_wait();
                    warn!(
                        error = one_line(&error),
                        retry_in_ms = wait.as_millis() as u64,
                        "Publishing failed; publishing again what was not confirmed, on the next node that answers."
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(error),
            }
        }
        unreachable!("the attempts end by returning")
    }

    /// One attempt on `link`; on failure the link is dropped, so that the next attempt
    /// connects again.
    async fn attempt(&self, link: &Arc<Link>, outgoing: Outgoing<'_>) -> Result<(), BrokerError> {
        let publishing = async {
            match outgoing {
                Outgoing::Events(messages) => link.publisher.publish_all(messages).await,
                Outgoing::Replays(replays) => link.publisher.publish_replays(replays).await,
            }
        };
        let published = match self.confirm_timeout {
            None => publishing.await,
            Some(timeout) => tokio::time::timeout(timeout, publishing).await.unwrap_or_else(|_| {
                Err(BrokerError::TimedOut { url: redact(&self.settings.urls()[link.node]), timeout })
            }),
        };
        if published.is_err() {
            self.drop_link(link).await;
        }
        published
    }

    /// The open link, or a new one (then `true`), to the first broker that answers from
    /// the one after the last connected.
    async fn link(&self) -> Result<(Arc<Link>, bool), BrokerError> {
        let mut slot = self.slot.lock().await;
        if let Some(link) = slot.link.as_ref().filter(|link| link.publisher.is_open()) {
            return Ok((link.clone(), false));
        }
        let (connection, node) = connect_from(&self.settings, &self.name, slot.next).await?;
        slot.next = node + 1;
        // Idempotent, as every producer does: publishing works even before the consumer
        // has declared the topology.
        let opened = match declare_topology(&connection, &self.settings).await {
            Ok(()) => Publisher::new(&connection, &self.settings).await,
            Err(e) => Err(e),
        };
        let publisher = match opened {
            Ok(publisher) => publisher,
            Err(e) => {
                let _ = connection.close(200, "cannot publish".into()).await;
                return Err(e);
            }
        };
        let link = Arc::new(Link { connection, publisher, node });
        slot.link = Some(link.clone());
        Ok((link, true))
    }

    /// Forgets `link` (unless another request replaced it already) and closes it.
    async fn drop_link(&self, link: &Arc<Link>) {
        let mut slot = self.slot.lock().await;
        if slot.link.as_ref().is_some_and(|current| Arc::ptr_eq(current, link)) {
            slot.link = None;
        }
        drop(slot);
        let _ = link.connection.close(200, "publishing failed".into()).await;
    }
}
