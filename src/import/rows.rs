//! Rows of a register to events: each row's cells become a record's `data` (the column
//! names are its field names), which is checked by the same code as the worker's; each
//! event's id is derived from the row's content, so that importing the same file again
//! changes nothing and a corrected row becomes a newer version of its record.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::read::{Cell, Row, excel_serial_date};
use crate::envelope;
use crate::records::parse::{key_fields, parse_event_data};
use crate::records::schema::record_schema;
use crate::records::{Change, EventType, RecordType};

/// Hex digits of the SHA-256 kept in an event id (128 bits).
const ID_DIGITS: usize = 32;

/// How a column's cells are read, from the field's type in the record's JSON Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Boolean,
    Date,
    /// Items separated by `;` in one cell.
    List,
}

/// A header that cannot be imported as the record type asked.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("column {column:?} is not a field of {record_type} (the fields are: {known})")]
    UnknownColumn { column: String, record_type: &'static str, known: String },
    #[error("column {column:?} appears twice in the header")]
    DuplicateColumn { column: String },
    #[error("{0} records cannot be imported from a register")]
    NotImportable(&'static str),
}

/// A row that does not make a valid event: `row N: field F: reason`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("row {row}: field {field}: {problem}")]
pub struct RowError {
    pub row: usize,
    pub field: String,
    pub problem: String,
}

/// A valid row, as the event to publish.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub row: usize,
    pub id: String,
    /// The record's key fields' values (JSON array text).
    pub key: String,
    pub body: String,
}

/// The record types a register can hold: every one but social posts (whose snapshots the
/// collector publishes, with their metrics as an object).
pub fn importable(record_type: RecordType) -> Option<EventType> {
    Some(match record_type {
        RecordType::SocialPost => return None,
        RecordType::Publication => EventType::Publication,
        RecordType::UnSubmission => EventType::UnSubmission,
        RecordType::UnRecommendation => EventType::UnRecommendation,
        RecordType::MediaStory => EventType::MediaStory,
        RecordType::AdvocacyInitiative => EventType::AdvocacyInitiative,
        RecordType::SurvivorParticipation => EventType::SurvivorParticipation,
        RecordType::ChildOutreach => EventType::ChildOutreach,
        RecordType::CapacityTraining => EventType::CapacityTraining,
        RecordType::MemberExpertise => EventType::MemberExpertise,
        RecordType::Fact => EventType::Fact,
    })
}

/// The fields a register of `record_type` may have as columns, with how each is read:
/// the properties of the record's JSON Schema, but for objects (a fact's `attributes`),
/// which a cell cannot hold.
pub fn fields(record_type: RecordType) -> BTreeMap<String, Kind> {
    let schema = serde_json::to_value(record_schema(record_type)).expect("a schema serialises");
    let properties = schema["properties"].as_object().cloned().unwrap_or_default();
    properties.iter().filter_map(|(name, property)| Some((name.clone(), kind(property)?))).collect()
}

fn kind(property: &Value) -> Option<Kind> {
    let types: Vec<&str> = match &property["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    Some(if types.contains(&"object") {
        return None;
    } else if types.contains(&"array") {
        Kind::List
    } else if types.contains(&"boolean") {
        Kind::Boolean
    } else if types.contains(&"integer") {
        Kind::Integer
    } else if property["format"] == "date" {
        Kind::Date
    } else {
        Kind::Text
    })
}

/// Turns the rows of one register into events of one record type.
pub struct Importer {
    record_type: RecordType,
    event_type: EventType,
    /// Per column: its field and how it is read; `None` for a column without a name.
    columns: Vec<Option<(String, Kind)>>,
    source: String,
    time: String,
}

impl Importer {
    /// Reads the header: column names are trimmed and compared without regard to case; a
    /// column without a name is allowed as long as its cells are empty. Every event gets
    /// the source `urn:ecpat:import:TYPE` and `time` (RFC 3339).
    pub fn new(record_type: RecordType, header: &[String], time: String) -> Result<Importer, HeaderError> {
        let event_type = importable(record_type).ok_or(HeaderError::NotImportable(record_type.as_str()))?;
        let fields = fields(record_type);
        let mut columns = Vec::with_capacity(header.len());
        for name in header {
            let name = name.trim();
            if name.is_empty() {
                columns.push(None);
                continue;
            }
            let lower = name.to_lowercase();
            let Some((field, kind)) = fields.get_key_value(&lower) else {
                let known = fields.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err(HeaderError::UnknownColumn {
                    column: name.to_owned(),
                    record_type: record_type.as_str(),
                    known,
                });
            };
            if columns.iter().flatten().any(|(seen, _)| seen == field) {
                return Err(HeaderError::DuplicateColumn { column: name.to_owned() });
            }
            columns.push(Some((field.clone(), *kind)));
        }
        let source = format!("urn:ecpat:import:{}", record_type.as_str());
        Ok(Importer { record_type, event_type, columns, source, time })
    }

