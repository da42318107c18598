//! The live stream: changes committed by any worker process reach every open stream.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::generate::events;
use common::{TestEnv, Worker};
use futures::StreamExt;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// Reads `tally` events from an open SSE response into `latest` until `done` holds.
async fn read_until(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    latest: &mut BTreeMap<(String, String), i64>,
    done: impl Fn(&BTreeMap<(String, String), i64>) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(latest) {
        let chunk = tokio::time::timeout_at(deadline.into(), body.next())
            .await
            .unwrap_or_else(|_| panic!("stream did not show the expected totals; saw {latest:?}"))
            .expect("the stream stays open")
            .unwrap();
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let is_tally = frame.lines().any(|l| l == "event: tally");
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
            if let (true, Some(data)) = (is_tally, data) {
                let v: Value = serde_json::from_str(data).unwrap();
                latest.insert(
                    (v["code"].as_str().unwrap().to_owned(), v["period"].as_str().unwrap().to_owned()),
                    v["value"].as_i64().unwrap(),
                );
            }
        }
    }
}

#[tokio::test]
async fn a_stream_on_one_worker_shows_every_change_committed_by_another() {
    let mut env = TestEnv::new("stream").await;
    // The watcher shares the database but consumes another exchange's queue: every change
    // it streams was committed by the other worker.
    let mut watcher_settings = env.settings.clone();
    watcher_settings.amqp.exchange = format!("{}.watcher", env.name);
    watcher_settings.amqp.queue = format!("{}.watcher.q", env.name);
    let mut watcher = Worker::spawn(&watcher_settings, &[]);
    watcher.wait_ready(WAIT).await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    let response = reqwest::get(format!("http://{}/api/v1/stream", watcher.http)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut latest = BTreeMap::new();

    let stream = events(99, 400);
    env.publish(&stream).await;
    let unique = stream.iter().map(|e| e["id"].to_string()).collect::<std::collections::HashSet<_>>().len() as i64;
    env.wait_for_counts(unique, 0, WAIT).await;
    let totals = ecpat_indicators::store::read::current_totals(&env.pool).await.unwrap();
    assert!(totals.len() > 20, "the events must change many totals");
    let expected: BTreeMap<(String, String), i64> = totals.into_iter().map(|t| ((t.code, t.period), t.value)).collect();

    read_until(&mut body, &mut buffer, &mut latest, |seen| expected.iter().all(|(k, v)| seen.get(k) == Some(v))).await;

    // A client that connects now gets the current totals first.
    let late = reqwest::get(format!("http://{}/api/v1/stream", watcher.http)).await.unwrap();
    let mut late_body = late.bytes_stream();
    let mut late_latest = BTreeMap::new();
    read_until(&mut late_body, &mut String::new(), &mut late_latest, |seen| seen.len() >= expected.len()).await;
    assert_eq!(late_latest, expected);

    watcher.kill();
    env.cleanup().await;
}
