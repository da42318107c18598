//! The drains of the peers, the consumers a user would write instead (`bench/peers/`,
//! Python with pika and psycopg), on the same queue, messages and database server as the
//! product's drains.

use std::time::Instant;

use serde_json::Value;

use crate::cpu::{CpuMark, CpuUse};
use crate::drain::{bodies, unique};
use crate::isolated::crate_dir;
use crate::machine;
use crate::scenario::Scenario;

/// Which peer.
#[derive(Clone, Copy)]
pub enum Peer {
    /// Batches of up to 1000 events or 50 ms idle, one transaction and one ack per batch.
    Batched,
    /// One transaction and one ack per message.
    Naive,
}

impl Peer {
    fn script(self) -> &'static str {
        match self {
            Peer::Batched => "bench/peers/batched_consumer.py",
            Peer::Naive => "bench/peers/naive_consumer.py",
        }
    }
}

/// One peer's drain of a backlog.
pub struct PeerDrain {
    /// Events the peer received (duplicates included), as it counts them.
    pub events: usize,
    /// Distinct events it stored.
    pub stored: i64,
    /// Its own clock: from its first message to its last commit.
    pub own_seconds: f64,
    /// From the start of its process to its exit (interpreter start, connections and table
    /// creation included, as the product's drain includes its worker's start).
    pub wall_seconds: f64,
    pub cpu: CpuUse,
}

impl PeerDrain {
    pub fn own_rate(&self) -> f64 {
        self.events as f64 / self.own_seconds
    }

    pub fn wall_rate(&self) -> f64 {
        self.events as f64 / self.wall_seconds
    }
}

/// Queues `events` exactly as the product's drain does (same queue type, persistent
/// messages, `per_message` events each), then runs `peer` on them until it has received
/// every one.
pub async fn drain(peer: Peer, label: &str, events: &[Value], per_message: usize) -> PeerDrain {
    let scenario = Scenario::new(label).await;
    let bodies = bodies(events, per_message);
    let took = scenario.publish(&bodies).await;
    eprintln!("  {label}: queued {} messages ({} events) in {:.1} s", bodies.len(), events.len(), took.as_secs_f64());
    let python = std::env::var("BENCH_PYTHON")
        .unwrap_or_else(|_| crate_dir().join("target/bench-venv/bin/python").display().to_string());
    let mark = CpuMark::now();
    let start = Instant::now();
    let output = tokio::process::Command::new(&python)
        .arg(crate_dir().join(peer.script()))
        .arg(&scenario.settings.amqp.queue)
        .arg(events.len().to_string())
        .env("PEER_DB", &scenario.settings.database.url)
        .env("PEER_AMQP", &scenario.settings.amqp.url)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{python} runs (scripts/bench makes its venv): {e}"));
    let wall_seconds = start.elapsed().as_secs_f64();
    let peer_ticks = machine::waited_children_ticks() - mark.children;
    let cpu = mark.per_event(events.len(), peer_ticks);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{label} failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let (received, own_seconds) = own_figures(&stdout).unwrap_or_else(|| panic!("{label} printed: {stdout}"));
    let stored: i64 = sqlx::query_scalar("select count(*) from peer_events").fetch_one(&scenario.pool).await.unwrap();
    let expected = unique(events);
    if stored != expected || crate::isolated::ready_messages(&scenario.settings).await != 0 {
        eprintln!("  {label}: stored {stored} events of {expected} distinct ones, or left messages in the queue");
    }
    scenario.drop().await;
    PeerDrain { events: received, stored, own_seconds, wall_seconds, cpu }
}

/// Events received and seconds from the peer's last line: `peer drained N in S.SSs = R/s`.
fn own_figures(stdout: &str) -> Option<(usize, f64)> {
    let line = stdout.lines().rev().find(|l| l.starts_with("peer drained "))?;
    let mut words = line.split_whitespace().skip(2);
    let received = words.next()?.parse().ok()?;
    let seconds = words.nth(1)?.trim_end_matches('s').parse().ok()?;
    Some((received, seconds))
}
