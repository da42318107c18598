//! The worker end to end: events published to the real RabbitMQ, counted by real worker
//! processes into the real PostgreSQL, read back through SQL and the API.

mod common;

use std::time::Duration;

use common::{TestEnv, event, publication, snapshot};
use ecpat_indicators::store::recompute::recompute;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const WITHDRAWN: &str = "org.ecpat.record.withdrawn";

async fn assert_recompute_matches(env: &TestEnv) {
    let incremental = env.values().await;
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, incremental, "recompute must give the incremental tallies");
}

#[tokio::test]
async fn published_events_are_counted_and_served_by_the_api() {
    let mut env = TestEnv::new("counted").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    env.publish(&[
        publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
        publication("e2", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2020-01-15"),
        publication("e3", "2019-05-01T10:00:00Z", "pub-3", "national", "2020-02-01"),
        snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
    ])
    .await;
    env.wait_for_counts(4, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 2);
    assert_eq!(env.value("KE1", "2019", "", "").await, 1);
    assert_eq!(env.value("KE1", "all", "scope", "thematic").await, 1);
    assert_eq!(env.value("KE2", "2020", "country", "FR").await, 1);
    assert_eq!(env.value("CV3", "all", "", "").await, 3);
    assert_eq!(env.value("KE3", "2019", "", "").await, 13);
    assert_eq!(env.value("KE3", "all", "metric", "likes").await, 10);
    assert_eq!(env.value("AP3", "all", "platform", "facebook").await, 1);

    let (status, body) = env.worker(w).get("/api/v1/indicators?period=all").await;
    assert_eq!(status, 200);
    assert_eq!(body["period"], "all");
    let codes: Vec<&str> = body["indicators"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["KE1", "KE2", "KE3", "AP1", "AP2", "AP3", "AP4", "CV1", "CV2", "CV3", "ND1", "ND2", "ND3"]);
    assert_eq!(body["indicators"][0]["value"], 2);
    assert_eq!(body["indicators"][0]["objective"], "knowledge_evidence");
    assert_eq!(body["indicators"][0]["breakdowns"], json!({"scope": {"global": 1, "thematic": 1}}));
    let (status, body) = env.worker(w).get("/api/v1/indicators/KE3?period=2019").await;
    assert_eq!((status, &body["value"], &body["period"]), (200, &json!(13), &json!("2019")));
    let (status, body) = env.worker(w).get("/api/v1/indicators?period=2018").await;
    assert_eq!(status, 200);
    assert!(body["indicators"].as_array().unwrap().iter().all(|i| i["value"] == 0));
    assert_eq!(env.worker(w).get("/api/v1/indicators/XX9").await.0, 404);
    assert_eq!(env.worker(w).get("/api/v1/indicators?period=19").await.0, 400);
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn duplicate_events_change_nothing() {
    let mut env = TestEnv::new("duplicates").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let first = snapshot("s1", "2019-03-02T10:00:00Z", 10, 3);
    // Same source and id, different content: still a duplicate, ignored.
    let again = snapshot("s1", "2019-03-09T10:00:00Z", 99, 99);

    env.publish(&[first.clone(), first.clone(), again]).await;
    env.publish(&[first]).await;
    env.wait_for_counts(1, 0, WAIT).await;

    assert_eq!(env.value("KE3", "all", "", "").await, 13);
    assert_eq!(env.value("AP3", "all", "", "").await, 1);
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn the_latest_version_wins_whatever_the_arrival_order() {
    let mut env = TestEnv::new("versions").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    // The newer snapshot (lower values: a correction) arrives first; the older one late.
    env.publish(&[snapshot("s2", "2019-03-09T10:00:00Z", 7, 1)]).await;
    env.wait_for_counts(1, 0, WAIT).await;
    env.publish(&[snapshot("s1", "2019-03-02T10:00:00Z", 10, 3)]).await;
    env.wait_for_counts(2, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 8, "the late, older snapshot changes nothing");

    // Same time: the greater source then id wins.
    env.publish(&[snapshot("s0", "2019-03-09T10:00:00Z", 50, 0)]).await;
    env.wait_for_counts(3, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 8, "id s0 < s2 at the same time and source");
    env.publish(&[snapshot("s3", "2019-03-09T10:00:00Z", 50, 0)]).await;
    env.wait_for_counts(4, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 50);
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_withdrawal_removes_a_record_until_a_newer_version_revives_it() {
    let mut env = TestEnv::new("withdrawal").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let withdraw_post = event(
        "urn:ecpat:fr:social-collector",
        "w1",
        "2019-04-01T00:00:00Z",
        WITHDRAWN,
        json!({"record_type": "social_post", "key": {"platform": "facebook", "post_id": "p1"}}),
    );

    env.publish(&[
        snapshot("s1", "2019-03-02T10:00:00Z", 10, 3),
        publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
    ])
    .await;
    env.wait_for_counts(2, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 13);

    env.publish(&[withdraw_post]).await;
    env.wait_for_counts(3, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 0);
    assert_eq!(env.value("AP3", "all", "", "").await, 0);

    // An older snapshot with a metric never seen before stays withdrawn too.
    let mut old_clicks = snapshot("s0", "2019-03-01T12:00:00Z", 1, 1);
    old_clicks["data"]["metrics"] = json!({"clicks": 40});
    env.publish(&[old_clicks]).await;
    env.wait_for_counts(4, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 0);

    // A newer snapshot brings the series it carries back.
    let mut revived = snapshot("s9", "2019-05-01T00:00:00Z", 12, 0);
    revived["data"]["metrics"] = json!({"likes": 12});
    env.publish(&[revived]).await;
    env.wait_for_counts(5, 0, WAIT).await;
    assert_eq!(env.value("KE3", "all", "", "").await, 12);
    assert_eq!(env.value("AP3", "all", "", "").await, 1);

    let withdraw_publication = event(
        "urn:ecpat:fr:research-team",
        "w2",
        "2019-06-01T00:00:00Z",
        WITHDRAWN,
        json!({"record_type": "publication", "key": {"publication_id": "pub-1"}}),
    );
    env.publish(&[withdraw_publication]).await;
    env.wait_for_counts(6, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 0);
    env.publish(&[publication("e2", "2019-07-01T10:00:00Z", "pub-1", "global", "2019-04-30")]).await;
    env.wait_for_counts(7, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 1);
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_fact_is_stored_as_a_record_and_withdrawn_without_touching_the_default_indicators() {
    let mut env = TestEnv::new("fact").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let stored = async |env: &TestEnv| -> Option<serde_json::Value> {
        let record: Option<Option<String>> =
            sqlx::query_scalar("select record::text from records where record_type = 'fact' and record_key = $1")
                .bind(r#"["hotline-2019-fr"]"#)
                .fetch_optional(&env.pool)
                .await
                .unwrap();
        record.map(|r| r.map_or(serde_json::Value::Null, |text| serde_json::from_str(&text).unwrap()))
    };
    let fact = event(
        "urn:ecpat:fr:programme",
        "f1",
        "2019-06-01T10:00:00Z",
        "org.ecpat.fact.recorded",
        json!({
            "fact_id": "hotline-2019-fr", "kind": "hotline_supported", "date": "2019-05-20",
            "member": "ecpat-france", "countries": ["fr", "FR", "be"], "tags": ["urgent", "urgent"],
            "attributes": {"region": "europe"}, "note": "kept with the event",
        }),
    );
    let bad = event(
        "urn:ecpat:fr:programme",
        "f2",
        "2019-06-01T10:00:00Z",
        "org.ecpat.fact.recorded",
        json!({"fact_id": "hotline-2019-be", "kind": "Hotline", "date": "2019-05-20"}),
    );

    env.publish(&[publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30")]).await;
    env.wait_for_counts(1, 0, WAIT).await;
    let tallies = env.values().await;
    assert!(!tallies.is_empty());

    env.publish(&[fact, bad]).await;
    env.wait_for_counts(2, 1, WAIT).await;

    assert_eq!(
        stored(&env).await,
        Some(json!({
            "record_type": "fact", "fact_id": "hotline-2019-fr", "kind": "hotline_supported", "date": "2019-05-20",
            "member": "ecpat-france", "countries": ["FR", "BE"], "value": 1, "tags": ["urgent"],
            "attributes": {"region": "europe"},
        }))
    );
    let (_, rejections) = env.worker(w).get("/api/v1/rejections?limit=10").await;
    assert_eq!(rejections["items"][0]["reason"], "invalid_data");
    assert!(rejections["items"][0]["detail"].as_str().unwrap().contains("data.kind"), "{rejections}");
    assert_eq!(env.values().await, tallies, "a fact counts in no indicator of the default framework");

    env.publish(&[event(
        "urn:ecpat:fr:programme",
        "w1",
        "2019-07-01T10:00:00Z",
        WITHDRAWN,
        json!({"record_type": "fact", "key": {"fact_id": "hotline-2019-fr"}}),
    )])
    .await;
    env.wait_for_counts(3, 1, WAIT).await;

    assert_eq!(stored(&env).await, Some(serde_json::Value::Null), "withdrawn: the current version is a withdrawal");
    assert_eq!(env.values().await, tallies);
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_batch_applies_its_good_events_and_rejects_its_bad_ones() {
    let mut env = TestEnv::new("batch").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut bad = publication("e2", "2019-05-01T10:00:00Z", "pub-2", "galactic", "2019-04-30");
    bad["data"]["title"] = json!("bad scope");
    let batch = json!([
        publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30"),
        bad,
        {"specversion": "1.0", "id": "x"},
        publication("e3", "2019-05-01T10:00:00Z", "pub-3", "thematic", "2019-04-30"),
    ]);

    env.publish_raw(&[("org.ecpat.batch".into(), batch.to_string().into_bytes())]).await;
    env.wait_for_counts(2, 2, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 2);
    let (status, body) = env.worker(w).get("/api/v1/rejections?limit=10").await;
    assert_eq!(status, 200);
    assert_eq!(body["total"], 2);
    let reasons: Vec<&str> = body["items"].as_array().unwrap().iter().map(|i| i["reason"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"invalid_data") && reasons.contains(&"invalid_envelope"), "{reasons:?}");
    let detail =
        body["items"].as_array().unwrap().iter().find(|i| i["reason"] == "invalid_data").unwrap()["detail"].clone();
    assert!(detail.as_str().unwrap().contains("data.scope"), "the detail names the field: {detail}");
    env.cleanup().await;
}

#[tokio::test]
async fn every_rejection_reason_is_stored_with_its_bytes_and_acknowledged() {
    let mut env = TestEnv::new("rejections").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let too_large = vec![b' '; (1 << 20) + 1];
    let mut unknown = publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
    unknown["type"] = json!("org.ecpat.unheard.of");
    let mut invalid = publication("e2", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-02-30");
    invalid["data"]["published_on"] = json!("2019-02-30");
    let mut no_time = publication("e3", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
    no_time.as_object_mut().unwrap().remove("time");
    let not_json = b"{\"specversion\": \"1.0\", oops".to_vec();
    let not_utf8 = vec![0xff, 0xfe, b'{'];

    env.publish_raw(&[
        ("org.ecpat.x".into(), too_large.clone()),
        ("org.ecpat.x".into(), not_json.clone()),
        ("org.ecpat.x".into(), not_utf8.clone()),
        ("org.ecpat.x".into(), no_time.to_string().into_bytes()),
        ("org.ecpat.unheard.of".into(), unknown.to_string().into_bytes()),
        ("org.ecpat.x".into(), invalid.to_string().into_bytes()),
    ])
    .await;
    env.wait_for_counts(0, 6, WAIT).await;

    let rows: Vec<(String, Vec<u8>, i64, bool, String)> =
        sqlx::query_as("select reason, body, size, truncated, sha256 from rejections order by id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let reasons: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(reasons, ["too_large", "not_json", "not_json", "invalid_envelope", "unknown_type", "invalid_data"]);
    assert_eq!(rows[0].1.len(), 64 * 1024, "an oversized body keeps its first 64 KiB");
    assert_eq!(rows[0].2, (1 << 20) + 1);
    assert!(rows[0].3);
    assert_eq!(rows[0].4.len(), 64);
    assert_eq!(rows[1].1, not_json);
    assert_eq!(rows[2].1, not_utf8);
    assert_eq!(rows[5].1, invalid.to_string().into_bytes());
    assert_eq!(env.queue_depth().await.0, 0, "every rejected message is acknowledged");
    env.cleanup().await;
}

#[tokio::test]
async fn rejected_messages_can_be_replayed_after_a_fix() {
    let mut env = TestEnv::new("replay").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut unknown = publication("e1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
    unknown["type"] = json!("org.ecpat.research.publication.recorded.v2");
    env.publish(&[unknown]).await;
    env.wait_for_counts(0, 1, WAIT).await;

    // The "fix" here: replay the same bytes; they are rejected again (a new row), and the
    // first row is marked replayed, so nothing is replayed twice.
    let replayed = ecpat_indicators::cli::replay_rejections(&env.settings, None, None).await.unwrap();
    assert_eq!(replayed, 1);
    env.wait_for_counts(0, 2, WAIT).await;
    let again = ecpat_indicators::cli::replay_rejections(&env.settings, Some("unknown_type"), None).await.unwrap();
    assert_eq!(again, 1, "only the new rejection is left to replay");
    env.wait_for_counts(0, 3, WAIT).await;
    env.cleanup().await;
}

/// The demo set's totals, computed independently by `examples/generate_demo.py` and a
/// second hand-written recount (see docs/indicators.md, "Demo data").
const DEMO_TOTALS: [(&str, i64); 13] = [
    ("KE1", 7),
    ("KE2", 14),
    ("KE3", 20453),
    ("AP1", 20),
    ("AP2", 7),
    ("AP3", 13),
    ("AP4", 6),
    ("CV1", 15),
    ("CV2", 12),
    ("CV3", 6),
    ("ND1", 16),
    ("ND2", 16),
    ("ND3", 6),
];

#[tokio::test]
async fn the_demo_set_published_by_the_cli_gives_its_documented_totals() {
    demo_set_published(1).await;
}

#[tokio::test]
async fn the_demo_set_published_in_batches_of_100_gives_the_same_totals() {
    demo_set_published(100).await;
}

/// Publishes the demo set with `publish --batch <batch>` and checks its documented totals.
async fn demo_set_published(batch: usize) {
    let mut env = TestEnv::new(&format!("demo_{batch}")).await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-events.jsonl");
    let lines = std::fs::read_to_string(&file).unwrap().lines().filter(|l| !l.trim().is_empty()).count();

    let published = ecpat_indicators::cli::publish(&env.settings, &file, batch).await.unwrap();
    assert_eq!(published, lines);
    env.wait_for_counts(lines as i64, 0, WAIT).await;

    for (code, total) in DEMO_TOTALS {
        assert_eq!(env.value(code, "all", "", "").await, total, "{code}");
    }
    for (code, year, value) in
        [("KE3", "2018", 3013), ("KE3", "2021", 2620), ("AP3", "2020", 8), ("KE2", "2021", 6), ("ND3", "2019", 5)]
    {
        assert_eq!(env.value(code, year, "", "").await, value, "{code} {year}");
    }
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn the_longest_multibyte_source_and_id_are_stored_and_deduplicated() {
    let mut env = TestEnv::new("long_keys").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut long = publication("x", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-04-30");
    long["source"] = json!("€".repeat(1024));
    long["id"] = json!("💡".repeat(256));

    env.publish(&[long.clone(), long]).await;
    env.wait_for_counts(1, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 1);
    env.cleanup().await;
}

/// `messages` CloudEvents batches of 100 distinct publications, ids `{prefix}{m}-{i}`.
fn batches_of_100(prefix: &str, messages: usize) -> Vec<(String, Vec<u8>)> {
    (0..messages)
        .map(|m| {
            let chunk: Vec<serde_json::Value> =
                (0..100).map(|i| common::plain_publication(&format!("{prefix}{m}-{i}"))).collect();
            let body = serde_json::Value::from(chunk).to_string();
            (ecpat_indicators::broker::routing_key_for(&body), body.into_bytes())
        })
        .collect()
}

/// Waits until the worker's prefetch window is `expected` messages; panics after `WAIT`.
async fn wait_for_window(env: &mut TestEnv, w: usize, expected: f64) {
    let start = std::time::Instant::now();
    loop {
        let window = env.worker(w).metric("ecpat_prefetch_messages").await;
        if window == Some(expected) {
            return;
        }
        assert!(start.elapsed() < WAIT, "prefetch window {window:?}, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The prefetch window follows the events per message: CloudEvents batches of 100 bring it
/// to 300 messages (30,000 events in flight), single events back up to the configured
/// largest. Messages the broker delivered under an old window are applied and acknowledged
/// all the same: once the worker stops, none goes back to the queue.
#[tokio::test]
async fn the_prefetch_window_follows_the_events_per_message_and_loses_nothing() {
    let mut env = TestEnv::new("window").await;
    env.declare().await;
    let batched = batches_of_100("b", 40);
    env.publish_raw(&batched).await;
    // Small batches: the window is reconsidered after each.
    let w = env.spawn_worker_with(&[("ECPAT_CONSUMER__BATCH_SIZE", "100")]);
    env.worker(w).wait_ready(WAIT).await;
    env.wait_for_counts(4000, 0, WAIT).await;
    wait_for_window(&mut env, w, 300.0).await;

    let singles: Vec<serde_json::Value> = (0..2000).map(|i| common::plain_publication(&format!("s{i}"))).collect();
    env.publish(&singles).await;
    env.wait_for_counts(6000, 0, WAIT).await;
    wait_for_window(&mut env, w, 2000.0).await;

    assert!(env.worker(w).terminate(WAIT).success());
    assert_eq!(env.queue_depth().await.0, 0, "every message delivered was acknowledged");
    assert_eq!(env.value("KE1", "all", "", "").await, 6000);
    env.cleanup().await;
}

/// Large events (an unknown `data` field of 600 KiB, which is kept) are held to the bytes in
/// flight: with 8 MiB allowed, the window shrinks to the smallest, 16 messages, and every
/// event is counted.
#[tokio::test]
async fn large_events_are_held_to_the_bytes_in_flight() {
    let mut env = TestEnv::new("window_bytes").await;
    env.declare().await;
    let filler = "x".repeat(600 * 1024);
    let large: Vec<serde_json::Value> = (0..100)
        .map(|i| {
            let mut event = common::plain_publication(&format!("l{i}"));
            event["data"]["notes"] = serde_json::json!(filler);
            event
        })
        .collect();
    env.publish(&large).await;
    let w = env.spawn_worker_with(&[("ECPAT_CONSUMER__MIB_IN_FLIGHT", "8")]);
    env.worker(w).wait_ready(WAIT).await;
    wait_for_window(&mut env, w, 16.0).await;
    env.wait_for_counts(100, 0, WAIT).await;
    assert!(env.worker(w).terminate(WAIT).success());
    assert_eq!(env.queue_depth().await.0, 0, "every message delivered was acknowledged");
    assert_eq!(env.value("KE1", "all", "", "").await, 100);
    env.cleanup().await;
}

/// A resize of the prefetch window under a steady flow, then SIGTERM right after it: every
/// message is applied exactly once, by this worker or by the next. (A multiple
/// acknowledgement must never cover a message still waiting with the new consumer: the old
/// consumer is cancelled before the new one starts.)
#[tokio::test]
async fn stopping_right_after_a_window_resize_loses_nothing() {
    let mut env = TestEnv::new("window_stop").await;
    env.declare().await;
    let w = env.spawn_worker_with(&[("ECPAT_CONSUMER__BATCH_SIZE", "100")]);
    env.worker(w).wait_ready(WAIT).await;
    let singles: Vec<serde_json::Value> = (0..1500).map(|i| common::plain_publication(&format!("s{i}"))).collect();
    env.publish(&singles).await;
    wait_for_window(&mut env, w, 2000.0).await;

    // Messages of 100 events, published while the worker consumes: the window shrinks.
    let batched = batches_of_100("b", 150);
    let publisher = {
        let settings = env.settings.clone();
        tokio::spawn(async move {
            let connection = ecpat_indicators::broker::connect(&settings.amqp, "test publisher").await.unwrap();
            let publisher = ecpat_indicators::broker::Publisher::new(&connection, &settings.amqp).await.unwrap();
            for message in batched.chunks(25) {
                publisher.publish_all(message).await.unwrap();
            }
            connection.close(200, "ok".into()).await.unwrap();
        })
    };
    let start = std::time::Instant::now();
    while env.worker(w).metric("ecpat_prefetch_messages").await == Some(2000.0) {
        assert!(start.elapsed() < WAIT, "the window never shrank");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let out_of_order = env.worker(w).metric("ecpat_deliveries_out_of_order_total").await;
    assert!(env.worker(w).terminate(WAIT).success());
    assert_eq!(out_of_order, None, "deliveries were read out of tag order");
    publisher.await.unwrap();

    let next = env.spawn_worker();
    env.worker(next).wait_ready(WAIT).await;
    env.wait_for_counts(1500 + 150 * 100, 0, WAIT).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 16_500);
    env.cleanup().await;
}
