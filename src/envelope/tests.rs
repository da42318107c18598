//! Decoding message bodies (docs/events.md): single events, batches, and every way an
//! envelope can be wrong; and the order of versions.

use serde_json::{Value, json};

use super::*;
use crate::records::{Metric, Record};

// ---- Arrange: valid events and bodies. ----

/// A valid event with `id`, carrying a media story.
fn event(id: &str) -> Value {
    json!({
        "specversion": "1.0",
        "id": id,
        "source": "urn:ecpat:fr:advocacy",
        "type": "org.ecpat.media.story.recorded",
        "time": "2019-11-20T09:30:00+01:00",
        "datacontenttype": "application/json",
        "data": {
            "story_id": format!("story-{id}"),
            "member": "ecpat-france",
            "outlet": "Le Monde",
            "global_advocacy": true,
            "published_on": "2019-11-20"
        }
    })
}

/// A valid social snapshot event.
fn snapshot() -> Value {
    json!({
        "specversion": "1.0",
        "id": "snap-1",
        "source": "urn:ecpat:fr:social-collector",
        "type": "org.ecpat.social.metrics.snapshot",
        "time": "2019-06-02T00:00:00Z",
        "data": {
            "platform": "x",
            "post_id": "123",
            "member": "ecpat-france",
            "published_at": "2019-06-01T10:00:00+02:00",
            "metrics": {"likes": 10, "shares": 2}
        }
    })
}

/// `value` with the top-level attribute `name` set.
fn with(value: &Value, name: &str, attribute: Value) -> Value {
    let mut value = value.clone();
    value.as_object_mut().expect("an object").insert(name.to_owned(), attribute);
    value
}

/// `value` without the top-level attribute `name`.
fn without(value: &Value, name: &str) -> Value {
    let mut value = value.clone();
    value.as_object_mut().expect("an object").remove(name);
    value
}

fn bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialisable")
}

/// The one rejection of a body rejected whole.
fn rejection(body: &[u8]) -> Rejection {
    let decoded = decode(body);
    assert!(decoded.events.is_empty(), "events decoded from a rejected body: {:?}", decoded.events);
    match <[Rejection; 1]>::try_from(decoded.rejections) {
        Ok([rejection]) => rejection,
        Err(rejections) => panic!("expected one rejection, got {rejections:?}"),
    }
}

/// The one event of a body accepted whole.
fn accepted(body: &[u8]) -> Event {
    let decoded = decode(body);
    assert!(decoded.rejections.is_empty(), "rejected: {:?}", decoded.rejections);
    match <[Event; 1]>::try_from(decoded.events) {
        Ok([event]) => event,
        Err(events) => panic!("expected one event, got {events:?}"),
    }
}

fn assert_rejected(value: &Value, reason: Reason) {
    let body = bytes(value);

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, reason, "{value}: {}", rejection.detail);
    assert_eq!(rejection.index, None);
    assert_eq!(rejection.raw, body);
}

fn batch(events: &[Value]) -> Vec<u8> {
    bytes(&Value::Array(events.to_vec()))
}

fn version(time: &str, source: &str, id: &str) -> Version {
    let event = with(&with(&with(&event(id), "time", json!(time)), "source", json!(source)), "id", json!(id));
    accepted(&bytes(&event)).version()
}

// ---- Single events. ----

#[test]
fn a_valid_event_is_decoded_with_its_attributes_and_changes() {
    let body = bytes(&snapshot());

    let event = accepted(&body);

    assert_eq!(event.source, "urn:ecpat:fr:social-collector");
    assert_eq!(event.id, "snap-1");
    assert_eq!(event.event_type, EventType::SocialSnapshot);
    assert_eq!(event.time, DateTime::parse_from_rfc3339("2019-06-02T00:00:00Z").unwrap());
    let metrics: Vec<(Metric, i64)> = event
        .changes
        .iter()
        .map(|c| match c {
            Change::Upsert(Record::SocialPost(s)) => (s.metric, s.value),
            other => panic!("not a series: {other:?}"),
        })
        .collect();
    assert_eq!(metrics, vec![(Metric::Likes, 10), (Metric::Shares, 2)]);
}

