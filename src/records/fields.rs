//! Reading and checking the fields of an event's `data`, with errors that name the field.

use std::fmt::{self, Display};

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};

use super::countries;

/// A field that breaks a rule of docs/events.md: `field` is its path (`data.metrics.likes`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

/// The first and last accepted calendar dates.
const FIRST_DATE: (i32, u32, u32) = (1990, 1, 1);
const LAST_DATE: (i32, u32, u32) = (2100, 12, 31);

/// Fields of one JSON object, read at a path so errors can name them.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

type Result<T> = std::result::Result<T, FieldError>;

impl<'a> Fields<'a> {
    /// Reads `value` as an object found at `path`.
    pub fn object(value: &'a Value, path: &str) -> Result<Self> {
        match value {
            Value::Object(map) => Ok(Fields { map, path: path.to_owned() }),
            other => Err(error(path, format!("must be a JSON object, not {}", kind(other)))),
        }
    }

    /// The path of a field of this object.
    pub fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The names of this object's fields.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// Every field of this object with its value, `null` included.
    pub fn entries(&self) -> impl Iterator<Item = (&'a String, &'a Value)> + use<'a> {
        self.map.iter()
    }

    /// A field's value; `None` when it is absent or `null`.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str) -> Result<&'a Value> {
        self.get(name).ok_or_else(|| error(&self.at(name), "is required".into()))
    }

    /// Where a field of this object is (its path, written out only for an error).
    fn at<'p>(&'p self, name: &'p str) -> At<'p> {
        At { object: &self.path, name, index: None }
    }

    /// A required field read by `read`.
    pub fn req<'p, T>(&'p self, name: &'p str, read: impl Fn(&Value, &At<'p>) -> Result<T>) -> Result<T> {
        read(self.required(name)?, &self.at(name))
    }

    /// An optional field read by `read`.
    pub fn opt<'p, T>(&'p self, name: &'p str, read: impl Fn(&Value, &At<'p>) -> Result<T>) -> Result<Option<T>> {
        self.get(name).map(|v| read(v, &self.at(name))).transpose()
    }

    /// A required list read item by item, with at least `min` items.
    pub fn req_list<'p, T>(
        &'p self,
        name: &'p str,
        min: usize,
        read: impl Fn(&Value, &At<'p>) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.required(name)?;
        self.list(name, min, read)
    }

    /// An optional list read item by item, with at least `min` items; absent means empty.
    pub fn list<'p, T>(
        &'p self,
        name: &'p str,
        min: usize,
        read: impl Fn(&Value, &At<'p>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let at = self.at(name);
        let items = match self.get(name) {
            None => &[][..],
            Some(Value::Array(items)) => items.as_slice(),
            Some(other) => return Err(error(&at, format!("must be a list, not {}", kind(other)))),
        };
        if items.len() < min {
            return Err(error(&at, format!("must have at least {min} item(s)")));
        }
        items.iter().enumerate().map(|(i, item)| read(item, &At { index: Some(i), ..at })).collect()
    }
}

/// The path of a field (`data.metrics.likes`) or of a list item (`data.members[2]`), kept
/// in parts: it is written out only when an error names it.
#[derive(Clone, Copy)]
pub struct At<'p> {
    object: &'p str,
    name: &'p str,
    index: Option<usize>,
}

impl Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.object, self.name)?;
        match self.index {
            Some(i) => write!(f, "[{i}]"),
            None => Ok(()),
        }
    }
}

pub fn error(path: &(impl Display + ?Sized), problem: String) -> FieldError {
    FieldError { field: path.to_string(), problem }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Quotes a value for an error message, escaping control characters and cutting it short.
pub fn quote(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("{short:?}{ellipsis}")
}

/// A JSON value for an error message: escaped, and cut short however large it is.
pub fn shown(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 80 { text } else { format!("{}…", text.chars().take(80).collect::<String>()) }
}

fn string<'v>(value: &'v Value, path: &(impl Display + ?Sized)) -> Result<&'v str> {
    value.as_str().ok_or_else(|| error(path, format!("must be a string, not {}", kind(value))))
}

