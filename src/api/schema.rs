//! The JSON answers of the API, as the types that the handlers serialise: their schemas
//! (derived, or written here where a derive cannot say it) make the OpenAPI document's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::records::schema::with_property;
use crate::records::{EventType, Record, RecordType};

/// Every error answer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What was wrong, in English.
    #[schema(min_length = 1)]
    pub error: String,
}

/// The process is up.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    #[schema(schema_with = ok)]
    pub status: &'static str,
}

/// Migrations are applied, the topology is declared, the consumer runs, database and broker
/// answer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    #[schema(schema_with = ready)]
    pub status: &'static str,
}

/// The worker is not ready (yet).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotReady {
    #[schema(schema_with = not_ready)]
    pub status: &'static str,
    /// Why, e.g. `not consuming from RabbitMQ`, `database unreachable`, or
    /// `database busy: ...` while a batch is retried after a deadlock or a lack of room.
    #[schema(min_length = 1)]
    pub error: String,
}

fn ok() -> RefOr<Schema> {
    word("ok")
}

fn ready() -> RefOr<Schema> {
    word("ready")
}

fn not_ready() -> RefOr<Schema> {
    word("not ready")
}

/// A string that is always `value`.
fn word(value: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value])).into()
}

/// One indicator's value for the period of the enclosing answer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Indicator {
    #[schema(value_type = IndicatorCode)]
    pub code: String,
    #[schema(value_type = Objective)]
    pub objective: String,
    /// The framework's French title (or its first one).
    #[schema(min_length = 1)]
    pub title: String,
    /// The framework's English title (or its first one).
    #[schema(min_length = 1)]
    pub title_en: String,
    /// The total for the period (0 when nothing counts).
    #[schema(minimum = 0)]
    pub value: i64,
    /// The framework's baseline for the indicator, or null.
    #[schema(required = true)]
    pub baseline: Option<i64>,
    /// The framework's target for this period, or null.
    #[schema(required = true)]
    pub target: Option<i64>,
    pub breakdowns: Breakdowns,
}

/// One indicator's value for one period.
#[derive(Serialize)]
pub struct IndicatorForPeriod {
    #[serde(flatten)]
    pub indicator: Indicator,
    pub period: String,
}

impl PartialSchema for IndicatorForPeriod {
    fn schema() -> RefOr<Schema> {
        let mut schema = with_property(Indicator::schema(), "period", Ref::from_schema_name(Period::name()));
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.description = Some("One indicator's value for one period.".into());
        }
        schema
    }
}

impl ToSchema for IndicatorForPeriod {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        Indicator::schemas(schemas);
        schemas.push((Period::name().into(), Period::schema()));
    }
}

/// Every indicator of a framework for one period.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorList {
    #[schema(value_type = Period)]
    pub period: String,
    /// Every indicator of the framework, in the framework's order (KE1 ... ND3 for the
    /// default framework).
    pub indicators: Vec<Indicator>,
}

/// The frameworks loaded.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameworkList {
    pub frameworks: Vec<FrameworkEntry>,
}

/// A framework loaded, at its current version.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameworkEntry {
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,63}$")]
    pub id: String,
    /// Titles by language (`fr`, `en`, ...).
    pub title: BTreeMap<String, String>,
    /// The first and the last year of the framework's span.
    #[schema(min_items = 2, max_items = 2)]
    pub years: [i32; 2],
    /// Its strategic objectives, in its order.
    pub objectives: Vec<ObjectiveEntry>,
    /// Whether this is the default framework (the one shown when none is asked for).
    pub default: bool,
    /// The version loaded (1 for the first load).
    #[schema(minimum = 0)]
    pub version: i32,
    pub loaded_at: DateTime<Utc>,
}

/// A strategic objective of a framework.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveEntry {
    #[schema(value_type = Objective)]
    pub code: String,
    /// Titles by language (`fr`, `en`, ...).
    pub title: BTreeMap<String, String>,
}

/// Breakdown values by dimension, then key. Only non-zero values are listed: a missing key
/// means 0. Values of a distinct count need not add up to the total.
#[derive(Serialize, Default)]
#[serde(transparent)]
pub struct Breakdowns(pub BTreeMap<String, BTreeMap<String, i64>>);

impl PartialSchema for Breakdowns {
    fn schema() -> RefOr<Schema> {
        let values = ObjectBuilder::new()
            .property_names(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1))))
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1))));
        ObjectBuilder::new()
            .description(Some(
                "Breakdown values by dimension, then key. Only non-zero values are listed: a missing key means 0. \
                 Values of a distinct count need not add up to the total.",
            ))
            .property_names(Some(Schema::from(Dimension::schema_object())))
            .additional_properties(Some(AdditionalProperties::RefOr(values.into())))
            .into()
    }
}

impl ToSchema for Breakdowns {}

/// An indicator's yearly totals.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Series {
    #[schema(value_type = IndicatorCode)]
    pub code: String,
    /// The total of every year with data (non-zero), oldest first; a missing year means 0.
    pub points: Vec<SeriesPoint>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeriesPoint {
    #[schema(value_type = Year)]
    pub period: String,
    #[schema(minimum = 1)]
    pub value: i64,
}

