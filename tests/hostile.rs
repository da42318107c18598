//! Hostile input: what the fuzzer (`examples/fuzz_decode.rs`) probes, kept as regression
//! tests. First the decoding rules, then the same messages through a real worker: each is
//! acknowledged and either applied or kept as a rejection, and the worker keeps going.

mod common;

use std::time::Duration;

use common::{TestEnv, event, plain_publication as publication};
use ecpat_indicators::broker::{self, routing_key_for};
use ecpat_indicators::envelope::{Decoded, MAX_BATCH, MAX_BODY, Reason, decode};
use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn snapshot(id: &str, likes: &str) -> String {
    format!(
        r#"{{"specversion": "1.0", "id": "{id}", "source": "urn:ecpat:fr:social-collector", "time": "2019-03-02T10:00:00Z",
        "type": "org.ecpat.social.metrics.snapshot", "data": {{"platform": "x", "post_id": "1", "member": "ecpat-france",
        "published_at": "2019-03-01T10:00:00Z", "metrics": {{"likes": {likes}}}}}}}"#
    )
}

/// A publication event as text, with `field` (in `data`) set to the JSON text `value`.
fn publication_with(id: &str, field: &str, value: &str) -> String {
    let mut event = publication(id);
    event["data"][field] = json!("@@value@@");
    event.to_string().replace("\"@@value@@\"", value)
}

/// `body` with `bytes` in the middle of its title.
fn with_bytes(body: &str, bytes: &[u8]) -> Vec<u8> {
    let (head, tail) = body.split_once("Study").expect("a title");
    [head.as_bytes(), b"St", bytes, b"udy", tail.as_bytes()].concat()
}

/// What a body should give: one event applied, or a rejection for this reason.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Applied,
    Rejected(Reason),
}

fn outcome(decoded: &Decoded) -> Vec<Expect> {
    let mut out: Vec<Expect> = decoded.events.iter().map(|_| Expect::Applied).collect();
    out.extend(decoded.rejections.iter().map(|r| Expect::Rejected(r.reason)));
    out
}

