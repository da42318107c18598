//! The TCP (and TLS) stream under a RabbitMQ connection, opened here rather than by lapin so
//! that an attempt that times out can be closed: lapin's connection thread, waiting for a
//! broker that accepted the connection and never answers, would otherwise live (with its
//! socket) as long as the process, one more after every attempt.

use std::net::Shutdown;
use std::sync::{Arc, Mutex};

use async_compat::Compat;
use lapin::tcp::{AsyncTcpStream, TLSConfig};
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Connection, ConnectionProperties};

/// Closes the socket of a connection being opened.
#[derive(Clone, Default)]
pub(super) struct Closer(Arc<Mutex<Option<std::net::TcpStream>>>);

impl Closer {
    /// Shuts the socket down: lapin's connection thread reads the end of the stream and stops.
    pub(super) fn close(&self) {
        if let Some(socket) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn hold(&self, socket: std::net::TcpStream) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(socket);
    }
}

/// Opens a connection, as lapin would, over a socket that `closer` can shut down.
pub(super) async fn open(uri: AMQPUri, properties: ConnectionProperties, closer: Closer) -> lapin::Result<Connection> {
    let runtime = lapin::runtime::default_runtime()?;
    let connect = async move |uri: AMQPUri, _| {
        let host = uri.authority.host.clone();
        let socket = tokio::net::TcpStream::connect((host.as_str(), uri.authority.port)).await?.into_std()?;
        closer.hold(socket.try_clone()?);
        let stream = AsyncTcpStream::Plain(Compat::new(tokio::net::TcpStream::from_std(socket)?));
        Ok(match uri.scheme {
            AMQPScheme::AMQP => stream,
            AMQPScheme::AMQPS => stream.into_tls(&host, TLSConfig::default()).await?,
        })
    };
    Connection::connector(uri, runtime, connect, properties).await
}