/// A boolean.
pub fn boolean(value: &Value, path: &(impl Display + ?Sized)) -> Result<bool> {
    value.as_bool().ok_or_else(|| error(path, format!("must be true or false, not {}", kind(value))))
}

/// An integer literal between `min` and `max`.
pub fn integer(value: &Value, path: &(impl Display + ?Sized), min: i64, max: i64) -> Result<i64> {
    value
        .as_i64()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| error(path, format!("must be an integer from {min} to {max}, not {}", shown(value))))
}

/// An identifier: 1-256 characters, no control characters.
pub fn identifier(value: &Value, path: &(impl Display + ?Sized)) -> Result<String> {
    let text = string(value, path)?;
    let count = text.chars().count();
    if count == 0 || count > 256 {
        return Err(error(path, format!("must have 1 to 256 characters, has {count}")));
    }
    if text.chars().any(char::is_control) {
        return Err(error(path, format!("must not contain control characters: {}", quote(text))));
    }
    Ok(text.to_owned())
}

/// Free text: at most 2000 characters.
pub fn free_text(value: &Value, path: &(impl Display + ?Sized)) -> Result<String> {
    short_text(value, path, 2000)
}

/// A text matching `^[a-z0-9][a-z0-9<extra>]{min_rest,max_rest}$`.
fn code(
    value: &Value,
    path: &(impl Display + ?Sized),
    max_rest: usize,
    min_rest: usize,
    extra: &[char],
    what: &str,
) -> Result<String> {
    let text = string(value, path)?;
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(valid);
    let mut rest = 0;
    let rest_valid = chars.all(|c| {
        rest += 1;
        valid(c) || extra.contains(&c)
    });
    // Every character is looked at when all are valid, so `rest` then counts them all.
    let rest_ok = rest_valid && (min_rest..=max_rest).contains(&rest);
    if first_ok && rest_ok { Ok(text.to_owned()) } else { Err(error(path, format!("{} is not {what}", quote(text)))) }
}

/// An ECPAT member's (or partner's) code: `^[a-z0-9][a-z0-9-]{1,63}$`.
pub fn member(value: &Value, path: &(impl Display + ?Sized)) -> Result<String> {
    code(value, path, 63, 1, &['-'], "a member code (^[a-z0-9][a-z0-9-]{1,63}$)")
}

/// A social platform: `^[a-z0-9][a-z0-9_-]{0,31}$`.
pub fn platform(value: &Value, path: &(impl Display + ?Sized)) -> Result<String> {
    code(value, path, 31, 0, &['_', '-'], "a platform name (^[a-z0-9][a-z0-9_-]{0,31}$)")
}

