//! The fields a framework can name, per record type (docs/frameworks.md): each with its
//! kind and how to read it from a record. Lists are read without duplicates, in order.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::records::{Record, RecordType};

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Int,
    Bool,
    Date,
    Timestamp,
    List,
    /// Texts by name (a fact's `attributes`): a breakdown or a distinct count names one
    /// entry, `attributes.KEY`.
    Map,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Int => "integer",
            Kind::Bool => "boolean",
            Kind::Date => "date",
            Kind::Timestamp => "timestamp",
            Kind::List => "list",
            Kind::Map => "map",
        }
    }
}

/// A field's value in one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    Date(NaiveDate),
    Timestamp(DateTime<Utc>),
    List(Vec<&'a str>),
    Map(&'a BTreeMap<String, String>),
}

/// A field of a record type.
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub get: for<'a> fn(&'a Record) -> Value<'a>,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.kind.as_str())
    }
}

/// A field, or one entry of a map field (`attributes.region`): what a breakdown or a
/// distinct count reads.
#[derive(Debug)]
pub struct FieldPath {
    pub field: &'static Field,
    /// The entry's name, for an entry of a map field.
    pub entry: Option<String>,
}

impl FieldPath {
    /// The whole field.
    pub fn whole(field: &'static Field) -> FieldPath {
        FieldPath { field, entry: None }
    }

    /// The value in `record`; for an entry, its text, or null when the record has no such
    /// entry (or no map).
    pub fn get<'a>(&self, record: &'a Record) -> Value<'a> {
        let value = (self.field.get)(record);
        match (&self.entry, value) {
            (None, value) => value,
            (Some(entry), Value::Map(map)) => map.get(entry).map_or(Value::Null, |t| text(t)),
            (Some(_), _) => Value::Null,
        }
    }
}

fn text(s: &str) -> Value<'_> {
    Value::Text(Cow::Borrowed(s))
}

fn optional(s: &Option<String>) -> Value<'_> {
    s.as_deref().map_or(Value::Null, text)
}

/// The items of a list, each once, in order.
fn list<'a>(items: impl Iterator<Item = &'a str>) -> Value<'a> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Value::List(out)
}

/// The fields of `$variant`: `name kind |record| value`.
macro_rules! fields {
    ($variant:ident: $($name:literal $kind:ident |$r:ident| $body:expr),+ $(,)?) => {
        &[$(Field {
            name: $name,
            kind: Kind::$kind,
            get: |record| match record {
                Record::$variant($r) => $body,
                _ => Value::Null,
            },
        }),+]
    };
}

const SOCIAL_POST: &[Field] = fields!(SocialPost:
    "platform" Text |s| text(&s.platform),
    "post_id" Text |s| text(&s.post_id),
    "post" Text |s| Value::Text(Cow::Owned(format!("{}:{}", s.platform, s.post_id))),
    "metric" Text |s| text(s.metric.as_str()),
    "value" Int |s| Value::Int(s.value),
    "member" Text |s| text(&s.member),
    "published_at" Timestamp |s| Value::Timestamp(s.published_at),
    "publication_id" Text |s| optional(&s.publication_id),
    "url" Text |s| optional(&s.url),
);

const PUBLICATION: &[Field] = fields!(Publication:
    "publication_id" Text |p| text(&p.publication_id),
    "title" Text |p| text(&p.title),
    "scope" Text |p| text(p.scope.as_str()),
    "countries" List |p| list(p.countries.iter().map(String::as_str)),
    "themes" List |p| list(p.themes.iter().map(|t| t.as_str())),
    "contributed" Bool |p| Value::Bool(p.contributed),
    "published_on" Date |p| Value::Date(p.published_on),
    "doi" Text |p| optional(&p.doi),
    "url" Text |p| optional(&p.url),
);

const UN_SUBMISSION: &[Field] = fields!(UnSubmission:
    "submission_id" Text |s| text(&s.submission_id),
    "mechanism" Text |s| text(s.mechanism.as_str()),
    "level" Text |s| text(s.mechanism.level()),
    "country" Text |s| text(&s.country),
    "submitted_on" Date |s| Value::Date(s.submitted_on),
    "cycle" Text |s| optional(&s.cycle),
    "in_alliance" Bool |s| Value::Bool(s.in_alliance),
    "members" List |s| list(s.members.iter().map(String::as_str)),
    "document" Text |s| optional(&s.document),
);