#[test]
fn the_raw_text_of_a_single_event_is_kept_exactly() {
    let text = "{\"type\" : \"org.ecpat.media.story.recorded\",\n  \"specversion\":\"1.0\", \"id\":\"caf\\u00e9\",\
                \"source\":\"urn:x\",\"time\":\"2019-11-20T09:30:00.500+01:00\",\"data\":{\"story_id\":\"s\",\
                \"member\":\"ecpat-france\",\"outlet\":\"Le Monde\",\"global_advocacy\":false,\
                \"published_on\":\"2019-11-20\",\"zz\":[1.50, 2e3]}}";

    let event = accepted(text.as_bytes());

    assert_eq!(event.raw, text);
    assert_eq!(event.id, "café");
}

#[test]
fn subject_dataschema_and_extension_attributes_are_accepted() {
    let mut value = event("e1");
    for (name, attribute) in [
        ("subject", json!("story-e1")),
        ("dataschema", json!("https://ecpat.org/schemas/media-story.json")),
        ("traceparent", json!("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),
        ("partitionkey", json!("ecpat-france")),
        ("comexampleextension", json!(42)),
    ] {
        value = with(&value, name, attribute);
    }

    let event = accepted(&bytes(&value));

    assert_eq!(event.id, "e1");
    assert_eq!(event.changes.len(), 1);
}

#[test]
fn datacontenttype_may_be_absent_or_application_json() {
    let absent = without(&event("e1"), "datacontenttype");
    let json_type = with(&event("e1"), "datacontenttype", json!("application/json"));

    for value in [absent, json_type] {
        let event = accepted(&bytes(&value));

        assert_eq!(event.changes.len(), 1, "{value}");
    }
}

// ---- Envelope attributes. ----

#[test]
fn specversion_must_be_the_string_1_0() {
    for bad in [without(&event("e1"), "specversion")].into_iter().chain(
        [json!("0.3"), json!("1"), json!("1.0.0"), json!(1.0), json!(1), json!(null)]
            .map(|v| with(&event("e1"), "specversion", v)),
    ) {
        assert_rejected(&bad, Reason::InvalidEnvelope);
    }
}

#[test]
fn id_must_be_a_string_of_1_to_256_characters_without_control_characters() {
    assert_rejected(&without(&event("e1"), "id"), Reason::InvalidEnvelope);
    for bad in
        [json!(""), json!("i".repeat(257)), json!(42), json!(null), json!(["e1"]), json!("e\u{1}1"), json!("e1\n")]
    {
        assert_rejected(&with(&event("e1"), "id", bad), Reason::InvalidEnvelope);
    }
}

#[test]
fn an_id_of_256_characters_is_accepted() {
    for id in ["i".repeat(256), "é".repeat(256), "1".into()] {
        let event = accepted(&bytes(&with(&event("e1"), "id", json!(id))));

        assert_eq!(event.id, id);
    }
}

#[test]
fn source_must_be_a_string_of_1_to_1024_characters() {
    assert_rejected(&without(&event("e1"), "source"), Reason::InvalidEnvelope);
    for bad in [json!(""), json!("s".repeat(1025)), json!(7), json!({"uri": "urn:x"})] {
        assert_rejected(&with(&event("e1"), "source", bad), Reason::InvalidEnvelope);
    }
    let long = "s".repeat(1024);
    assert_eq!(accepted(&bytes(&with(&event("e1"), "source", json!(long)))).source, long);
}

#[test]
fn time_must_be_an_rfc_3339_timestamp_with_offset() {
    assert_rejected(&without(&event("e1"), "time"), Reason::InvalidEnvelope);
    for bad in [
        json!("2019-11-20T09:30:00"),
        json!("2019-11-20"),
        json!("2019-11-20T09:30:00+01"),
        json!("20/11/2019 09:30"),
        json!(""),
        json!(1574238600),
        json!(null),
    ] {
        assert_rejected(&with(&event("e1"), "time", bad), Reason::InvalidEnvelope);
    }
}

#[test]
fn a_missing_or_non_string_type_is_an_invalid_envelope() {
    assert_rejected(&without(&event("e1"), "type"), Reason::InvalidEnvelope);
    assert_rejected(&with(&event("e1"), "type", json!(3)), Reason::InvalidEnvelope);
    assert_rejected(&with(&event("e1"), "type", json!(["org.ecpat.media.story.recorded"])), Reason::InvalidEnvelope);
}

#[test]
fn a_type_that_is_not_ours_is_an_unknown_type() {
    for bad in ["org.ecpat.media.story", "ORG.ECPAT.MEDIA.STORY.RECORDED", "com.example.thing", ""] {
        assert_rejected(&with(&event("e1"), "type", json!(bad)), Reason::UnknownType);
    }
}

#[test]
fn every_documented_event_type_is_known() {
    for &event_type in EventType::ALL {
        let value = with(&event("e1"), "type", json!(event_type.as_str()));

        let rejection = decode(&bytes(&value)).rejections;

        // The story's data fits only one type; the others must fail on their data, not their type.
        assert!(rejection.iter().all(|r| r.reason == Reason::InvalidData), "{}: {rejection:?}", event_type.as_str());
    }
}

#[test]
fn datacontenttype_other_than_a_json_media_type_is_an_invalid_envelope() {
    for bad in [json!("text/plain"), json!("application/xml"), json!(1)] {
        assert_rejected(&with(&event("e1"), "datacontenttype", bad), Reason::InvalidEnvelope);
    }
}

#[test]
fn data_must_be_present_and_a_json_object() {
    assert_rejected(&without(&event("e1"), "data"), Reason::InvalidEnvelope);
    for bad in [json!(null), json!("{}"), json!([]), json!(1), json!(true)] {
        assert_rejected(&with(&event("e1"), "data", bad), Reason::InvalidEnvelope);
    }
}

#[test]
fn invalid_data_names_the_field_in_the_detail() {
    let mut value = snapshot();
    value["data"]["metrics"]["likes"] = json!(-3);
    let body = bytes(&value);

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, Reason::InvalidData);
    assert!(rejection.detail.contains("data.metrics.likes"), "{}", rejection.detail);
    assert_eq!(rejection.raw, body);
}

// ---- Bodies that are not events. ----

#[test]
fn a_body_over_1_mib_is_too_large_and_kept_whole() {
    let body = vec![b' '; MAX_BODY + 1];

    let rejection = rejection(&body);

    assert_eq!(MAX_BODY, 1024 * 1024);
    assert_eq!(rejection.reason, Reason::TooLarge);
    assert_eq!(rejection.raw, body);
}

#[test]
fn a_body_of_exactly_1_mib_is_not_too_large() {
    let mut body = bytes(&event("e1"));
    body.resize(MAX_BODY, b' ');

    let event = accepted(&body);

    assert_eq!(event.id, "e1");
}

#[test]
fn a_body_that_is_not_utf8_is_not_json() {
    let mut body = bytes(&event("e1"));
    body.insert(10, 0xff);

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, Reason::NotJson);
    assert_eq!(rejection.raw, body);
}

