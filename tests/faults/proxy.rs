//! A TCP proxy in front of PostgreSQL that can cut every connection it carries and refuse
//! new ones, then let them through again: a database that becomes unreachable.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    /// Whether connections go through; turning false resets every open one.
    open: watch::Sender<bool>,
    accepting: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().unwrap();
        let (open, _) = watch::channel(true);
        let state = open.subscribe();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut state = state.clone();
                if !*state.borrow() {
                    refuse(client);
                    continue;
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else { return refuse(client) };
                    let mut client = client;
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = state.wait_for(|open| !*open) => {
                            // Both ends see a reset, as when a database host goes away.
                            let _ = client.set_zero_linger();
                            let _ = server.set_zero_linger();
                        }
                    }
                });
            }
        });
        Proxy { addr, open, accepting }
    }

    /// Resets every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accepting.abort();
    }
}

fn refuse(client: TcpStream) {
    let _ = client.set_zero_linger();
}

/// `base` (`postgres://user@host:port`) pointed at `addr` instead, with database `name`.
pub fn url_through(base: &str, addr: SocketAddr, name: &str) -> String {
    let (scheme, rest) = base.split_once("://").expect("a URL");
    let credentials = rest.rsplit_once('@').map(|(c, _)| format!("{c}@")).unwrap_or_default();
    format!("{scheme}://{credentials}{addr}/{name}")
}

/// The `host:port` of `base`.
pub fn host_port(base: &str) -> String {
    let rest = base.split_once("://").expect("a URL").1;
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_owned()
}