/// Every hostile body with what it must give. Shared by the decoding test and the worker test.
fn hostile_cases() -> Vec<(&'static str, Vec<u8>, Vec<Expect>)> {
    use Expect::{Applied, Rejected};
    use Reason::*;
    let good = publication("pad").to_string();
    let padded = |len: usize| format!("{good}{}", " ".repeat(len - good.len())).into_bytes();
    let mut nested_in_data = publication("deep");
    nested_in_data["data"]["note"] = json!("@@deep@@");
    let nested_in_data =
        nested_in_data.to_string().replace("\"@@deep@@\"", &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)));
    let mut shallow = publication("shallow");
    shallow["data"]["note"] = json!("@@deep@@");
    let shallow = shallow.to_string().replace("\"@@deep@@\"", &format!("{}{}", "[".repeat(100), "]".repeat(100)));
    let cases: Vec<(&str, Vec<u8>, Vec<Expect>)> = vec![
        // Nesting: serde_json stops at 128 levels, well before the stack is at risk.
        ("100k [", "[".repeat(100_000).into_bytes(), vec![Rejected(NotJson)]),
        ("100k {\"a\":", "{\"a\":".repeat(100_000).into_bytes(), vec![Rejected(NotJson)]),
        ("100k nested arrays in data", nested_in_data.into_bytes(), vec![Rejected(NotJson)]),
        ("100 nested arrays in data", shallow.into_bytes(), vec![Applied]),
        // Size.
        ("exactly 1 MiB", padded(MAX_BODY), vec![Applied]),
        ("1 MiB + 1", padded(MAX_BODY + 1), vec![Rejected(TooLarge)]),
        ("2 MiB of [", "[".repeat(2 * MAX_BODY).into_bytes(), vec![Rejected(TooLarge)]),
        // Not UTF-8.
        ("a 0xff byte", [b"\xff".as_slice(), good.as_bytes()].concat(), vec![Rejected(NotJson)]),
        ("an overlong NUL in a string", with_bytes(&good, b"\xc0\x80"), vec![Rejected(NotJson)]),
        ("a UTF-8 encoded surrogate in a string", with_bytes(&good, b"\xed\xa0\x80"), vec![Rejected(NotJson)]),
        ("a cut multibyte sequence", [good.as_bytes(), b"\xe2\x82".as_slice()].concat(), vec![Rejected(NotJson)]),
        // NUL, escaped and raw.
        (
            "\\u0000 in id",
            good.replacen("\"id\":\"pad\"", "\"id\":\"p\\u0000d\"", 1).into_bytes(),
            vec![Rejected(InvalidEnvelope)],
        ),
        (
            "\\u0000 in source",
            good.replacen("urn:ecpat:fr:research-team", "urn:\\u0000", 1).into_bytes(),
            vec![Rejected(InvalidEnvelope)],
        ),
        (
            "\\u0000 in type",
            good.replacen("publication.recorded", "publication.recorded\\u0000", 1).into_bytes(),
            vec![Rejected(UnknownType)],
        ),
        ("\\u0000 in free text", publication_with("nul-title", "title", "\"a\\u0000b\"").into_bytes(), vec![Applied]),
        (
            "\\u0000 in an identifier",
            publication_with("nul-id", "publication_id", "\"p\\u0000\"").into_bytes(),
            vec![Rejected(InvalidData)],
        ),
        (
            "\\u0000 in an unknown data field",
            publication_with("nul-note", "note", "\"\\u0000\"").into_bytes(),
            vec![Applied],
        ),
        ("a raw NUL in a string", good.replacen("Study", "St\0dy", 1).into_bytes(), vec![Rejected(NotJson)]),
        ("a NUL after the event", format!("{good}\0").into_bytes(), vec![Rejected(NotJson)]),
        // Numbers: integers must be integer literals in range.
        ("likes 1e12", snapshot("n1", "1000000000000").into_bytes(), vec![Applied]),
        ("likes 1e12 + 1", snapshot("n2", "1000000000001").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes 1.5", snapshot("n3", "1.5").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes 10.0", snapshot("n4", "10.0").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes 1e3", snapshot("n5", "1e3").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes -1", snapshot("n6", "-1").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes 2^64", snapshot("n7", "18446744073709551616").into_bytes(), vec![Rejected(InvalidData)]),
        ("likes 1e400", snapshot("n8", "1e400").into_bytes(), vec![Rejected(NotJson)]),
        (
            "a 30-digit number in an unknown field",
            publication_with("n9", "note", "123456789012345678901234567890").into_bytes(),
            vec![Applied],
        ),
        // Duplicate keys: serde_json keeps the last one.
        ("specversion 0.3 then 1.0", good.replacen("{", "{\"specversion\":\"0.3\",", 1).into_bytes(), vec![Applied]),
        (
            "specversion 1.0 then 0.3",
            good.replacen("\"1.0\"", "\"1.0\",\"specversion\":\"0.3\"", 1).into_bytes(),
            vec![Rejected(InvalidEnvelope)],
        ),
        (
            "id twice",
            publication_with("dup-first", "x", "1")
                .replacen("\"id\":\"dup-first\"", "\"id\":\"dup-first\",\"id\":\"dup-last\"", 1)
                .into_bytes(),
            vec![Applied],
        ),
        (
            "scope valid then invalid",
            publication_with("dup-scope", "scope", "\"global\",\"scope\":\"galactic\"").into_bytes(),
            vec![Rejected(InvalidData)],
        ),
        // Odd Unicode.
        (
            "RTL override in free text",
            publication_with("rtl-title", "title", "\"\u{202e}ydutS\"").into_bytes(),
            vec![Applied],
        ),
        ("RTL override in an id", publication("rtl-\u{202e}1").to_string().into_bytes(), vec![Applied]),
        (
            "zero-width joiner in a country code",
            publication_with("zwj", "countries", "[\"fr\u{200d}\"]").into_bytes(),
            vec![Rejected(InvalidData)],
        ),
        ("C1 control in an id", publication("c1-\u{85}").to_string().into_bytes(), vec![Rejected(InvalidEnvelope)]),
        ("line separator in an id", publication("ls-\u{2028}").to_string().into_bytes(), vec![Applied]),
        (
            "256 characters with combining marks",
            publication(&format!("e{}", "\u{301}".repeat(255))).to_string().into_bytes(),
            vec![Applied],
        ),
        (
            "257 characters with combining marks",
            publication(&format!("e{}", "\u{301}".repeat(256))).to_string().into_bytes(),
            vec![Rejected(InvalidEnvelope)],
        ),
        ("precomposed é", publication("caf\u{e9}").to_string().into_bytes(), vec![Applied]),
        ("decomposed é", publication("cafe\u{301}").to_string().into_bytes(), vec![Applied]),
        (
            "fullwidth country",
            publication_with("fw", "countries", "[\"\u{ff46}\u{ff52}\"]").into_bytes(),
            vec![Rejected(InvalidData)],
        ),
        ("byte order mark", [b"\xef\xbb\xbf".as_slice(), good.as_bytes()].concat(), vec![Applied]),
        (
            "two byte order marks",
            [b"\xef\xbb\xbf\xef\xbb\xbf".as_slice(), good.as_bytes()].concat(),
            vec![Rejected(NotJson)],
        ),
        // Surrogate escapes: a pair is one character, a lone half is not JSON text serde_json takes.
        ("lone high surrogate", publication_with("sur1", "title", "\"\\ud800\"").into_bytes(), vec![Rejected(NotJson)]),
        ("lone low surrogate", publication_with("sur2", "title", "\"\\udc00\"").into_bytes(), vec![Rejected(NotJson)]),
        ("surrogate pair", publication_with("sur3", "title", "\"\\ud83d\\ude00\"").into_bytes(), vec![Applied]),
        (
            "reversed surrogate pair",
            publication_with("sur4", "title", "\"\\ude00\\ud83d\"").into_bytes(),
            vec![Rejected(NotJson)],
        ),
        // Batches.
        ("an empty batch", b"[]".to_vec(), vec![]),
        ("a batch of scalars", b"[1, \"x\", null]".to_vec(), vec![Rejected(InvalidEnvelope); 3]),
        (
            "a batch with a lone surrogate in its middle event",
            format!("[{},{},{}]", publication("b1"), publication_with("b2", "title", "\"\\ud800\""), publication("b3"))
                .into_bytes(),
            vec![Applied, Applied, Rejected(NotJson)],
        ),
        (
            "a batch of 1001",
            format!("[{}]", vec![publication("big").to_string(); MAX_BATCH + 1].join(",")).into_bytes(),
            vec![Rejected(InvalidEnvelope)],
        ),
    ];
    cases
}