#[test]
fn a_body_that_is_not_json_is_not_json() {
    for body in ["", "   ", "{", "hello", "{\"id\": }", "{} {}", "[{}", "[1,]", "{'id': 'e1'}"] {
        let rejection = rejection(body.as_bytes());

        assert_eq!(rejection.reason, Reason::NotJson, "{body:?}: {}", rejection.detail);
        assert_eq!(rejection.raw, body.as_bytes());
    }
}

#[test]
fn deeply_nested_bodies_are_not_json_and_do_not_panic() {
    let deep = 10_000;
    let bodies = [
        "[".repeat(deep),
        "{\"data\":".repeat(deep),
        format!("{{\"data\":{}{}}}", "[".repeat(deep), "]".repeat(deep)),
        format!("{}{}", "[".repeat(deep), "]".repeat(deep)),
    ];
    for body in bodies {
        let decoded = decode(body.as_bytes());

        assert!(decoded.events.is_empty());
        assert_eq!(decoded.rejections.len(), 1);
        assert_eq!(decoded.rejections[0].reason, Reason::NotJson, "{}", decoded.rejections[0].detail);
    }
}

#[test]
fn a_top_level_json_string_number_or_null_is_an_invalid_envelope() {
    for value in [json!("org.ecpat.media.story.recorded"), json!(42), json!(null), json!(true)] {
        assert_rejected(&value, Reason::InvalidEnvelope);
    }
}