const UN_RECOMMENDATION: &[Field] = fields!(UnRecommendation:
    "recommendation_id" Text |r| text(&r.recommendation_id),
    "mechanism" Text |r| text(r.mechanism.as_str()),
    "country" Text |r| text(&r.country),
    "taken_up" Bool |r| Value::Bool(r.taken_up),
    "document" Text |r| optional(&r.document),
    "paragraph" Text |r| match &r.paragraph {
        Some(serde_json::Value::String(s)) => text(s),
        Some(serde_json::Value::Number(n)) => Value::Text(Cow::Owned(n.to_string())),
        _ => Value::Null,
    },
    "decided_on" Date |r| Value::Date(r.decided_on),
);

const MEDIA_STORY: &[Field] = fields!(MediaStory:
    "story_id" Text |s| text(&s.story_id),
    "member" Text |s| text(&s.member),
    "outlet" Text |s| text(&s.outlet),
    "global_advocacy" Bool |s| Value::Bool(s.global_advocacy),
    "published_on" Date |s| Value::Date(s.published_on),
    "url" Text |s| optional(&s.url),
);

const ADVOCACY_INITIATIVE: &[Field] = fields!(AdvocacyInitiative:
    "initiative_id" Text |i| text(&i.initiative_id),
    "title" Text |i| text(&i.title),
    "private_sector_engagement" Text |i| text(i.private_sector_engagement.as_str()),
    "partners" List |i| list(i.partners.iter().map(String::as_str)),
    "started_on" Date |i| Value::Date(i.started_on),
);

const SURVIVOR_PARTICIPATION: &[Field] = fields!(SurvivorParticipation:
    "participation_id" Text |p| text(&p.participation_id),
    "country" Text |p| text(&p.country),
    "activity" Text |p| text(p.activity.as_str()),
    "date" Date |p| Value::Date(p.date),
);

const CHILD_OUTREACH: &[Field] = fields!(ChildOutreach:
    "outreach_id" Text |o| text(&o.outreach_id),
    "organisation" Text |o| text(&o.organisation),
    "organisation_kind" Text |o| text(o.organisation_kind.as_str()),
    "channel" Text |o| text(o.channel.as_str()),
    "regular" Bool |o| Value::Bool(o.regular),
    "date" Date |o| Value::Date(o.date),
);

const CAPACITY_TRAINING: &[Field] = fields!(CapacityTraining:
    "training_id" Text |t| text(&t.training_id),
    "title" Text |t| text(&t.title),
    "held_on" Date |t| Value::Date(t.held_on),
    "beneficiaries" List |t| list(t.beneficiaries.iter().map(String::as_str)),
);

const MEMBER_EXPERTISE: &[Field] = fields!(MemberExpertise:
    "member" Text |e| text(&e.member),
    "year" Int |e| Value::Int(i64::from(e.year)),
    "manifestations" List |e| list(e.manifestations.iter().map(|m| m.as_str())),
);

const FACT: &[Field] = fields!(Fact:
    "fact_id" Text |f| text(&f.fact_id),
    "kind" Text |f| text(&f.kind),
    "date" Date |f| Value::Date(f.date),
    "member" Text |f| optional(&f.member),
    // A fact's lists hold each item once already (records/parse.rs).
    "countries" List |f| Value::List(f.countries.iter().map(String::as_str).collect()),
    "value" Int |f| Value::Int(f.value),
    "tags" List |f| Value::List(f.tags.iter().map(String::as_str).collect()),
    "attributes" Map |f| f.attributes.as_ref().map_or(Value::Null, Value::Map),
);

/// Every field of a record type.
pub fn of(record_type: RecordType) -> &'static [Field] {
    match record_type {
        RecordType::SocialPost => SOCIAL_POST,
        RecordType::Publication => PUBLICATION,
        RecordType::UnSubmission => UN_SUBMISSION,
        RecordType::UnRecommendation => UN_RECOMMENDATION,
        RecordType::MediaStory => MEDIA_STORY,
        RecordType::AdvocacyInitiative => ADVOCACY_INITIATIVE,
        RecordType::SurvivorParticipation => SURVIVOR_PARTICIPATION,
        RecordType::ChildOutreach => CHILD_OUTREACH,
        RecordType::CapacityTraining => CAPACITY_TRAINING,
        RecordType::MemberExpertise => MEMBER_EXPERTISE,
        RecordType::Fact => FACT,
    }
}

/// The field `name` of a record type.
pub fn find(record_type: RecordType, name: &str) -> Option<&'static Field> {
    of(record_type).iter().find(|f| f.name == name)
}
