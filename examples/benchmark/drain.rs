//! The drain of a backlog by the product's worker processes.

use std::collections::HashSet;
use std::process::Child;
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, routing_key_for};
use serde_json::Value;

use crate::cpu::{CpuMark, CpuUse};
use crate::machine;
use crate::readers;
use crate::scenario::{Scenario, free_port, stop};

pub fn unique(events: &[Value]) -> i64 {
    events.iter().map(|e| (e["source"].to_string(), e["id"].to_string())).collect::<HashSet<_>>().len() as i64
}

/// Messages of `per_message` events each (a CloudEvents batch when more than one).
pub fn bodies(events: &[Value], per_message: usize) -> Vec<(String, Vec<u8>)> {
    events
        .chunks(per_message)
        .map(|chunk| {
            let body = if chunk.len() == 1 { chunk[0].to_string() } else { Value::from(chunk.to_vec()).to_string() };
            (routing_key_for(&body), body.into_bytes())
        })
        .collect()
}

/// New events a worker has committed (applied or stale), from its `/metrics`; 0 until its
/// HTTP server answers.
async fn committed_events(http: &reqwest::Client, port: u16) -> u64 {
    let Ok(response) = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await else { return 0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("ecpat_events_applied_total ") || l.starts_with("ecpat_events_stale_total "))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub struct Drain {
    /// Distinct events stored.
    pub events: i64,
    /// From the start of the worker processes until the last event was seen committed.
    pub seconds: f64,
    pub peak_rss_mib: f64,
    /// CPU time during the drain; the drainer's own is the workers'.
    pub cpu: CpuUse,
    /// What dashboard readers got during the drain, if there were any.
    pub readers: Option<readers::Stats>,
}

impl Drain {
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds
    }
}

/// Queues `events`, then starts `workers` workers and times the drain; with `readers`,
/// dashboard readers ask the first worker's API meanwhile, from its start to the end of
/// the drain.
pub async fn drain(
    label: &str,
    events: &[Value],
    per_message: usize,
    workers: usize,
    extra: &[(&str, &str)],
    readers: Option<readers::Load>,
) -> Drain {
    let scenario = Scenario::new(label).await;
    let bodies = bodies(events, per_message);
    let took = scenario.publish(&bodies).await;
    let expected = unique(events);
    eprintln!("  {label}: queued {} messages ({expected} unique events) in {:.1} s", bodies.len(), took.as_secs_f64());
    let connection =
        broker::connect(&scenario.settings.amqp, "benchmark watcher").await.expect("RabbitMQ is reachable");
    let channel = connection.create_channel().await.unwrap();
    let start = Instant::now();
    let mark = CpuMark::now();
    let ports: Vec<u16> = (0..workers).map(|_| free_port()).collect();
    let mut children: Vec<Child> = ports
        .iter()
        .map(|port| {
            let addr = format!("127.0.0.1:{port}");
            scenario.spawn(&[extra, &[("HTTP_ADDR", addr.as_str())]].concat())
        })
        .collect();
    scenario.after_start().await;
    let running = readers.map(|load| readers::start(format!("127.0.0.1:{}", ports[0]), load));
    let mut peak = vec![0u64; workers];
    // Each worker's committed events, and when that count last moved.
    let mut per_worker = vec![(0u64, Duration::ZERO); workers];
    // The watcher reads each worker's own count of committed new events (`/metrics`:
    // applied + stale, counted after each commit) every POLL: counting rows in PostgreSQL
    // while it drains would load the machine that is measured. One full count of the stored
    // events confirms the end; it is also taken if the count stalls (a stall would show as
    // 2 s more in the result).
    const POLL: Duration = Duration::from_millis(20);
    let http = reqwest::Client::new();
    let (mut last_seen, mut last_change) = (0u64, Instant::now());
    loop {
        for (i, child) in children.iter().enumerate() {
            peak[i] = peak[i].max(machine::status_kib(child.id(), "VmHWM:"));
        }
        let mut seen = 0;
        for (i, port) in ports.iter().enumerate() {
            let committed = committed_events(&http, *port).await;
            if committed != per_worker[i].0 {
                per_worker[i] = (committed, start.elapsed());
            }
            seen += committed;
        }
        if seen != last_seen {
            if last_seen == 0 {
                eprintln!("  {label}: first commit seen {:.0} ms after the start", start.elapsed().as_secs_f64() * 1e3);
            }
            (last_seen, last_change) = (seen, Instant::now());
        }
        let stalled = last_change.elapsed() > Duration::from_secs(2);
        if (seen >= expected as u64 || stalled)
            && scenario.ready(&channel).await == 0
            && scenario.stored().await >= expected
        {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let readers = match running {
        Some(running) => Some(running.stop().await),
        None => None,
    };
    let _ = connection.close(200, "ok".into()).await;
    if workers > 1 {
        let each: Vec<String> =
            per_worker.iter().map(|(n, t)| format!("{n} events, last at {:.2} s", t.as_secs_f64())).collect();
        eprintln!("  {label}: per worker: {}", each.join("; "));
    }
    let worker_ticks = children.iter().map(|child| machine::process_ticks(child.id())).sum();
    let cpu = mark.per_event(expected as usize, worker_ticks);
    for (i, child) in children.iter_mut().enumerate() {
        peak[i] = peak[i].max(machine::status_kib(child.id(), "VmHWM:"));
        stop(child);
    }
    scenario.drop().await;
    let peak_rss_mib = *peak.iter().max().unwrap() as f64 / 1024.0;
    Drain { events: expected, seconds, peak_rss_mib, cpu, readers }
}