// ---- Batches. ----

#[test]
fn a_batch_applies_its_good_events_and_rejects_each_bad_one_with_its_index_and_bytes() {
    let bad_envelope = without(&event("e1"), "time");
    let unknown = with(&event("e3"), "type", json!("org.ecpat.unknown"));
    let mut bad_data = event("e4");
    bad_data["data"]["member"] = json!("ECPAT");
    let items = [event("e0"), bad_envelope.clone(), event("e2"), unknown.clone(), bad_data.clone(), json!(7)];

    let decoded = decode(&batch(&items));

    let ids: Vec<&str> = decoded.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e0", "e2"]);
    let rejected: Vec<(Option<usize>, Reason, Vec<u8>)> =
        decoded.rejections.iter().map(|r| (r.index, r.reason, r.raw.clone())).collect();
    assert_eq!(
        rejected,
        vec![
            (Some(1), Reason::InvalidEnvelope, bytes(&bad_envelope)),
            (Some(3), Reason::UnknownType, bytes(&unknown)),
            (Some(4), Reason::InvalidData, bytes(&bad_data)),
            (Some(5), Reason::InvalidEnvelope, b"7".to_vec()),
        ]
    );
    assert!(decoded.rejections[2].detail.contains("data.member"), "{}", decoded.rejections[2].detail);
}

#[test]
fn the_raw_text_of_each_event_of_a_batch_is_kept_exactly() {
    let first = "{ \"specversion\" : \"1.0\", \"id\":\"e0\",\"source\":\"urn:x\",\"type\":\"org.ecpat.media.story.recorded\",\
                 \"time\":\"2019-11-20T09:30:00Z\",\"data\":{\"story_id\":\"s\",\"member\":\"ecpat-france\",\
                 \"outlet\":\"Le\\nMonde\",\"global_advocacy\":true,\"published_on\":\"2019-11-20\"} }";
    let second = "{\"id\":\"e1\",\n\t\"specversion\":\"2.0\"}";
    let body = format!("  [\n{first} ,\r\n {second}\n]\n");

    let decoded = decode(body.as_bytes());

    assert_eq!(decoded.events.len(), 1);
    assert_eq!(decoded.events[0].raw, first);
    assert_eq!(decoded.rejections.len(), 1);
    assert_eq!(decoded.rejections[0].raw, second.as_bytes());
}

#[test]
fn a_json_array_is_a_batch_even_of_one_event() {
    let decoded = decode(&batch(&[with(&event("e1"), "time", json!("bad"))]));

    assert!(decoded.events.is_empty());
    assert_eq!(decoded.rejections.len(), 1);
    assert_eq!(decoded.rejections[0].index, Some(0));
}

#[test]
fn a_batch_of_1000_events_is_accepted() {
    let items: Vec<Value> = (0..MAX_BATCH).map(|i| event(&format!("e{i}"))).collect();

    let decoded = decode(&batch(&items));

    assert_eq!(MAX_BATCH, 1000);
    assert!(decoded.rejections.is_empty());
    assert_eq!(decoded.events.len(), 1000);
    assert_eq!(decoded.events[999].id, "e999");
}

#[test]
fn a_batch_of_1001_events_is_rejected_whole_as_an_invalid_envelope() {
    let items: Vec<Value> = (0..=MAX_BATCH).map(|i| event(&format!("e{i}"))).collect();
    let body = batch(&items);

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, Reason::InvalidEnvelope);
    assert_eq!(rejection.index, None);
    assert_eq!(rejection.raw, body);
}

