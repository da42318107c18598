//! What real producers send beside the plain case: optional attributes set to null, JSON
//! media types other than `application/json`, a byte order mark before the body, and
//! times with more than nine fractional digits. The fast reading and the full one must
//! agree on each.

use super::*;

/// What decoding one event gives, comparable: its identity, time and changes, or why it
/// is rejected.
fn outcome(result: &Result<Event, Failure>) -> Result<String, Failure> {
    match result {
        Ok(e) => Ok(format!("{} {} {} {:?} {:?}", e.source, e.id, e.time, e.version(), e.changes)),
        Err(failure) => Err(failure.clone()),
    }
}

/// Checks that the fast reading either leaves `text` to the full one or decides as it does.
fn assert_readings_agree(text: &str) {
    let raw: &RawValue = serde_json::from_str(text).expect("JSON");
    let full = outcome(&decode_any(raw));
    if let Some(fast) = decode_common(raw) {
        assert_eq!(outcome(&fast), full, "{text}");
    }
}

#[test]
fn a_null_datacontenttype_subject_dataschema_or_extension_is_the_same_as_absent() {
    for name in ["datacontenttype", "subject", "dataschema", "comexampleextension"] {
        let absent = accepted(&bytes(&without(&event("e1"), name)));

        let null = accepted(&bytes(&with(&event("e1"), name, Value::Null)));

        assert_eq!(format!("{:?}", null.changes), format!("{:?}", absent.changes), "{name}");
        assert_eq!(null.version(), absent.version(), "{name}");
    }
}

#[test]
fn a_null_required_attribute_is_still_an_invalid_envelope() {
    for name in ["specversion", "id", "source", "type", "time", "data"] {
        assert_rejected(&with(&event("e1"), name, Value::Null), Reason::InvalidEnvelope);
    }
}

#[test]
fn json_media_types_are_accepted_whatever_their_case_and_parameters() {
    for media_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "APPLICATION/JSON",
        "text/json",
        "application/cloudevents+json",
        "application/vnd.ecpat.story+JSON; version=1",
    ] {
        let event = accepted(&bytes(&with(&event("e1"), "datacontenttype", json!(media_type))));

        assert_eq!(event.changes.len(), 1, "{media_type}");
    }
}

#[test]
fn a_media_type_that_is_not_json_is_an_invalid_envelope_that_says_what_is_accepted() {
    for bad in [json!("text/plain; charset=utf-8"), json!("application/jsonl"), json!(""), json!(["application/json"])]
    {
        let body = bytes(&with(&event("e1"), "datacontenttype", bad.clone()));

        let rejection = rejection(&body);

        assert_eq!(rejection.reason, Reason::InvalidEnvelope, "{bad}");
        assert!(rejection.detail.contains("JSON media type"), "{bad}: {}", rejection.detail);
    }
}

#[test]
fn the_fast_and_full_readings_agree_on_null_attributes_and_media_types() {
    let plain = String::from_utf8(bytes(&without(&event("e1"), "datacontenttype"))).expect("UTF-8");
    let with_attributes = |attributes: &str| plain.replacen('{', &format!("{{{attributes},"), 1);
    let cases = [
        r#""datacontenttype":null"#,
        r#""datacontenttype":"Application/JSON; charset=utf-8""#,
        r#""datacontenttype":"text/plain""#,
        r#""datacontenttype":null,"datacontenttype":"text/plain""#,
        r#""datacontenttype":"text/plain","datacontenttype":null"#,
        r#""datacontenttype":null,"datacontenttype":null"#,
        r#""datacontenttype":"application/json","datacontenttype":null"#,
        r#""datacontenttype":7"#,
        r#""subject":null,"dataschema":null,"ext":null"#,
        r#""id":null"#,
        r#""time":null"#,
    ];
    for attributes in cases {
        assert_readings_agree(&with_attributes(attributes));
    }
    // A null then a valid type, or the reverse: both readings take the last one.
    for attributes in [r#""datacontenttype":"text/plain","datacontenttype":null"#, r#""datacontenttype":null"#] {
        assert_eq!(decode(with_attributes(attributes).as_bytes()).events.len(), 1, "{attributes}");
    }
}

