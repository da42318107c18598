//! A publisher shared by the requests of the HTTP API: it connects on first use, and again
//! on the next use after a failure, so that a broker outage costs the requests made during
//! it and nothing more.

use std::sync::Arc;

use lapin::Connection;
use tokio::sync::Mutex;

use super::{BrokerError, Publisher, connect, declare_topology};
use crate::config::{Amqp, redact};

/// A connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    publisher: Publisher,
}

/// Publishes with publisher confirms on a connection of its own, opened lazily.
pub struct LazyPublisher {
    settings: Amqp,
    /// The connection's name, for operators (RabbitMQ's management UI shows it).
    name: String,
    /// The open link, if any; the lock is held while connecting, so that concurrent
    /// requests open one connection, not one each.
    link: Mutex<Option<Arc<Link>>>,
}

impl LazyPublisher {
    /// A publisher to `settings.exchange`; it connects on its first [`publish`](Self::publish).
    pub fn new(settings: Amqp, name: &str) -> Self {
        LazyPublisher { settings, name: name.to_owned(), link: Mutex::new(None) }
    }

    /// Publishes persistent messages (routing key, body) and waits until the broker has
    /// confirmed them all, within `amqp.connect_timeout_secs` for connecting and as much for
    /// the confirms. On failure the link is dropped and the next call connects again.
    pub async fn publish(&self, messages: &[(String, Vec<u8>)]) -> Result<(), BrokerError> {
        let link = self.link().await?;
        let timeout = self.settings.connect_timeout();
        let published = match tokio::time::timeout(timeout, link.publisher.publish_all(messages)).await {
            Ok(published) => published,
            Err(_) => Err(BrokerError::TimedOut { url: redact(&self.settings.url), timeout }),
        };
        if published.is_err() {
            self.drop_link(&link).await;
        }
        published
    }

    /// The open link, or a new one.
    async fn link(&self) -> Result<Arc<Link>, BrokerError> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|link| link.publisher.is_open()) {
            return Ok(link.clone());
        }
        let connection = connect(&self.settings, &self.name).await?;
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
        let link = Arc::new(Link { connection, publisher });
        *slot = Some(link.clone());
        Ok(link)
    }

    /// Forgets `link` (unless another request replaced it already) and closes it.
    async fn drop_link(&self, link: &Arc<Link>) {
        let mut slot = self.link.lock().await;
        if slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, link)) {
            *slot = None;
        }
        drop(slot);
        let _ = link.connection.close(200, "publishing failed".into()).await;
    }
}
