//! Which `datacontenttype` says that `data` is JSON (docs/events.md): `application/json`,
//! `text/json` or any type with the `+json` suffix (`application/cloudevents+json`,
//! `application/ld+json`), compared case-insensitively, parameters such as
//! `; charset=utf-8` ignored.

/// The structured syntax suffix of JSON types (RFC 6839).
const SUFFIX: &str = "+json";

/// Whether the media type `text` says JSON.
pub fn is_json(text: &str) -> bool {
    let essence = text.split_once(';').map_or(text, |(essence, _parameters)| essence).trim();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    if !is_token(kind) || !is_token(subtype) {
        return false;
    }
    let plain_json = subtype.eq_ignore_ascii_case("json")
        && (kind.eq_ignore_ascii_case("application") || kind.eq_ignore_ascii_case("text"));
    // A token is ASCII: the suffix can be sliced off at any byte.
    let suffixed = subtype.len() > SUFFIX.len() && subtype[subtype.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX);
    plain_json || suffixed
}

/// A type or subtype name: one or more token characters (RFC 9110, section 5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_types_are_json_whatever_their_case_and_parameters() {
        for text in [
            "application/json",
            "Application/JSON",
            "APPLICATION/JSON",
            "text/json",
            "Text/Json",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            " application/json ; charset=\"utf-8\"",
            "application/cloudevents+json",
            "application/ld+json",
            "application/vnd.ecpat.story+JSON; version=2",
            "text/x-custom+json",
        ] {
            assert!(is_json(text), "{text:?}");
        }
    }

    #[test]
    fn other_types_and_malformed_ones_are_not_json() {
        for text in [
            "",
            "json",
            "application",
            "application/",
            "/json",
            "application/xml",
            "text/plain",
            "application/jsonl",
            "application/x-ndjson",
            "application/json-seq",
            "application/geo+json-seq",
            "application/+json",
            "application/json/extra",
            "application /json",
            "application/ json",
            "multipart/form-data; boundary=json",
            "application/jsön",
            "image/json\u{0}",
        ] {
            assert!(!is_json(text), "{text:?}");
        }
    }
}