// ---- A byte order mark. ----

const BOM: &[u8] = b"\xef\xbb\xbf";

#[test]
fn a_body_that_starts_with_a_byte_order_mark_is_read_without_it() {
    let text = bytes(&event("e1"));
    let body = [BOM, &text].concat();

    let event = accepted(&body);

    assert_eq!(event.id, "e1");
    assert_eq!(event.raw.as_bytes(), text, "the stored event is the JSON, without the mark");
}

#[test]
fn a_batch_that_starts_with_a_byte_order_mark_is_read_without_it() {
    let body = [BOM, &batch(&[event("e1"), event("e2")])].concat();

    let decoded = decode(&body);

    assert!(decoded.rejections.is_empty(), "{:?}", decoded.rejections);
    let ids: Vec<&str> = decoded.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["e1", "e2"]);
}

#[test]
fn a_rejected_body_with_a_byte_order_mark_is_kept_as_received() {
    let body = [BOM, &bytes(&without(&event("e1"), "time"))].concat();

    let rejection = rejection(&body);

    assert_eq!(rejection.reason, Reason::InvalidEnvelope);
    assert_eq!(rejection.raw, body);
}

#[test]
fn a_byte_order_mark_anywhere_but_at_the_start_is_not_json() {
    let text = bytes(&event("e1"));
    for body in [[b" ", BOM, &text].concat(), [BOM, BOM, &text].concat(), [b"[", BOM, &text, b"]"].concat()] {
        assert_eq!(rejection(&body).reason, Reason::NotJson, "{}", String::from_utf8_lossy(&body));
    }
}

// ---- Times past the nanosecond. ----

#[test]
fn the_digits_past_the_ninth_are_kept_without_trailing_zeros() {
    for (time, digits) in [
        ("2020-01-01T00:00:00Z", ""),
        ("2020-01-01T00:00:00.5Z", ""),
        ("2020-01-01T00:00:00.123456789+01:00", ""),
        ("2020-01-01T00:00:00.1234567890000Z", ""),
        ("2020-01-01T00:00:00.0000000001Z", "1"),
        ("2020-01-01T00:00:00.00000000010Z", "1"),
        ("2020-01-01T00:00:00.000000000050-05:00", "05"),
        ("2020-01-01T00:00:00.999999999123456789123456789Z", "123456789123456789"),
    ] {
        assert_eq!(crate::records::fields::subnanos(time), digits, "{time}");
        assert_eq!(version(time, "urn:a", "a").subnanos, digits, "{time}");
    }
}

#[test]
fn times_are_compared_to_their_last_fractional_digit() {
    let first = version("2020-01-01T00:00:00.0000000001Z", "urn:z", "z");
    let second = version("2020-01-01T00:00:00.0000000002Z", "urn:a", "a");
    let trailing_zero = version("2020-01-01T00:00:00.00000000010Z", "urn:z", "z");
    let below = version("2020-01-01T00:00:00.00000000009999Z", "urn:z", "z");
    let one_nano = version("2020-01-01T01:00:00.000000001+01:00", "urn:a", "a");

    assert!(first < second, "the later time wins over the greater source");
    assert_eq!(first, trailing_zero, "trailing zeros change nothing");
    assert!(below < first);
    assert!(second < one_nano);
    assert!(version("2020-01-01T00:00:00Z", "urn:z", "z") < below);
}

#[test]
fn times_past_the_nanosecond_order_the_events_of_a_batch_too() {
    let late = with(&with(&event("e1"), "time", json!("2020-01-01T00:00:00.00000000001Z")), "source", json!("urn:a"));
    let early =
        with(&with(&event("e2"), "time", json!("2020-01-01T00:00:00.00000000000999Z")), "source", json!("urn:z"));

    let decoded = decode(&batch(&[late, early]));

    assert!(decoded.events[1].version() < decoded.events[0].version());
}
