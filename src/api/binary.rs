//! The CloudEvents HTTP binding's modes, read into the message the worker decodes: a
//! structured request's body as it is, a binary-mode request turned into the same event in
//! the JSON format (its `ce-*` headers as attributes, `Content-Type` as `datacontenttype`,
//! the body as `data`).

use axum::http::{HeaderMap, header};
use percent_encoding::percent_decode;
use serde_json::{Map, Value};

use crate::envelope::{self, Reason};

/// The prefix of the headers that carry attributes in binary mode.
const PREFIX: &str = "ce-";

/// The message body of a request: binary mode when it has a `ce-specversion` header and is
/// not of a structured type (`application/cloudevents...`), else the body itself. A body
/// that binary mode cannot turn into an event is the rejection it gets.
pub fn message(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, (Reason, String)> {
    let content_type = headers.get(header::CONTENT_TYPE).map(|value| String::from_utf8_lossy(value.as_bytes()));
    let structured = content_type.as_deref().is_some_and(|t| {
        let t = t.trim_start();
        t.get(.."application/cloudevents".len()).is_some_and(|p| p.eq_ignore_ascii_case("application/cloudevents"))
    });
    if structured || !headers.contains_key("ce-specversion") {
        return Ok(body.to_vec());
    }
    let mut event = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix(PREFIX) else { continue };
        // Attribute values are percent-encoded beyond printable ASCII (the HTTP binding).
        let text = percent_decode(value.as_bytes())
            .decode_utf8()
            .map_err(|_| (Reason::InvalidEnvelope, format!("header {name} is not UTF-8 text once percent-decoded")))?;
        event.insert(attribute.to_owned(), Value::String(text.into_owned()));
    }
    if let Some(content_type) = content_type {
        event.insert("datacontenttype".into(), Value::String(content_type.into_owned()));
    }
    event.insert("data".into(), data(event.get("datacontenttype"), body)?);
    Ok(Value::Object(event).to_string().into_bytes())
}

/// The event's `data`: the body's JSON under a JSON media type (or none), else the body as
/// text, which the worker then rejects for its `datacontenttype`.
fn data(content_type: Option<&Value>, body: &[u8]) -> Result<Value, (Reason, String)> {
    let json = content_type.and_then(Value::as_str).is_none_or(envelope::is_json_media_type);
    if !json {
        return Ok(Value::String(String::from_utf8_lossy(body).into_owned()));
    }
    let text = std::str::from_utf8(body).map_err(|e| (Reason::NotJson, format!("body is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| (Reason::NotJson, format!("body is not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};
    use serde_json::{Value, json};

    use super::message;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.parse().unwrap(), HeaderValue::from_str(value).unwrap())).collect()
    }

    #[test]
    fn binary_mode_is_the_event_of_its_headers_with_the_body_as_data() {
        let headers = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "e%C3%A9-1"),
            ("ce-source", "urn:x"),
            ("content-type", "application/json"),
        ]);
        let event: Value = serde_json::from_slice(&message(&headers, br#"{"a": 1}"#).unwrap()).unwrap();
        assert_eq!(
            event,
            json!({"specversion": "1.0", "id": "eé-1", "source": "urn:x", "datacontenttype": "application/json",
                "data": {"a": 1}})
        );
    }

    #[test]
    fn a_structured_body_is_the_message_whatever_its_headers() {
        let body = br#"[{"id": "1"}]"#;
        let batch = headers(&[("ce-specversion", "1.0"), ("content-type", "application/cloudevents-batch+json")]);
        assert_eq!(message(&batch, body).unwrap(), body);
        assert_eq!(message(&headers(&[("content-type", "application/json")]), body).unwrap(), body);
    }

    #[test]
    fn a_binary_body_that_is_not_json_is_not_json_and_other_types_are_left_to_the_decoder() {
        let json = headers(&[("ce-specversion", "1.0"), ("content-type", "application/json")]);
        let (reason, detail) = message(&json, b"{oops").unwrap_err();
        assert_eq!((reason.as_str(), detail.starts_with("body is not JSON")), ("not_json", true));
        let text = headers(&[("ce-specversion", "1.0"), ("content-type", "text/plain")]);
        let event: Value = serde_json::from_slice(&message(&text, b"hello").unwrap()).unwrap();
        assert_eq!((&event["datacontenttype"], &event["data"]), (&json!("text/plain"), &json!("hello")));
    }
}