#[test]
fn an_empty_batch_gives_nothing() {
    for body in ["[]", " [ ] \n"] {
        let decoded = decode(body.as_bytes());

        assert!(decoded.events.is_empty(), "{body:?}");
        assert!(decoded.rejections.is_empty(), "{body:?}");
    }
}

#[test]
fn a_batch_that_is_not_json_is_rejected_whole() {
    let mut body = batch(&[event("e0"), event("e1")]);
    body.pop();

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, Reason::NotJson);
    assert_eq!(rejection.index, None);
}

// ---- The order of versions. ----

#[test]
fn times_compare_as_instants_across_offsets() {
    // 00:30 at +01:00 is 23:30 UTC the day before: earlier than midnight UTC.
    let at_plus_one = version("2020-01-01T00:30:00+01:00", "urn:b", "b");
    let at_utc = version("2020-01-01T00:00:00Z", "urn:a", "a");
    let same_instant = version("2019-12-31T18:30:00-05:00", "urn:b", "b");

    assert!(at_plus_one < at_utc);
    assert_eq!(at_plus_one, same_instant);
}

#[test]
fn the_greater_time_wins_whatever_the_source_and_id() {
    let earlier = version("2020-01-01T00:00:00Z", "urn:z", "z");
    let later = version("2020-01-01T00:00:01Z", "urn:a", "a");

    assert!(earlier < later);
}

#[test]
fn at_the_same_instant_the_source_decides_then_the_id() {
    let a = version("2020-01-01T01:00:00+01:00", "urn:a", "2");
    let b_1 = version("2020-01-01T00:00:00Z", "urn:b", "1");
    let b_2 = version("2020-01-01T00:00:00Z", "urn:b", "2");

    assert!(a < b_1);
    assert!(b_1 < b_2);
}

#[test]
fn times_are_compared_to_the_nanosecond() {
    let whole = version("2020-01-01T00:00:00Z", "urn:z", "z");
    let one_nano = version("2020-01-01T00:00:00.000000001Z", "urn:a", "a");
    let two_nanos = version("2020-01-01T00:00:00.000000002Z", "urn:a", "a");
    let next_second = version("2020-01-01T00:00:01Z", "urn:a", "a");

    assert!(whole < one_nano);
    assert!(one_nano < two_nanos);
    assert!(two_nanos < next_second);
}

#[test]
fn times_before_1970_order_correctly() {
    let earlier = version("1969-12-31T23:59:59.900Z", "urn:a", "a");
    let later = version("1969-12-31T23:59:59.950Z", "urn:a", "a");

    assert!(earlier < later);
}

#[test]
fn a_repeated_attribute_is_read_as_its_last_value() {
    let text = bytes(&event("e1"));
    let body = format!("{{\"id\":\"first\",{}", &String::from_utf8(text).expect("UTF-8")[1..]);
    let event = accepted(body.as_bytes());
    assert_eq!(event.id, "e1");

    let body = body.replacen("\"id\":\"first\"", "\"id\":7", 1);
    assert_eq!(accepted(body.as_bytes()).id, "e1");
}

#[test]
fn escaped_attributes_and_nested_extensions_are_read_like_plain_ones() {
    let body = String::from_utf8(bytes(&event("x"))).expect("UTF-8");
    let body = body
        .replace(r#""id":"x""#, r#""id":"e\u00e91""#)
        .replace(r#""source":"urn:ecpat:fr:advocacy""#, r#""source":"urn:ecpat:fr:\"advocacy\"""#)
        .replacen('{', r#"{"ecpatext":{"a":[1,2.5,null,{"b":true}]},"#, 1);

    let event = accepted(body.as_bytes());

    assert_eq!((event.id.as_str(), event.source.as_str()), ("e\u{e9}1", "urn:ecpat:fr:\"advocacy\""));
    assert_eq!(event.raw, body);
}

#[test]
fn an_extension_nested_too_deeply_is_not_json() {
    let body = bytes(&event("e1"));
    let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let body = format!("{{\"ecpatext\":{nested},{}", &String::from_utf8(body).expect("UTF-8")[1..]);
    assert_eq!(rejection(body.as_bytes()).reason, Reason::NotJson);
}

mod edges;
