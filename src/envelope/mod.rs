//! Message bodies to CloudEvents (docs/events.md): a single event or a batch, each event
//! checked and turned into the changes it makes, or rejected with a reason and a detail.

mod attributes;
mod media_type;

use chrono::{DateTime, FixedOffset};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::records::fields::{parse_rfc3339, quote, shown, subnanos};
use crate::records::parse::{parse_event_data, unknown_type};
use crate::records::{Change, EventType, str_enum};
use attributes::Attributes;
pub use media_type::is_json as is_json_media_type;

/// Bodies larger than this are rejected as `too_large`.
pub const MAX_BODY: usize = 1 << 20;
/// A batch may hold at most this many events.
pub const MAX_BATCH: usize = 1000;

str_enum!(
    /// Why a message or event was rejected (docs/events.md).
    Reason {
        TooLarge = "too_large",
        NotJson = "not_json",
        InvalidEnvelope = "invalid_envelope",
        UnknownType = "unknown_type",
        InvalidData = "invalid_data",
        Unauthorized = "unauthorized",
    }
);

/// The order of versions of one record: the greatest (`time`, `source`, `id`) is current.
/// Times compare as instants, to their last fractional digit; `source` and `id` by code
/// point. The fields are in the order they compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub secs: i64,
    pub nanos: u32,
    /// The fractional digits of `time` past the ninth, trailing zeros trimmed (`""`: none);
    /// as strings they compare as the fractions they write.
    pub subnanos: String,
    pub source: String,
    pub id: String,
}

/// A valid event and what it changes.
#[derive(Clone, Debug)]
pub struct Event {
    pub source: String,
    pub id: String,
    pub event_type: EventType,
    pub time: DateTime<FixedOffset>,
    /// The fractional digits of `time` past the ninth, which `time` cannot hold (see
    /// [`Version::subnanos`]).
    pub subnanos: String,
    /// The event's JSON exactly as received (kept as evidence).
    pub raw: String,
    pub changes: Vec<Change>,
}

impl Event {
    /// This event's place in the order of versions.
    pub fn version(&self) -> Version {
        Version {
            secs: self.time.timestamp(),
            nanos: self.time.timestamp_subsec_nanos(),
            subnanos: self.subnanos.clone(),
            source: self.source.clone(),
            id: self.id.clone(),
        }
    }
}

/// A message or one event of a batch that cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
    /// The bytes rejected: the whole body, or the one event of a batch.
    pub raw: Vec<u8>,
    /// The event's position in its batch, when only that event is rejected.
    pub index: Option<usize>,
}

/// What a message body holds.
#[derive(Debug, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    pub rejections: Vec<Rejection>,
}

/// Decodes a message body: never fails, every problem becomes a rejection.
pub fn decode(body: &[u8]) -> Decoded {
    let whole = |reason, detail: String| Decoded {
        events: vec![],
        rejections: vec![Rejection { reason, detail, raw: body.to_vec(), index: None }],
    };
    if body.len() > MAX_BODY {
        return whole(Reason::TooLarge, format!("body of {} bytes is over the limit of {MAX_BODY} bytes", body.len()));
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        Err(e) => return whole(Reason::NotJson, format!("body is not UTF-8: {e}")),
    };
    // In UTF-8 a byte order mark says nothing, but files saved by Excel or Notepad start
    // with one; the rejected bytes, if any, stay the body as received.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let is_batch = text.trim_start().starts_with('[');
    if !is_batch {
        return match serde_json::from_str::<&RawValue>(text) {
            Ok(raw) => match decode_event(raw) {
                Ok(event) => Decoded { events: vec![event], rejections: vec![] },
                Err((reason, detail)) => whole(reason, detail),
            },
            Err(e) => whole(Reason::NotJson, format!("body is not JSON: {e}")),
        };
    }
    let items = match serde_json::from_str::<Vec<&RawValue>>(text) {
        Ok(items) => items,
        Err(e) => return whole(Reason::NotJson, format!("batch is not JSON: {e}")),
    };
    if items.len() > MAX_BATCH {
        return whole(
            Reason::InvalidEnvelope,
            format!("batch of {} events is over the limit of {MAX_BATCH}", items.len()),
        );
    }
    let mut decoded = Decoded::default();
    for (index, raw) in items.into_iter().enumerate() {
        match decode_event(raw) {
            Ok(event) => decoded.events.push(event),
            Err((reason, detail)) => decoded.rejections.push(Rejection {
                reason,
                detail: format!("batch event {index}: {detail}"),
                raw: raw.get().as_bytes().to_vec(),
                index: Some(index),
            }),
        }
    }
    decoded
}

type Failure = (Reason, String);

