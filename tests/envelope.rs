//! What real producers send beside the plain case, end to end through a real worker:
//! optional attributes set to null, JSON media types other than `application/json`, a
//! byte order mark before the body, and times with more than nine fractional digits
//! (docs/events.md, sections 2 and 5).

mod common;

use std::time::Duration;

use common::{TestEnv, event, plain_publication};
use ecpat_indicators::store::recompute::recompute;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const BOM: &[u8] = b"\xef\xbb\xbf";
const PUBLICATION: &str = "org.ecpat.research.publication.recorded";
const SNAPSHOT: &str = "org.ecpat.social.metrics.snapshot";

fn message(body: Vec<u8>) -> (String, Vec<u8>) {
    ("org.ecpat.test".to_owned(), body)
}

fn with(mut value: Value, name: &str, attribute: Value) -> Value {
    value[name] = attribute;
    value
}

async fn assert_recompute_matches(env: &TestEnv) {
    let incremental = env.values().await;
    recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, incremental, "recompute must give the incremental tallies");
}

#[tokio::test]
async fn events_with_null_attributes_json_media_types_or_a_byte_order_mark_are_all_counted() {
    let mut env = TestEnv::new("envelope_edges").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let mut bodies: Vec<Vec<u8>> = [
        with(plain_publication("null-type"), "datacontenttype", Value::Null),
        with(with(plain_publication("null-subject"), "subject", Value::Null), "dataschema", Value::Null),
        with(plain_publication("charset"), "datacontenttype", json!("application/json; charset=utf-8")),
        with(plain_publication("upper-case"), "datacontenttype", json!("Application/JSON")),
        with(plain_publication("text-json"), "datacontenttype", json!("text/json")),
        with(plain_publication("suffix"), "datacontenttype", json!("application/cloudevents+json")),
    ]
    .iter()
    .map(|event| event.to_string().into_bytes())
    .collect();
    bodies.push([BOM, plain_publication("bom").to_string().as_bytes()].concat());
    let batch = json!([plain_publication("bom-batch-1"), plain_publication("bom-batch-2")]);
    bodies.push([BOM, batch.to_string().as_bytes()].concat());

    env.publish_raw(&bodies.into_iter().map(message).collect::<Vec<_>>()).await;
    env.wait_for_counts(9, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 9, "every publication counts, none is rejected");
    assert_recompute_matches(&env).await;
    env.cleanup().await;
}

/// A publication `publication_id`, global (counted in KE1) or national (counted in KE2).
fn publication(source: &str, id: &str, time: &str, publication_id: &str, scope: &str) -> Value {
    let data = json!({"publication_id": publication_id, "title": "Study", "scope": scope, "countries": ["fr"],
        "contributed": true, "published_on": "2019-04-30"});
    event(source, id, time, PUBLICATION, data)
}

#[tokio::test]
async fn a_later_time_past_the_ninth_digit_wins_over_a_greater_source_in_either_order() {
    let mut env = TestEnv::new("subnanos").await;
    let earlier = "2019-05-01T10:00:00.0000000001Z";
    let later = "2019-05-01T12:00:00.0000000002+02:00";
    // The earlier versions come from the greater source: if the times tied, they would win.
    let (greater, lesser) = ("urn:ecpat:fr:z", "urn:ecpat:fr:a");
    let post = json!({"platform": "x", "post_id": "p1"});
    let withdrawal =
        event(lesser, "w", later, "org.ecpat.record.withdrawn", json!({"record_type": "social_post", "key": post}));
    let snapshot = event(
        greater,
        "s",
        earlier,
        SNAPSHOT,
        json!({"platform": "x", "post_id": "p1",
        "member": "ecpat-france", "published_at": "2019-04-30T10:00:00Z", "publication_id": "pub-a",
        "metrics": {"likes": 10}}),
    );
    let first = [
        publication(greater, "a-old", earlier, "pub-a", "national"),
        publication(lesser, "b-new", later, "pub-b", "global"),
        withdrawal,
    ];
    let second = [
        publication(lesser, "a-new", later, "pub-a", "global"),
        publication(greater, "b-old", earlier, "pub-b", "national"),
        snapshot,
    ];

    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    env.publish(&first).await;
    env.wait_for_counts(3, 0, WAIT).await;
    // A new worker knows nothing: the second versions meet the first ones as stored.
    env.worker(w).kill();
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    env.publish(&second).await;
    env.wait_for_counts(6, 0, WAIT).await;

    assert_eq!(env.value("KE1", "all", "", "").await, 2, "both publications are global, as their later version says");
    assert_eq!(env.value("KE2", "all", "", "").await, 0, "the earlier, national versions count nowhere");
    assert_eq!(env.value("KE3", "all", "", "").await, 0, "the later withdrawal covers the earlier snapshot");
    assert_recompute_matches(&env).await;
    assert_eq!(env.value("KE1", "all", "", "").await, 2);
    // The evidence lists the versions in the order that decides, the current one last.
    let (status, evidence) = env.worker(w).get("/api/v1/indicators/KE1/records").await;
    assert_eq!((status, evidence["records"].as_array().unwrap().len()), (200, 2));
    for record in evidence["records"].as_array().unwrap() {
        let versions: Vec<(String, bool)> = record["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_str().unwrap().to_owned(), e["current"] == true))
            .collect();
        let letter = if record["key"] == json!(["pub-a"]) { "a" } else { "b" };
        assert_eq!(versions, [(format!("{letter}-old"), false), (format!("{letter}-new"), true)], "{record}");
    }
    env.cleanup().await;
}