#[test]
fn hostile_bodies_decode_to_the_expected_outcome_without_panicking() {
    for (name, body, expected) in hostile_cases() {
        let decoded = decode(&body);
        assert_eq!(
            outcome(&decoded),
            expected,
            "{name}: {:?}",
            decoded.rejections.iter().map(|r| &r.detail).collect::<Vec<_>>()
        );
        for rejection in &decoded.rejections {
            assert!(!rejection.detail.is_empty(), "{name}: a rejection says why");
        }
    }
}

#[test]
fn duplicate_keys_keep_the_last_value() {
    let body = publication_with("dup-first", "x", "1").replacen(
        "\"id\":\"dup-first\"",
        "\"id\":\"dup-first\",\"id\":\"dup-last\"",
        1,
    );
    let decoded = decode(body.as_bytes());
    assert_eq!(decoded.events[0].id, "dup-last");
    assert_eq!(decoded.events[0].raw, body, "the evidence keeps the body as sent, both keys included");
}

#[test]
fn rejection_details_quote_bad_text_escaped_and_cut_short() {
    let decoded = decode(publication_with("q", "publication_id", "\"p\\u0000\\u202e\"").as_bytes());
    let detail = &decoded.rejections[0].detail;
    assert!(detail.contains("data.publication_id") && detail.contains("\\0") && !detail.contains('\0'), "{detail}");
    let long_member = format!("\"{}\"", "a".repeat(100_000));
    let decoded = decode(publication_with("q", "countries", &format!("[{long_member}]")).as_bytes());
    assert!(decoded.rejections[0].detail.len() < 300, "a long value is cut: {}", decoded.rejections[0].detail.len());
}

