//! The common case of an event, read in one pass: its context attributes as borrowed text
//! and its `data` as JSON, without building the envelope as a JSON object first.
//!
//! Only for events that [`decode_event`](super::decode_event) accepts: anything else (a
//! JSON error, an attribute that is not a string, a repeated attribute, a reserved name)
//! is left to the full reading, which describes the problem. The optional attribute it
//! reads, `datacontenttype`, may also be null, which the full reading takes as absent.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The attributes of one event, each present at most once.
#[derive(Default)]
pub(super) struct Attributes<'a> {
    pub specversion: Option<Cow<'a, str>>,
    pub id: Option<Cow<'a, str>>,
    pub source: Option<Cow<'a, str>>,
    pub event_type: Option<Cow<'a, str>>,
    pub time: Option<Cow<'a, str>>,
    /// `Some(None)`: present and null, which is the same as absent.
    pub datacontenttype: Option<Option<Cow<'a, str>>>,
    pub data: Option<Value>,
}

impl<'a> Attributes<'a> {
    /// Reads an event's JSON; `None` when it is not an object of this common shape.
    pub fn read(json: &'a str) -> Option<Self> {
        serde_json::from_str(json).ok()
    }
}

impl<'de> Deserialize<'de> for Attributes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(AttributesVisitor)
    }
}

struct AttributesVisitor;

impl<'de> Visitor<'de> for AttributesVisitor {
    type Value = Attributes<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut attributes = Attributes::default();
        while let Some(Text(name)) = map.next_key::<Text>()? {
            let slot = match &*name {
                "specversion" => &mut attributes.specversion,
                "id" => &mut attributes.id,
                "source" => &mut attributes.source,
                "type" => &mut attributes.event_type,
                "time" => &mut attributes.time,
                // Kept as present, so that a repeated one is still left to the full reading.
                "datacontenttype" if attributes.datacontenttype.is_none() => {
                    attributes.datacontenttype = Some(map.next_value::<Option<Text>>()?.map(|Text(text)| text));
                    continue;
                }
                "datacontenttype" => return Err(de::Error::custom("attribute is repeated")),
                "data" if attributes.data.is_none() => {
                    attributes.data = Some(map.next_value()?);
                    continue;
                }
                // serde_json gives names starting with `$` a meaning of its own at the start
                // of an object (`$serde_json::private::RawValue`).
                "data" => return Err(de::Error::custom("data is repeated")),
                other if other.starts_with('$') => return Err(de::Error::custom("reserved name")),
                // Read whole, as the full reading does, so that both accept the same JSON.
                _ => {
                    map.next_value::<Value>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(de::Error::custom("attribute is repeated"));
            }
            let Text(text) = map.next_value()?;
            *slot = Some(text);
        }
        Ok(attributes)
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text)))
    }
}
