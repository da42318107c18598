//! An indicator's `when`: a CEL expression over a record's fields, compiled once when the
//! framework is read, evaluated per record with only the fields it names.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use cel::objects::{Key, Map};
use cel::{Context, Env, ExecutionError, Program};

use super::fields::{self, Field, Kind, Value};
use crate::records::{Record, RecordType};

/// CEL's standard environment, built once: building it registers every built-in function.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// A compiled `when`.
pub struct When {
    pub source: String,
    program: Program,
    /// The fields the expression names.
    variables: Vec<&'static Field>,
}

impl std::fmt::Debug for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "When({:?})", self.source)
    }
}

impl When {
    /// Compiles `source` for records of `record_type`, and checks it on a sample record
    /// whose every field is set: it must name only the type's fields and give a boolean.
    pub fn compile(source: &str, record_type: RecordType) -> Result<When, String> {
        let program = ENV.compile(source).map_err(|e| {
            let text = e.to_string();
            format!("does not compile: {}", text.lines().next().unwrap_or_default().trim())
        })?;
        let references = program.references();
        let variables: Vec<&'static Field> =
            fields::of(record_type).iter().filter(|f| references.has_variable(f.name)).collect();
        let map = variables.iter().find(|f| f.kind == Kind::Map).map(|f| f.name);
        let when = When { source: source.to_owned(), program, variables };
        match when.evaluate_with(|field| sample(field.kind)) {
            Ok(cel::Value::Bool(_)) => Ok(when),
            Ok(other) => Err(format!("must give true or false, and gives {:?} on a sample record", other.type_of())),
            Err(ExecutionError::UndeclaredReference(name)) => {
                let known: Vec<&str> = fields::of(record_type).iter().map(|f| f.name).collect();
                Err(format!("{} has no field {name:?} (its fields: {})", record_type.as_str(), known.join(", ")))
            }
            // The sample map has one entry, `x`: an entry read without a test fails on it.
            Err(ExecutionError::NoSuchKey(key)) if map.is_some() => Err(format!(
                "fails on a sample record: no entry {key:?}; {map} may lack it or be null: read it as \
                 {map}.?{key}.orValue(\"\")",
                map = map.unwrap_or_default()
            )),
            Err(e) => Err(format!("fails on a sample record: {e}")),
        }
    }

    /// Whether `record` counts; an error when the expression fails on it.
    pub fn holds(&self, record: &Record) -> Result<bool, String> {
        match self.evaluate_with(|field| cel_value((field.get)(record))) {
            Ok(cel::Value::Bool(holds)) => Ok(holds),
            Ok(other) => Err(format!("gives {:?}, not true or false", other.type_of())),
            Err(e) => Err(e.to_string()),
        }
    }

    fn evaluate_with(&self, value: impl Fn(&Field) -> cel::Value) -> Result<cel::Value, ExecutionError> {
        let mut context = Context::with_env(Arc::clone(&ENV));
        for field in &self.variables {
            context.add_variable_from_value(field.name, value(field));
        }
        self.program.execute(&context)
    }
}

/// A field's value as CEL sees it: dates are `YYYY-MM-DD` strings, a map is a
/// `map(string, string)`.
fn cel_value(value: Value<'_>) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Text(text) => cel::Value::String(Arc::new(text.into_owned())),
        Value::Int(n) => cel::Value::Int(n),
        Value::Bool(b) => cel::Value::Bool(b),
        Value::Date(date) => cel::Value::String(Arc::new(date.format("%Y-%m-%d").to_string())),
        Value::Timestamp(at) => cel::Value::Timestamp(at.fixed_offset()),
        Value::List(items) => {
            cel::Value::List(Arc::new(items.into_iter().map(|i| cel::Value::String(Arc::new(i.to_owned()))).collect()))
        }
        Value::Map(entries) => {
            let entries: HashMap<Key, cel::Value> = entries
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), cel::Value::String(Arc::new(v.clone()))))
                .collect();
            cel::Value::Map(Map { map: Arc::new(entries) })
        }
    }
}

/// A value of each kind, for checking an expression when it is compiled.
fn sample(kind: Kind) -> cel::Value {
    let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("a date");
    let map = BTreeMap::from([("x".to_owned(), "x".to_owned())]);
    cel_value(match kind {
        Kind::Text => Value::Text("x".into()),
        Kind::Int => Value::Int(1),
        Kind::Bool => Value::Bool(true),
        Kind::Date => Value::Date(date),
        Kind::Timestamp => Value::Timestamp(date.and_hms_opt(0, 0, 0).expect("a time").and_utc()),
        Kind::List => Value::List(vec!["x"]),
        Kind::Map => Value::Map(&map),
    })
}
