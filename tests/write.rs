//! `POST /api/v1/events` against a real worker process, RabbitMQ and PostgreSQL: events sent
//! over HTTP (structured, batched and binary mode) are published, confirmed and counted by
//! the worker; invalid ones are refused with the reason and detail the worker would store,
//! and nothing of a refused request reaches the queue; the write token guards the route.

mod common;

use std::time::{Duration, Instant};

use common::{TestEnv, Worker, event, plain_publication, publication};
use lapin::options::{BasicGetOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "write-token-for-tests";
const PUBLICATION: &str = "org.ecpat.research.publication.recorded";
const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// One worker with the write token and the extra `variables` set, ready.
async fn with_writer(label: &str, extra: &[(&str, &str)], test: impl AsyncFnOnce(&mut TestEnv, String)) {
    let mut variables = vec![("ECPAT_WRITE_TOKEN", TOKEN)];
    variables.extend_from_slice(extra);
    common::with_worker(label, &variables, test).await;
}

/// An answer: status, headers and JSON body (null when not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// POSTs `body` to `/api/v1/events` with `headers`, and the write token unless `token` is
/// `None`.
async fn post(http: &str, token: Option<&str>, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Answer {
    let mut request = reqwest::Client::new().post(format!("http://{http}/api/v1/events")).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the API answers");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Answer { status, headers, body: response.json().await.unwrap_or(Value::Null) }
}

/// POSTs one event or a batch in structured mode, with the write token.
async fn post_json(http: &str, body: &Value) -> Answer {
    let content_type = if body.is_array() { BATCH } else { STRUCTURED };
    post(http, Some(TOKEN), &[("content-type", content_type)], body.to_string()).await
}

/// A training of `ecpat-france` (counted in ND2), in binary mode: its headers and its data.
fn binary_training(id: &str) -> (Vec<(&'static str, String)>, Value) {
    let headers = vec![
        ("ce-specversion", "1.0".to_owned()),
        ("ce-id", id.to_owned()),
        ("ce-source", "urn:ecpat:fr:programme".to_owned()),
        ("ce-type", "org.ecpat.capacity.training.recorded".to_owned()),
        ("ce-time", "2019-12-01T09:00:00Z".to_owned()),
        ("content-type", "application/json; charset=utf-8".to_owned()),
    ];
    let data = json!({"training_id": id, "title": "Online safety", "held_on": "2019-11-30",
        "beneficiaries": ["ecpat-france", "ecpat-belgique"]});
    (headers, data)
}

async fn post_binary(http: &str, headers: &[(&'static str, String)], body: &str) -> Answer {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    post(http, Some(TOKEN), &headers, body.to_owned()).await
}

#[tokio::test]
async fn an_event_sent_in_structured_mode_is_published_and_counted() {
    with_writer("write_single", &[], async |env, http| {
        let answer = post_json(&http, &plain_publication("e1")).await;

        assert_eq!((answer.status, &answer.body), (202, &json!({"accepted": ["e1"]})));
        env.wait_for_counts(1, 0, WAIT).await;
        assert_eq!(env.value("KE1", "all", "", "").await, 1);
    })
    .await;
}

#[tokio::test]
async fn a_batch_sent_in_structured_mode_is_published_and_counted() {
    with_writer("write_batch", &[], async |env, http| {
        let batch = json!([
            publication("b1", "2019-05-01T10:00:00Z", "pub-1", "global", "2019-03-01"),
            publication("b2", "2019-05-01T10:00:00Z", "pub-2", "thematic", "2020-03-01"),
            publication("b3", "2019-05-01T10:00:00Z", "pub-3", "national", "2020-04-01"),
        ]);

        let answer = post_json(&http, &batch).await;

        assert_eq!((answer.status, &answer.body), (202, &json!({"accepted": ["b1", "b2", "b3"]})));
        env.wait_for_counts(3, 0, WAIT).await;
        assert_eq!(env.value("KE1", "all", "", "").await, 2);
        assert_eq!(env.value("KE2", "2020", "country", "FR").await, 1);
        let routing: Vec<String> =
            sqlx::query_scalar("select distinct routing_key from events").fetch_all(&env.pool).await.unwrap();
        assert_eq!(routing, ["org.ecpat.batch"], "one batch message, routed as `publish` routes one");
    })
    .await;
}

#[tokio::test]
async fn an_event_sent_in_binary_mode_is_published_as_its_json_event_and_counted() {
    with_writer("write_binary", &[], async |env, http| {
        let (headers, data) = binary_training("t%C3%A9-1");

        let answer = post_binary(&http, &headers, &data.to_string()).await;

        assert_eq!((answer.status, &answer.body), (202, &json!({"accepted": ["té-1"]})), "ids are percent-decoded");
        env.wait_for_counts(1, 0, WAIT).await;
        assert_eq!(env.value("ND2", "2019", "", "").await, 2);
        let (body, routing_key): (Value, String) =
            sqlx::query_as("select body::jsonb, routing_key from events").fetch_one(&env.pool).await.unwrap();
        assert_eq!(routing_key, "org.ecpat.capacity.training.recorded");
        assert_eq!(
            body,
            json!({"specversion": "1.0", "id": "té-1", "source": "urn:ecpat:fr:programme",
                "type": "org.ecpat.capacity.training.recorded", "time": "2019-12-01T09:00:00Z",
                "datacontenttype": "application/json; charset=utf-8", "data": data}),
            "the event the worker stored is the JSON form of the request"
        );
    })
    .await;
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_a_401_and_publishes_nothing() {
    let read_token = ("ECPAT_API_TOKEN", "read-token-for-tests");
    with_writer("write_token", &[read_token], async |env, http| {
        let body = plain_publication("e1").to_string();
        let content_type = [("content-type", STRUCTURED)];

        for token in [None, Some("wrong"), Some(read_token.1), Some("")] {
            let answer = post(&http, token, &content_type, body.clone()).await;
            assert_eq!(answer.status, 401, "token {token:?}: {}", answer.body);
            let fields: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
            assert_eq!(fields, ["error"], "a one-line JSON error: {}", answer.body);
            assert_eq!(answer.headers["www-authenticate"], "Bearer");
        }
        // The write token does not open the read API either.
        let response = reqwest::Client::new()
            .get(format!("http://{http}/api/v1/indicators"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);

        // Then a good request goes through, and it alone is counted.
        assert_eq!(post(&http, Some(TOKEN), &content_type, body).await.status, 202);
        env.wait_for_counts(1, 0, WAIT).await;
    })
    .await;
}

#[tokio::test]
async fn without_a_write_token_the_route_does_not_exist() {
    let mut env = TestEnv::new("write_unset").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let http = env.worker(w).http.clone();

    let answer = post(&http, Some(TOKEN), &[("content-type", STRUCTURED)], plain_publication("e1").to_string()).await;

    let status = answer.status;
    env.cleanup().await;
    assert_eq!(status, 404, "{}", answer.body);
}

/// The bodies that the worker would reject, one per kind of problem (binary mode's own
/// problems apart).
fn bad_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let good = plain_publication("bad");
    let with = |field: &str, value: Value| {
        let mut event = good.clone();
        event[field] = value;
        event.to_string().into_bytes()
    };
    let without = |field: &str| {
        let mut event = good.clone();
        event.as_object_mut().unwrap().remove(field);
        event.to_string().into_bytes()
    };
    let mut bad_data = good.clone();
    bad_data["data"]["scope"] = json!("planetary");
    let too_many = Value::Array((0..1001).map(|i| plain_publication(&format!("p{i}"))).collect());
    vec![
        ("not_json", b"{\"specversion\": \"1.0\", oops".to_vec()),
        ("not_json", b"{\"title\": \"caf\xE9\"}".to_vec()),
        ("invalid_envelope", without("specversion")),
        ("invalid_envelope", with("specversion", json!("0.3"))),
        ("invalid_envelope", without("id")),
        ("invalid_envelope", with("source", json!(""))),
        ("invalid_envelope", with("time", json!("yesterday"))),
        ("invalid_envelope", with("datacontenttype", json!("text/plain"))),
        ("invalid_envelope", with("data", json!("a string"))),
        ("invalid_envelope", b"42".to_vec()),
        ("invalid_envelope", too_many.to_string().into_bytes()),
        ("unknown_type", with("type", json!("org.ecpat.nope"))),
        ("invalid_data", bad_data.to_string().into_bytes()),
        ("too_large", vec![b' '; ecpat_indicators::envelope::MAX_BODY + 1]),
    ]
}

#[tokio::test]
async fn every_rejection_reason_is_answered_with_the_reason_and_detail_the_worker_stores() {
    with_writer("write_reasons", &[], async |env, http| {
        let bodies = bad_bodies();
        let mut answered = Vec::new();
        for (reason, body) in &bodies {
            let answer = post(&http, Some(TOKEN), &[("content-type", STRUCTURED)], body.clone()).await;
            let status = if *reason == "too_large" { 413 } else { 400 };
            assert_eq!(answer.status, status, "{reason}: {}", answer.body);
            assert_eq!(answer.body["reason"], *reason, "{}", answer.body);
            let detail = answer.body["detail"].as_str().unwrap().to_owned();
            let rejection = json!({"reason": reason, "detail": detail, "batch_index": null});
            assert_eq!(answer.body["rejections"], json!([rejection]), "{}", answer.body);
            assert!(answer.body["error"].as_str().unwrap().contains(&detail), "{}", answer.body);
            answered.push((reason.to_string(), detail));
        }
        let invalid_data = &answered.iter().find(|(reason, _)| reason == "invalid_data").unwrap().1;
        assert!(invalid_data.contains("scope"), "the detail names the field: {invalid_data}");
        assert_eq!(env.counts().await, (0, 0), "nothing refused was published");

        // The same bodies through the queue: the worker stores the same reasons and details.
        let messages: Vec<(String, Vec<u8>)> = bodies.into_iter().map(|(_, b)| ("org.ecpat.x".into(), b)).collect();
        env.publish_raw(&messages).await;
        env.wait_for_counts(0, answered.len() as i64, WAIT).await;
        let mut stored: Vec<(String, String)> =
            sqlx::query_as("select reason, detail from rejections").fetch_all(&env.pool).await.unwrap();
        stored.sort();
        answered.sort();
        assert_eq!(answered, stored);
    })
    .await;
}

#[tokio::test]
async fn binary_mode_refuses_a_body_that_is_not_json_or_not_of_a_json_type() {
    with_writer("write_binary_bad", &[], async |env, http| {
        let (mut headers, data) = binary_training("t1");

        let not_json = post_binary(&http, &headers, "{oops").await;
        headers.retain(|(name, _)| *name != "ce-time");
        let no_time = post_binary(&http, &headers, &data.to_string()).await;
        headers.push(("ce-time", "2019-12-01T09:00:00Z".into()));
        headers.retain(|(name, _)| *name != "content-type");
        headers.push(("content-type", "text/plain".into()));
        let text = post_binary(&http, &headers, "hello").await;

        assert_eq!((not_json.status, &not_json.body["reason"]), (400, &json!("not_json")), "{}", not_json.body);
        assert_eq!((no_time.status, &no_time.body["detail"]), (400, &json!("time is required")));
        assert_eq!((text.status, &text.body["reason"]), (400, &json!("invalid_envelope")));
        assert!(text.body["detail"].as_str().unwrap().contains("datacontenttype"), "{}", text.body);
        assert_eq!(env.counts().await, (0, 0));
        assert_eq!(env.queue_depth().await.0, 0);
    })
    .await;
}

#[tokio::test]
async fn a_batch_with_bad_events_is_refused_whole_listing_each_and_nothing_is_published() {
    with_writer("write_batch_bad", &[], async |env, http| {
        let mut bad_data = plain_publication("b2");
        bad_data["data"]["scope"] = json!("planetary");
        let unknown = event("urn:x", "b4", "2019-05-01T10:00:00Z", "org.ecpat.nope", json!({}));
        let batch = json!([plain_publication("b1"), bad_data, plain_publication("b3"), unknown]);

        let answer = post_json(&http, &batch).await;

        assert_eq!(answer.status, 400, "{}", answer.body);
        let rejections = answer.body["rejections"].as_array().unwrap();
        let listed: Vec<(&Value, &Value)> = rejections.iter().map(|r| (&r["batch_index"], &r["reason"])).collect();
        assert_eq!(listed, [(&json!(1), &json!("invalid_data")), (&json!(3), &json!("unknown_type"))]);
        assert!(rejections[0]["detail"].as_str().unwrap().starts_with("batch event 1: "), "{}", answer.body);
        assert_eq!(
            (&answer.body["reason"], &answer.body["detail"]),
            (&rejections[0]["reason"], &rejections[0]["detail"])
        );
        assert!(answer.body["error"].as_str().unwrap().contains("2 of 4"), "{}", answer.body);

        // A good event sent after it is confirmed, so the batch would be ahead of it in the
        // queue: the worker sees that one event and nothing else.
        assert_eq!(post_json(&http, &plain_publication("after")).await.status, 202);
        env.wait_for_counts(1, 0, WAIT).await;
        assert_eq!(env.value("KE1", "all", "", "").await, 1);
    })
    .await;
}

/// A queue of this test's own, bound to its exchange for every key and never consumed: it
/// holds a copy of every message the broker routed.
async fn observer(env: &TestEnv) -> (lapin::Connection, lapin::Channel, String) {
    let name = format!("{}.observer", env.name);
    let connection = ecpat_indicators::broker::connect(&env.settings.amqp, "test observer").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let durable = QueueDeclareOptions { durable: true, ..Default::default() };
    channel.queue_declare(name.as_str().into(), durable, FieldTable::default()).await.unwrap();
    let exchange = env.settings.amqp.exchange.as_str().into();
    channel
        .queue_bind(name.as_str().into(), exchange, "#".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();
    (connection, channel, name)
}

#[tokio::test]
async fn an_accepted_event_is_in_the_queue_persistent_when_the_answer_comes() {
    with_writer("write_confirm", &[], async |env, http| {
        let (connection, channel, queue) = observer(env).await;
        let single = plain_publication("c1");
        let batch = json!([plain_publication("c2"), plain_publication("c3")]);

        assert_eq!(post_json(&http, &single).await.status, 202);
        let depth = channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        assert_eq!(depth, 1, "confirmed, hence routed to every bound queue, before the answer");
        assert_eq!(post_json(&http, &batch).await.status, 202);

        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 2 {
            assert!(start.elapsed() < WAIT, "the observer queue holds both messages");
            let message = channel.basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true }).await.unwrap();
            got.extend(message.map(|m| m.delivery));
        }
        let (first, second) = (&got[0], &got[1]);
        assert_eq!(first.routing_key.as_str(), PUBLICATION);
        assert_eq!(serde_json::from_slice::<Value>(&first.data).unwrap(), single);
        assert_eq!(first.properties.delivery_mode(), &Some(2), "persistent");
        assert_eq!(first.properties.content_type().as_ref().map(|t| t.as_str()), Some(STRUCTURED));
        assert_eq!(second.routing_key.as_str(), "org.ecpat.batch");
        assert_eq!(serde_json::from_slice::<Value>(&second.data).unwrap(), batch);
        assert_eq!(second.properties.content_type().as_ref().map(|t| t.as_str()), Some(BATCH));

        channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
        connection.close(200, "ok".into()).await.unwrap();
        env.wait_for_counts(3, 0, WAIT).await;
    })
    .await;
}

#[tokio::test]
async fn when_the_broker_is_unreachable_the_answer_is_503_with_retry_after() {
    let env = TestEnv::new("write_unavailable").await;
    let worker = Worker::spawn(
        &env.settings,
        &[("ECPAT_WRITE_TOKEN", TOKEN), ("AMQP_URL", "amqp://127.0.0.1:1/%2f"), ("RUST_LOG", "error")],
    );
    let start = Instant::now();
    while reqwest::get(format!("http://{}/healthz", worker.http)).await.is_err() {
        assert!(start.elapsed() < WAIT, "the worker serves HTTP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let answer = post_json(&worker.http, &plain_publication("e1")).await;

    drop(worker);
    env.cleanup().await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.headers["retry-after"], "5");
    let fields: Vec<&String> = answer.body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error"], "{}", answer.body);
}

/// Why `body` is not the answer that the served OpenAPI document describes for
/// `POST /api/v1/events` and `status` (nothing when it is).
fn violations(document: &Value, status: u16, body: &Value) -> Vec<String> {
    let pointer = format!("/paths/~1api~1v1~1events/post/responses/{status}/content/application~1json/schema");
    let schema = document.pointer(&pointer).unwrap_or_else(|| panic!("the document describes a {status}"));
    let mut root = schema.clone();
    root["components"] = document["components"].clone();
    let validator = jsonschema::draft202012::options().build(&root).expect("the schema compiles");
    validator.iter_errors(body).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

#[tokio::test]
async fn every_answer_matches_the_openapi_document() {
    with_writer("write_openapi", &[], async |env, http| {
        let document: Value =
            reqwest::get(format!("http://{http}/api/v1/openapi.json")).await.unwrap().json().await.unwrap();
        let mut bad = plain_publication("bad");
        bad["data"]["scope"] = json!("planetary");
        let too_large = vec![b' '; ecpat_indicators::envelope::MAX_BODY + 1];
        let answers = [
            post_json(&http, &plain_publication("ok")).await,
            post_json(&http, &bad).await,
            post_json(&http, &json!([plain_publication("ok2"), bad])).await,
            post(&http, None, &[("content-type", STRUCTURED)], "{}").await,
            post(&http, Some(TOKEN), &[("content-type", STRUCTURED)], too_large).await,
        ];

        let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        assert_eq!(statuses, [202, 400, 400, 401, 413]);
        for answer in &answers {
            let violations = violations(&document, answer.status, &answer.body);
            assert!(violations.is_empty(), "{}: {}\n{}", answer.status, violations.join("\n"), answer.body);
        }
        let mut extra = answers[1].body.clone();
        extra["index"] = json!(0);
        assert!(!violations(&document, 400, &extra).is_empty(), "the check is strict");
        env.wait_for_counts(1, 0, WAIT).await;
    })
    .await;
}

/// The broker's connection pids of the API publisher of process `pid`, through `rabbitmqctl`
/// (as an operator sees them).
async fn publisher_connections(pid: u32) -> Vec<String> {
    let output = tokio::process::Command::new("rabbitmqctl")
        .args(["list_connections", "-s", "pid", "client_properties"])
        .output()
        .await
        .expect("rabbitmqctl runs (the tests need it on the PATH, with access to the broker)");
    assert!(output.status.success(), "rabbitmqctl failed: {}", String::from_utf8_lossy(&output.stderr));
    let name = format!("\"ecpat-indicators api publisher pid {pid}\"");
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    listing
        .lines()
        .filter(|line| line.contains(&name))
        .filter_map(|line| Some(line.split('\t').next()?.to_owned()))
        .collect()
}

#[tokio::test]
async fn after_its_connection_is_closed_the_endpoint_connects_again() {
    with_writer("write_reconnect", &[], async |env, http| {
        assert_eq!(post_json(&http, &plain_publication("r1")).await.status, 202);
        let pid = env.worker(0).child.id();
        let before = publisher_connections(pid).await;
        assert_eq!(before.len(), 1, "one publisher connection: {before:?}");

        let closed = tokio::process::Command::new("rabbitmqctl")
            .args(["close_connection", &before[0], "write endpoint test"])
            .status()
            .await
            .unwrap();
        assert!(closed.success());
        // A client retries on 503 (the request that finds the connection closed may get one).
        let start = Instant::now();
        let mut statuses = Vec::new();
        while statuses.last() != Some(&202) {
            assert!(start.elapsed() < WAIT, "the endpoint never published again: {statuses:?}");
            statuses.push(post_json(&http, &plain_publication("r2")).await.status);
        }

        assert!(statuses.len() <= 2 && statuses[..statuses.len() - 1].iter().all(|s| *s == 503), "{statuses:?}");
        let after = publisher_connections(pid).await;
        assert!(after.len() == 1 && after != before, "a new connection: {before:?} then {after:?}");
        env.wait_for_counts(2, 0, WAIT).await;
        assert_eq!(env.value("KE1", "all", "", "").await, 2);
    })
    .await;
}