fn envelope_error(detail: String) -> Failure {
    (Reason::InvalidEnvelope, detail)
}

fn decode_event(raw: &RawValue) -> Result<Event, Failure> {
    decode_common(raw).unwrap_or_else(|| decode_any(raw))
}

/// Decodes an event of the common shape whose context attributes are valid, reading it
/// once (see [`attributes`]); `None` leaves the event to [`decode_any`], which finds and
/// describes what is wrong.
fn decode_common(raw: &RawValue) -> Option<Result<Event, Failure>> {
    let attributes = Attributes::read(raw.get())?;
    if attributes.specversion.as_deref() != Some("1.0") {
        return None;
    }
    let id = attributes.id.filter(|id| check_text("id", id, 256).is_ok())?;
    let source = attributes.source.filter(|source| check_text("source", source, 1024).is_ok())?;
    let event_type = EventType::parse(attributes.event_type.as_deref()?)?;
    let time_text = attributes.time.as_deref()?;
    let time = parse_rfc3339(time_text)?;
    if attributes.datacontenttype.flatten().is_some_and(|t| !media_type::is_json(&t)) {
        return None;
    }
    let data = attributes.data.filter(Value::is_object)?;
    let changes = match parse_event_data(event_type, &data) {
        Ok(changes) => changes,
        Err(e) => return Some(Err((Reason::InvalidData, e.to_string()))),
    };
    let (id, source, subnanos) = (id.into_owned(), source.into_owned(), subnanos(time_text).to_owned());
    Some(Ok(Event { source, id, event_type, time, subnanos, raw: raw.get().to_owned(), changes }))
}

/// Decodes any event, or says why it is rejected.
fn decode_any(raw: &RawValue) -> Result<Event, Failure> {
    let map: Map<String, Value> = match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(envelope_error("an event must be a JSON object".into())),
        Err(e) => return Err((Reason::NotJson, format!("event is not JSON: {e}"))),
    };
    match map.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(other) => return Err(envelope_error(format!("specversion must be \"1.0\", not {}", shown(other)))),
        None => return Err(envelope_error("specversion is required".into())),
    }
    let id = attribute_text(&map, "id", 256)?;
    let source = attribute_text(&map, "source", 1024)?;
    let event_type = match map.get("type") {
        Some(Value::String(t)) => EventType::parse(t).ok_or_else(|| (Reason::UnknownType, unknown_type(t)))?,
        Some(other) => return Err(envelope_error(format!("type must be a string, not {}", shown(other)))),
        None => return Err(envelope_error("type is required".into())),
    };
    let (time, subnanos) = match map.get("time") {
        Some(Value::String(t)) => match parse_rfc3339(t) {
            Some(time) => (time, subnanos(t).to_owned()),
            None => return Err(envelope_error(format!("time {} is not an RFC 3339 timestamp with offset", quote(t)))),
        },
        Some(other) => return Err(envelope_error(format!("time must be a string, not {}", shown(other)))),
        None => return Err(envelope_error("time is required".into())),
    };
    // An optional attribute set to null is absent (CloudEvents JSON format).
    match map.get("datacontenttype") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if media_type::is_json(t) => {}
        Some(other) => {
            return Err(envelope_error(format!(
                "datacontenttype must be a JSON media type (application/json, text/json or a +json type), not {}",
                shown(other)
            )));
        }
    }
    let data = match map.get("data") {
        Some(data @ Value::Object(_)) => data,
        Some(other) => return Err(envelope_error(format!("data must be a JSON object, not {}", shown(other)))),
        None => return Err(envelope_error("data is required".into())),
    };
    let changes = parse_event_data(event_type, data).map_err(|e| (Reason::InvalidData, e.to_string()))?;
    Ok(Event { source, id, event_type, time, subnanos, raw: raw.get().to_owned(), changes })
}

/// `id` and `source`: strings of 1 to `max` characters without control characters.
fn attribute_text(map: &Map<String, Value>, name: &str, max: usize) -> Result<String, Failure> {
    let text = match map.get(name) {
        Some(Value::String(text)) => text,
        Some(other) => return Err(envelope_error(format!("{name} must be a string, not {}", shown(other)))),
        None => return Err(envelope_error(format!("{name} is required"))),
    };
    check_text(name, text, max)?;
    Ok(text.clone())
}

fn check_text(name: &str, text: &str, max: usize) -> Result<(), Failure> {
    let count = text.chars().count();
    if count == 0 || count > max {
        return Err(envelope_error(format!("{name} must have 1 to {max} characters, has {count}")));
    }
    if text.chars().any(char::is_control) {
        return Err(envelope_error(format!("{name} must not contain control characters: {}", quote(text))));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
