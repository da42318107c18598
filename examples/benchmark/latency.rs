//! Publish-to-committed latency: one idle worker, events published at a fixed rate.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ecpat_indicators::broker::{self, Publisher, routing_key_for};
use serde_json::Value;

use crate::machine;
use crate::scenario::{Scenario, stop};

pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub peak_rss_mib: f64,
}

/// Publishes at `rate` events/s for `seconds` and measures publish-to-committed latency.
pub async fn latency(events: &[Value], rate: usize, seconds: u64) -> Latency {
    let scenario = Scenario::new("latency").await;
    let mut worker = scenario.spawn(&[]);
    // Wait until the worker consumes (its queue exists and the first event comes through).
    let connection = broker::connect(&scenario.settings.amqp, "benchmark latency").await.unwrap();
    broker::declare_topology(&connection, &scenario.settings.amqp).await.unwrap();
    let publisher = Publisher::new(&connection, &scenario.settings.amqp).await.unwrap();
    let events: Vec<&Value> = events.iter().take((rate as u64 * seconds) as usize).collect();
    let total = events.iter().map(|e| e["id"].as_str().unwrap_or_default()).collect::<HashSet<_>>().len();
    let pool = scenario.pool.clone();
    let poller = tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let mut last = 0i64;
        let deadline = Instant::now() + Duration::from_secs(seconds + 60);
        while seen.len() < total && Instant::now() < deadline {
            // The number inline, not bound: a cached generic plan would scan the whole table.
            let query = format!("select seq, id from events where seq > {last} order by seq");
            let rows: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(query)).persistent(false).fetch_all(&pool).await.unwrap();
            let now = Instant::now();
            for (seq, id) in rows {
                last = last.max(seq);
                seen.entry(id).or_insert(now);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seen
    });
    let mut published: HashMap<String, Instant> = HashMap::new();
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let start = Instant::now();
    for (n, chunk) in events.chunks(per_tick).enumerate() {
        let due = start + tick * n as u32;
        tokio::time::sleep_until(due.into()).await;
        let messages: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|e| {
                let body = e.to_string();
                (routing_key_for(&body), body.into_bytes())
            })
            .collect();
        let now = Instant::now();
        for e in chunk {
            published.entry(e["id"].as_str().unwrap().to_owned()).or_insert(now);
        }
        publisher.publish_all(&messages).await.unwrap();
    }
    let seen = poller.await.unwrap();
    let peak = machine::status_kib(worker.id(), "VmHWM:");
    stop(&mut worker);
    connection.close(200, "ok".into()).await.unwrap();
    scenario.drop().await;
    let mut latencies: Vec<f64> = published
        .iter()
        .filter_map(|(id, sent)| seen.get(id).map(|s| s.saturating_duration_since(*sent).as_secs_f64() * 1000.0))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    Latency {
        count: latencies.len(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        peak_rss_mib: peak as f64 / 1024.0,
    }
}