/// Found by the fuzzer (docs/reliability.md): details that print a wrong value whole
/// (`data must be a JSON object, not {other}`, `must be an integer ..., not {value}`) grow
/// with the value, up to the 1 MiB body; `/api/v1/rejections?limit=1000` then answers with
/// up to a GiB. A withdrawal's unexpected key field is named raw (newlines, NUL, any
/// length). Every detail should quote a bounded, escaped prefix, as `quote` does.
#[test]
fn rejection_details_stay_short_and_escaped_whatever_the_wrong_value() {
    let huge = format!("\"{}\"", "x".repeat(500_000));
    let mut bodies = vec![
        publication("long").to_string().replacen("{\"data\":{", &format!("{{\"data\":{huge},\"x\":{{"), 1),
        publication("long").to_string().replacen("\"1.0\"", &huge, 1),
        publication("long").to_string().replacen("\"2019-05-01T10:00:00Z\"", &format!("[{huge}]"), 1),
        snapshot("long", &huge),
    ];
    bodies.push(publication("long").to_string().replacen("\"id\":\"long\"", &format!("\"id\":[{huge}]"), 1));
    let withdrawal = event(
        "urn:ecpat:fr:research-team",
        "w",
        "2019-05-01T10:00:00Z",
        "org.ecpat.record.withdrawn",
        json!({"record_type": "publication", "key": {"publication_id": "p", format!("{}\n\u{0}", "k".repeat(500_000)): 1}}),
    );
    bodies.push(withdrawal.to_string());
    let long: Vec<String> = bodies
        .iter()
        .map(|body| decode(body.as_bytes()).rejections[0].detail.clone())
        .filter(|detail| detail.len() > 1000)
        .map(|detail| format!("{} bytes: {}…", detail.len(), detail.chars().take(60).collect::<String>()))
        .collect();
    assert!(long.is_empty(), "details grow with the value:\n{}", long.join("\n"));
    let unescaped = decode(withdrawal.to_string().replace(&"k".repeat(500_000), "k").as_bytes());
    let detail = &unescaped.rejections[0].detail;
    assert!(!detail.contains(['\n', '\0']), "a field name is quoted escaped, as values are: {detail:?}");
}

#[test]
fn the_outcome_does_not_depend_on_the_routing_key_or_surrounding_whitespace() {
    let body = format!(" \n\t{}\r\n ", publication("ws"));
    let decoded = decode(body.as_bytes());
    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.events[0].raw, publication("ws").to_string(), "the stored event is the JSON value, trimmed");
}