/// The `data` of a `tally` event of the stream: a total that changed (or is current, at the
/// start of a stream).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tally<'a> {
    /// The framework of the indicator.
    pub framework: &'a str,
    #[schema(value_type = IndicatorCode)]
    pub code: &'a str,
    #[schema(value_type = Period)]
    pub period: &'a str,
    #[schema(minimum = 0)]
    pub value: i64,
}

/// The evidence behind one indicator's total.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    #[schema(value_type = IndicatorCode)]
    pub code: String,
    #[schema(value_type = Period)]
    pub period: String,
    /// The current records that make up the total of the period.
    pub records: Vec<EvidenceRecord>,
}

/// A current record, what it adds to the total and every stored version of it.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRecord {
    pub record_type: RecordType,
    #[schema(schema_with = record_key)]
    pub key: Value,
    pub counted: Counted,
    pub record: Record,
    /// Every stored version, oldest first by (`time`, `source`, `id`).
    #[schema(min_items = 1)]
    pub events: Vec<EvidenceEvent>,
}

/// A record's key: its key fields, strings or integers.
fn record_key() -> RefOr<Schema> {
    let field = ObjectBuilder::new().schema_type(SchemaType::Array(vec![Type::String, Type::Integer]));
    let description = "The record's key fields, e.g. `[\"pub-1\"]`, `[\"facebook\", \"123\", \"likes\"]` (a social \
        post's series) or `[\"ecpat-france\", 2019]`.";
    ArrayBuilder::new().items(field).min_items(Some(1)).description(Some(description)).into()
}

/// What the record adds to the total: an amount to a sum, or the items (members, countries,
/// organisations) it names in a distinct count, which counts each item once however many
/// records name it.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Counted {
    Amount(Amount),
    Items(Items),
}

/// An amount added to a sum.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Amount {
    #[schema(minimum = 0)]
    pub amount: i64,
}

/// The items named in a distinct count.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Items {
    #[schema(schema_with = item_list)]
    pub items: Vec<String>,
}

fn item_list() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)))
        .min_items(Some(1))
        .into()
}

/// A stored event that is a version of the record (for a social post's series: also the
/// post's withdrawals).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEvent {
    /// Storage order.
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(min_length = 1, max_length = 1024)]
    pub source: String,
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = EventType)]
    pub event_type: String,
    /// The event's `time`, in UTC.
    pub time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Whether this event is the record's current version (exactly one per record).
    pub current: bool,
}

/// Stored rejections, newest first.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejections {
    /// How many rejections are stored in all.
    #[schema(minimum = 0)]
    pub total: i64,
    /// The newest ones, newest first.
    pub items: Vec<crate::store::read::RejectionRow>,
}

/// Declares a schema that the code holds as plain text: a unit type whose schema is `$schema`.
macro_rules! text_schema {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl $name {
            fn schema_object() -> utoipa::openapi::schema::Object {
                $schema
            }
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Self::schema_object().into()
            }
        }

        impl ToSchema for $name {}
    };
}

text_schema!(
    /// `all`, a calendar year from 1990 to 2100, or a framework's span (`indicators::Period`).
    Period => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^(all|199[0-9]|20[0-9]{2}|2100|[0-9]{4}-[0-9]{4})$"))
        .description(Some(
            "`all` (every record once, whatever its year), a calendar year from 1990 to 2100, or the framework's \
             span `FIRST-LAST` (the records of its years, a distinct item once).",
        ))
        .build()
);

text_schema!(
    /// A calendar year from 1990 to 2100.
    Year => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^(199[0-9]|20[0-9]{2}|2100)$"))
        .description(Some("A calendar year from 1990 to 2100."))
        .build()
);

text_schema!(
    /// An indicator's code in its framework.
    IndicatorCode => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Z][A-Z0-9_]{0,15}$"))
        .description(Some("An indicator's code in its framework, e.g. `KE1`."))
        .build()
);

text_schema!(
    /// A strategic objective's code in its framework.
    Objective => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z][a-z0-9_]{0,63}$"))
        .description(Some("A strategic objective's code in its framework, e.g. `knowledge_evidence`."))
        .build()
);

text_schema!(
    /// A breakdown's name.
    Dimension => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z][a-z0-9_]{0,63}$"))
        .description(Some("A breakdown's name, as the framework names it (docs/frameworks.md)."))
        .build()
);

text_schema!(
    /// The OpenAPI document itself.
    OpenApiDocument => ObjectBuilder::new()
        .description(Some("This document."))
        .property("openapi", ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["3.1.0"])))
        .required("openapi")
        .required("info")
        .required("paths")
        .build()
);

/// The schemas that the derives do not reach through the answers, for the document's
/// components.
pub fn extra_schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut schemas = vec![(Dimension::name().into(), Dimension::schema()), (Tally::name().into(), Tally::schema())];
    Tally::schemas(&mut schemas);
    schemas
}