    /// The event of one row, checked as the worker checks events.
    pub fn event(&self, row: &Row) -> Result<Prepared, RowError> {
        let fail = |field: &str, problem: String| RowError { row: row.number, field: field.to_owned(), problem };
        let data = self.data(row)?;
        let data = Value::Object(data.into_iter().collect::<Map<String, Value>>());
        let changes = parse_event_data(self.event_type, &data).map_err(|e| {
            let field = e.field.strip_prefix("data.").unwrap_or(&e.field);
            fail(field, e.problem.clone())
        })?;
        let key = match changes.first() {
            Some(Change::Upsert(record)) => record.key().key,
            _ => return Err(fail(&self.key_fields(), "does not name a record".into())),
        };
        let id = event_id(self.event_type, &key, &data);
        let event = json!({
            "specversion": "1.0",
            "id": id,
            "source": self.source,
            "type": self.event_type.as_str(),
            "time": self.time,
            "datacontenttype": "application/json",
            "data": data,
        });
        let body = event.to_string();
        // The whole event, read by the worker's own decoding: what it accepts goes.
        if let Some(rejection) = envelope::decode(body.as_bytes()).rejections.first() {
            return Err(fail("(event)", rejection.detail.clone()));
        }
        Ok(Prepared { row: row.number, id, key, body })
    }

    /// The key fields of this register's records, for an error about the key.
    pub fn key_fields(&self) -> String {
        key_fields(self.record_type).join(", ")
    }

    /// The event type, which is also the routing key.
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// A row's `data`: each non-empty cell read as its field's kind. Sorted by name, so that
    /// the same content always gives the same text (and id).
    fn data(&self, row: &Row) -> Result<BTreeMap<String, Value>, RowError> {
        let mut data = BTreeMap::new();
        for (index, cell) in row.cells.iter().enumerate() {
            if *cell == Cell::Empty {
                continue;
            }
            let Some(Some((field, kind))) = self.columns.get(index) else {
                return Err(RowError {
                    row: row.number,
                    field: format!("(column {})", index + 1),
                    problem: "has a value but no name in the header".into(),
                });
            };
            let value =
                value(cell, *kind).map_err(|problem| RowError { row: row.number, field: field.clone(), problem })?;
            data.insert(field.clone(), value);
        }
        Ok(data)
    }
}

/// A cell's JSON value for a field of `kind`; what is not recognised is passed on as text,
/// for the record's own checks to say what is wrong with it.
pub fn value(cell: &Cell, kind: Kind) -> Result<Value, String> {
    Ok(match (kind, cell) {
        (_, Cell::Empty) => Value::Null,
        (Kind::List, Cell::Text(text)) => {
            Value::Array(text.split(';').map(str::trim).filter(|item| !item.is_empty()).map(Value::from).collect())
        }
        (Kind::List, other) => Value::Array(vec![Value::String(text(other))]),
        (Kind::Boolean, Cell::Bool(b)) => Value::Bool(*b),
        (Kind::Boolean, Cell::Number(n)) if *n == 0.0 || *n == 1.0 => Value::Bool(*n == 1.0),
        (Kind::Boolean, other) => Value::Bool(boolean(&text(other)).ok_or_else(|| {
            format!("{:?} is not yes or no (true/false, yes/no, oui/non, vrai/faux or 1/0)", text(other))
        })?),
        (Kind::Integer, Cell::Number(n)) => whole(*n).map_or_else(|| json!(n), Value::from),
        (Kind::Integer, Cell::Text(t)) => t.parse::<i64>().map_or_else(|_| Value::from(t.as_str()), Value::from),
        (Kind::Date, Cell::Number(n)) => match excel_serial_date(*n) {
            Some(date) => Value::from(date.to_string()),
            None => Value::from(text(cell)),
        },
        (Kind::Date, Cell::Text(t)) => Value::from(french_date(t).map_or_else(|| t.clone(), |d| d.to_string())),
        (_, other) => Value::from(text(other)),
    })
}

/// A cell as text: numbers without a needless `.0`, dates as `YYYY-MM-DD`.
fn text(cell: &Cell) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(text) => text.clone(),
        Cell::Number(n) => whole(*n).map_or_else(|| n.to_string(), |n| n.to_string()),
        Cell::Bool(b) => b.to_string(),
        Cell::Date(date) => date.to_string(),
    }
}

fn whole(n: f64) -> Option<i64> {
    (n.fract() == 0.0 && n.abs() < 9e15).then_some(n as i64)
}

/// `true`, `yes`, `oui`, `vrai`, `1` and their opposites, in any case.
fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "true" | "yes" | "oui" | "vrai" | "1" => Some(true),
        "false" | "no" | "non" | "faux" | "0" => Some(false),
        _ => None,
    }
}

/// A date written `DD/MM/YYYY`, as French spreadsheets show dates.
fn french_date(text: &str) -> Option<NaiveDate> {
    let mut parts = text.split('/');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |part: &str, max: usize| part.len() <= max && part.bytes().all(|b| b.is_ascii_digit());
    if parts.next().is_some() || !digits(day, 2) || !digits(month, 2) || year.len() != 4 || !digits(year, 4) {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

/// The id of a row's event: a SHA-256 of its event type, its record's key and its `data`
/// (sorted by field), so the same row always gives the same id and any change a new one.
pub fn event_id(event_type: EventType, key: &str, data: &Value) -> String {
    let mut hash = Sha256::new();
    for part in [event_type.as_str(), key, &data.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())[..ID_DIGITS].to_owned()
}

#[cfg(test)]
mod tests;