/// Publishes one message with hostile AMQP headers and a NUL in its routing key.
async fn publish_with_hostile_headers(env: &TestEnv) {
    let connection = broker::connect(&env.settings.amqp, "hostile headers").await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    broker::declare_topology(&connection, &env.settings.amqp).await.unwrap();
    let mut headers = FieldTable::default();
    headers.insert("x-nul".into(), AMQPValue::LongString(LongString::from(b"a\0b\xff".to_vec())));
    headers.insert("x-bytes".into(), AMQPValue::ByteArray(vec![0u8, 255].into()));
    headers.insert("x-nested".into(), AMQPValue::FieldTable(headers.clone()));
    let properties = BasicProperties::default().with_delivery_mode(2).with_headers(headers);
    channel
        .basic_publish(
            env.settings.amqp.exchange.as_str().into(),
            "org.ecpat.\0nul".into(),
            BasicPublishOptions { mandatory: true, ..Default::default() },
            b"{\"not\": \"an event\"}",
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "ok".into()).await.unwrap();
}

#[tokio::test]
async fn a_worker_acknowledges_every_hostile_message_and_keeps_going() {
    let mut env = TestEnv::new("hostile").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let cases = hostile_cases();
    let messages: Vec<(String, Vec<u8>)> =
        cases.iter().map(|(_, body, _)| (routing_key_for(&String::from_utf8_lossy(body)), body.clone())).collect();
    // Events that share source and id are one event: count what is unique.
    let mut applied = std::collections::BTreeSet::new();
    let mut rejected = 0;
    for (_, body, _) in &cases {
        let decoded = decode(body);
        applied.extend(decoded.events.iter().map(|e| (e.source.clone(), e.id.clone())));
        rejected += decoded.rejections.len() as i64;
    }

    env.publish_raw(&messages).await;
    publish_with_hostile_headers(&env).await;
    env.wait_for_counts(applied.len() as i64, rejected + 1, WAIT).await;

    // Still alive, still ready, still counting.
    assert!(env.worker(w).child.try_wait().unwrap().is_none(), "the worker is still running");
    env.publish(&[publication("after")]).await;
    env.wait_for_counts(applied.len() as i64 + 1, rejected + 1, WAIT).await;
    assert_eq!(env.worker(w).get("/readyz").await.0, 200);

    // What was stored reads back through PostgreSQL and the API.
    let title: String = sqlx::query_scalar("select record::text from records where record_key = '[\"nul-title\"]'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(title.contains(r#""title":"a\u0000b""#), "NUL stays an escape in the json column: {title}");
    let last_id: String =
        sqlx::query_scalar("select body->>'id' from events where id = 'dup-last'").fetch_one(&env.pool).await.unwrap();
    assert_eq!(last_id, "dup-last", "PostgreSQL's json operators also take the last duplicate key");
    let decomposed: i64 = sqlx::query_scalar("select count(*) from events where id in ('caf\u{e9}', 'cafe\u{301}')")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(decomposed, 2, "ids are compared as sent, without Unicode normalisation");
    let (status, records) = env.worker(w).get("/api/v1/indicators/KE1/records").await;
    assert_eq!(status, 200);
    let titles: Vec<&str> =
        records["records"].as_array().unwrap().iter().filter_map(|r| r["record"]["title"].as_str()).collect();
    assert!(titles.contains(&"a\0b") && titles.contains(&"\u{202e}ydutS"), "{titles:?}");
    let (status, listed) = env.worker(w).get("/api/v1/rejections?limit=1000").await;
    assert_eq!((status, listed["total"].as_i64()), (200, Some(rejected + 1)));
    let (routing_key, headers): (String, String) =
        sqlx::query_as("select routing_key, headers::text from rejections where routing_key like 'org.ecpat.%nul'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(routing_key, "org.ecpat.\u{fffd}nul", "a NUL in a routing key is replaced, not refused");
    assert!(headers.contains("x-nul") && headers.contains("x-nested"), "{headers}");
    let truncated: (i64, bool) =
        sqlx::query_as("select size, truncated from rejections where reason = 'too_large' order by size limit 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(truncated, ((MAX_BODY + 1) as i64, true));
    let before = env.values().await;
    ecpat_indicators::store::recompute::recompute(&env.pool).await.unwrap();
    assert_eq!(env.values().await, before, "recompute reads every stored record back");
    env.cleanup().await;
}
