//! Reading a framework document (TOML, docs/frameworks.md) and checking all of it: a
//! document with any error is refused whole, with an error that names the indicator and the
//! key.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::fields::{self, Field, FieldPath, Kind};
use super::when::When;
use super::{Breakdown, Framework, Indicator, Objective, ValueRule};
use crate::records::RecordType;

/// Why a document was refused: one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

fn refuse(message: impl Into<String>) -> DocumentError {
    DocumentError(message.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    id: String,
    title: BTreeMap<String, String>,
    years: [i32; 2],
    #[serde(default)]
    objectives: Vec<ObjectiveDoc>,
    #[serde(default)]
    indicators: Vec<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveDoc {
    code: String,
    title: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndicatorDoc {
    code: String,
    objective: String,
    title: BTreeMap<String, String>,
    record: String,
    when: Option<String>,
    value: String,
    date: String,
    #[serde(default)]
    breakdowns: Vec<BreakdownDoc>,
    baseline: Option<i64>,
    #[serde(default)]
    targets: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BreakdownDoc {
    Field(String),
    Named(NamedBreakdown),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedBreakdown {
    name: String,
    field: String,
}

/// Whether `text` is a first character from `first` followed by `rest_max` at most (and
/// `rest_min` at least) characters from `rest`.
fn pattern(text: &str, first: fn(char) -> bool, rest: fn(char) -> bool, rest_min: usize, rest_max: usize) -> bool {
    let mut chars = text.chars();
    let Some(head) = chars.next() else { return false };
    let tail: Vec<char> = chars.collect();
    first(head) && tail.iter().all(|&c| rest(c)) && (rest_min..=rest_max).contains(&tail.len())
}

fn lower_or_digit(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `^[a-z0-9][a-z0-9-]{1,63}$`
fn is_framework_id(text: &str) -> bool {
    pattern(text, lower_or_digit, |c| lower_or_digit(c) || c == '-', 1, 63)
}

/// `^[a-z][a-z0-9_]{0,63}$`
pub fn is_slug(text: &str) -> bool {
    pattern(text, |c| c.is_ascii_lowercase(), |c| lower_or_digit(c) || c == '_', 0, 63)
}

/// `^[A-Z][A-Z0-9_]{0,15}$`
fn is_indicator_code(text: &str) -> bool {
    pattern(text, |c| c.is_ascii_uppercase(), |c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_', 0, 15)
}

/// The one-line text of a TOML error, with its line.
fn toml_error(text: &str, error: &toml::de::Error) -> DocumentError {
    let line = error.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
    let message = error.message().trim().replace('\n', " ");
    match line {
        Some(line) => refuse(format!("line {line}: {message}")),
        None => refuse(message),
    }
}

fn check_title(title: &BTreeMap<String, String>, at: &str) -> Result<(), DocumentError> {
    if title.is_empty() || title.values().any(|t| t.trim().is_empty()) {
        return Err(refuse(format!(
            "{at}, key `title`: give a non-empty title per language, e.g. {{ fr = \"...\", en = \"...\" }}"
        )));
    }
    Ok(())
}

/// Reads and checks a framework document.
pub fn parse(text: &str) -> Result<Framework, DocumentError> {
    let document: Document = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    if !is_framework_id(&document.id) {
        return Err(refuse(format!(
            "key `id`: {:?} must be 2 to 64 lower-case letters, digits or dashes, starting with a letter or digit",
            document.id
        )));
    }
    check_title(&document.title, "the framework")?;
    let [first, last] = document.years;
    if !(1990..=2100).contains(&first) || !(1990..=2100).contains(&last) || first > last {
        return Err(refuse(format!("key `years`: [{first}, {last}] must be a first and a last year, 1990 to 2100")));
    }
    let span = format!("{first}-{last}");
    let mut objectives = Vec::new();
    for objective in document.objectives {
        let at = format!("objective {:?}", objective.code);
        if !is_slug(&objective.code) {
            return Err(refuse(format!("{at}, key `code`: must match ^[a-z][a-z0-9_]{{0,63}}$")));
        }
        if objectives.iter().any(|o: &Objective| o.code == objective.code) {
            return Err(refuse(format!("{at}, key `code`: the objective is listed twice")));
        }
        check_title(&objective.title, &at)?;
        objectives.push(Objective { code: objective.code, title: objective.title });
    }
    let mut indicators: Vec<Indicator> = Vec::new();
    for (index, table) in document.indicators.into_iter().enumerate() {
        let name = match table.get("code") {
            Some(toml::Value::String(code)) => format!("indicator {code}"),
            _ => format!("indicator #{}", index + 1),
        };
        let doc = IndicatorDoc::deserialize(toml::Value::Table(table))
            .map_err(|e| refuse(format!("{name}: {}", e.message().trim().replace('\n', " "))))?;
        let indicator = indicator(doc, &name, &objectives, &span, first..=last)?;
        if indicators.iter().any(|i| i.code == indicator.code) {
            return Err(refuse(format!("{name}, key `code`: the code is used twice")));
        }
        indicators.push(indicator);
    }
    Ok(Framework::new(document.id, document.title, (first, last), objectives, indicators))
}

/// The field `name` of `record`, or an error for `key`.
fn field(record: RecordType, name: &str, at: &str, key: &str) -> Result<&'static Field, DocumentError> {
    fields::find(record, name).ok_or_else(|| {
        let known: Vec<&str> = fields::of(record).iter().map(|f| f.name).collect();
        refuse(format!(
            "{at}, key `{key}`: {} has no field {name:?} (its fields: {})",
            record.as_str(),
            known.join(", ")
        ))
    })
}

/// What a breakdown or a distinct count names: a field of `record` other than a map, or
/// one entry of a map field, `MAP.KEY` (`attributes.region`), KEY a slug.
fn path(record: RecordType, name: &str, at: &str, key: &str) -> Result<FieldPath, DocumentError> {
    if let Some((map, entry)) = name.split_once('.') {
        let field = field(record, map, at, key)?;
        if field.kind != Kind::Map {
            return Err(refuse(format!(
                "{at}, key `{key}`: {name:?} names an entry of {map:?}, which is a {} field, not a map",
                field.kind.as_str()
            )));
        }
        if !is_slug(entry) {
            return Err(refuse(format!(
                "{at}, key `{key}`: in {name:?}, the entry's name must match ^[a-z][a-z0-9_]{{0,63}}$"
            )));
        }
        return Ok(FieldPath { field, entry: Some(entry.to_owned()) });
    }
    let field = field(record, name, at, key)?;
    if field.kind == Kind::Map {
        return Err(refuse(format!(
            "{at}, key `{key}`: {name:?} is a map; name one of its entries, e.g. \"{name}.region\""
        )));
    }
    Ok(FieldPath::whole(field))
}

fn indicator(
    doc: IndicatorDoc,
    at: &str,
    objectives: &[Objective],
    span: &str,
    years: std::ops::RangeInclusive<i32>,
) -> Result<Indicator, DocumentError> {
    if !is_indicator_code(&doc.code) {
        return Err(refuse(format!("{at}, key `code`: must match ^[A-Z][A-Z0-9_]{{0,15}}$")));
    }
    if !objectives.iter().any(|o| o.code == doc.objective) {
        return Err(refuse(format!("{at}, key `objective`: {:?} is not an objective of the framework", doc.objective)));
    }
    check_title(&doc.title, at)?;
    let record = RecordType::parse(&doc.record).ok_or_else(|| {
        let known: Vec<&str> = RecordType::ALL.iter().map(|t| t.as_str()).collect();
        refuse(format!("{at}, key `record`: unknown record type {:?} (one of: {})", doc.record, known.join(", ")))
    })?;
    let when = match &doc.when {
        Some(source) => Some(When::compile(source, record).map_err(|e| refuse(format!("{at}, key `when`: {e}")))?),
        None => None,
    };
    let value = value_rule(&doc.value, record, at)?;
    let date = field(record, &doc.date, at, "date")?;
    let date_ok = matches!(date.kind, Kind::Date | Kind::Timestamp) || (date.kind == Kind::Int && date.name == "year");
    if !date_ok {
        return Err(refuse(format!(
            "{at}, key `date`: {:?} is a {} field; name a date, a timestamp or the `year`",
            doc.date,
            date.kind.as_str()
        )));
    }
    let mut breakdowns: Vec<Breakdown> = Vec::new();
    for breakdown in doc.breakdowns {
        let (name, field_name) = match breakdown {
            // An entry of a map is named after its key: `attributes.region` gives `region`.
            BreakdownDoc::Field(field) => (field.rsplit('.').next().unwrap_or_default().to_owned(), field),
            BreakdownDoc::Named(NamedBreakdown { name, field }) => (name, field),
        };
        let field = path(record, &field_name, at, "breakdowns")?;
        if field.field.kind == Kind::Timestamp {
            return Err(refuse(format!(
                "{at}, key `breakdowns`: {field_name:?} is a timestamp, which cannot be a breakdown"
            )));
        }
        if !is_slug(&name) {
            return Err(refuse(format!(
                "{at}, key `breakdowns`: the name {name:?} must match ^[a-z][a-z0-9_]{{0,63}}$"
            )));
        }
        if breakdowns.iter().any(|b| b.name == name) {
            return Err(refuse(format!("{at}, key `breakdowns`: {name:?} is listed twice")));
        }
        breakdowns.push(Breakdown { name, field });
    }
    for period in doc.targets.keys() {
        let year_ok = period.len() == 4 && period.parse::<i32>().is_ok_and(|y| years.contains(&y));
        if !year_ok && period != span {
            return Err(refuse(format!(
                "{at}, key `targets`: {period:?} is neither a year of the framework ({}-{}) nor its span {span:?}",
                years.start(),
                years.end()
            )));
        }
    }
    Ok(Indicator {
        code: doc.code,
        objective: doc.objective,
        title: doc.title,
        record,
        when,
        value,
        date,
        breakdowns,
        baseline: doc.baseline,
        targets: doc.targets,
    })
}

/// `count`, `sum(FIELD)` or `distinct(FIELD)`.
fn value_rule(text: &str, record: RecordType, at: &str) -> Result<ValueRule, DocumentError> {
    if text == "count" {
        return Ok(ValueRule::Count);
    }
    let inner = |prefix: &str| text.strip_prefix(prefix).and_then(|t| t.strip_suffix(')')).map(str::trim);
    if let Some(name) = inner("sum(") {
        let field = field(record, name, at, "value")?;
        if field.kind != Kind::Int {
            return Err(refuse(format!(
                "{at}, key `value`: sum({name}) needs an integer field, and {name} is a {}",
                field.kind.as_str()
            )));
        }
        return Ok(ValueRule::Sum(field));
    }
    if let Some(name) = inner("distinct(") {
        let field = path(record, name, at, "value")?;
        if field.field.kind == Kind::Timestamp {
            return Err(refuse(format!("{at}, key `value`: distinct({name}) cannot count timestamps")));
        }
        return Ok(ValueRule::Distinct(field));
    }
    Err(refuse(format!("{at}, key `value`: {text:?} must be \"count\", \"sum(FIELD)\" or \"distinct(FIELD)\"")))
}