/// A slug (a fact's `kind`, a tag, an attribute's name): `^[a-z][a-z0-9_]{0,63}$`, each
/// character a lower-case ASCII letter, a digit or `_`.
pub fn is_slug(text: &str) -> bool {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.as_str();
    first_ok && rest.len() <= 63 && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A slug, `^[a-z][a-z0-9_]{0,63}$`; `what` names it in the error (`a kind`, `a tag`).
pub fn slug(value: &Value, path: &(impl Display + ?Sized), what: &str) -> Result<String> {
    let text = string(value, path)?;
    if is_slug(text) {
        Ok(text.to_owned())
    } else {
        Err(error(path, format!("{} is not {what} (^[a-z][a-z0-9_]{{0,63}}$)", quote(text))))
    }
}

/// A string of at most `max` characters.
pub fn short_text(value: &Value, path: &(impl Display + ?Sized), max: usize) -> Result<String> {
    let text = string(value, path)?;
    let count = text.chars().count();
    if count > max {
        return Err(error(path, format!("must have at most {max} characters, has {count}")));
    }
    Ok(text.to_owned())
}

/// An ISO 3166-1 alpha-2 country code (or `XK`), stored upper-case.
pub fn country(value: &Value, path: &(impl Display + ?Sized)) -> Result<String> {
    let text = string(value, path)?;
    countries::normalize(text)
        .ok_or_else(|| error(path, format!("{} is not an ISO 3166-1 alpha-2 country code", quote(text))))
}

fn in_range(date: NaiveDate) -> bool {
    let first = NaiveDate::from_ymd_opt(FIRST_DATE.0, FIRST_DATE.1, FIRST_DATE.2).expect("valid date");
    let last = NaiveDate::from_ymd_opt(LAST_DATE.0, LAST_DATE.1, LAST_DATE.2).expect("valid date");
    (first..=last).contains(&date)
}

/// A calendar date `YYYY-MM-DD` between 1990-01-01 and 2100-12-31.
pub fn date(value: &Value, path: &(impl Display + ?Sized)) -> Result<NaiveDate> {
    let text = string(value, path)?;
    // chrono alone would also take "+2019-3-15" or " 2019-03-5".
    let shape_ok = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let parsed = shape_ok
        .then(|| {
            // The shape is checked: the parts are digits, read without a format string.
            let number =
                |range: std::ops::Range<usize>| text[range].bytes().fold(0, |n, b| n * 10 + u32::from(b - b'0'));
            NaiveDate::from_ymd_opt(number(0..4) as i32, number(5..7), number(8..10))
        })
        .flatten()
        .ok_or_else(|| error(path, format!("{} is not a calendar date YYYY-MM-DD", quote(text))))?;
    if in_range(parsed) { Ok(parsed) } else { Err(error(path, format!("{text} is outside 1990-01-01..2100-12-31"))) }
}

/// An RFC 3339 timestamp with offset, converted to UTC, whose UTC date is in the date range.
pub fn timestamp(value: &Value, path: &(impl Display + ?Sized)) -> Result<DateTime<Utc>> {
    let text = string(value, path)?;
    let parsed = parse_rfc3339(text)
        .ok_or_else(|| error(path, format!("{} is not an RFC 3339 timestamp with offset", quote(text))))?
        .with_timezone(&Utc);
    if in_range(parsed.date_naive()) {
        Ok(parsed)
    } else {
        Err(error(path, format!("{text} is outside 1990-01-01..2100-12-31 (UTC)")))
    }
}

/// Parses an RFC 3339 timestamp; the offset (`Z` or `±hh:mm`) is required. The result
/// holds nine fractional digits: [`subnanos`] gives the ones past the ninth.
pub fn parse_rfc3339(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

/// The fractional digits of an RFC 3339 timestamp past the ninth, trailing zeros trimmed
/// (`""` when there are none): RFC 3339 allows any number of digits, and chrono drops
/// those past the nanosecond. Trimmed digit strings compare as the fractions they write,
/// so ordering them as strings orders those times. `text` must be a timestamp that
/// [`parse_rfc3339`] accepts: its only `.` starts the fraction.
pub fn subnanos(text: &str) -> &str {
    let Some((_, fraction)) = text.split_once('.') else { return "" };
    let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
    fraction.get(9..digits).unwrap_or("").trim_end_matches('0')
}

/// A closed set of lower-case values (implemented by `str_enum!`).
pub trait Closed: Copy + 'static {
    /// Every value.
    const VALUES: &'static [Self];
    /// The value for an exact spelling.
    fn from_wire(text: &str) -> Option<Self>;
    /// The exact spelling.
    fn wire(self) -> &'static str;
}

/// One of a closed set of lower-case values.
pub fn one_of<T: Closed>(value: &Value, path: &(impl Display + ?Sized)) -> Result<T> {
    let text = string(value, path)?;
    T::from_wire(text).ok_or_else(|| {
        let allowed: Vec<&str> = T::VALUES.iter().map(|v| v.wire()).collect();
        error(path, format!("{} is not one of {}", quote(text), allowed.join(", ")))
    })
}
