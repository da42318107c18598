//! From an event's `type` and `data` to the changes it makes (docs/events.md).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;

use serde_json::Value;

use super::fields::{
    Fields, boolean, country, date, error, free_text, identifier, integer, is_slug, member, one_of, platform, quote,
    short_text, slug, timestamp,
};
use super::*;

/// The largest metric total accepted.
const MAX_METRIC: i64 = 1_000_000_000_000;

/// The largest fact value accepted.
const MAX_FACT_VALUE: i64 = 1_000_000_000_000;

/// The most characters an attribute of a fact may have.
const MAX_ATTRIBUTE: usize = 200;

type Result<T> = std::result::Result<T, FieldError>;

/// Validates `data` for `event_type` and returns the changes the event makes.
pub fn parse_event_data(event_type: EventType, data: &Value) -> Result<Vec<Change>> {
    let f = Fields::object(data, "data")?;
    let record = match event_type {
        EventType::SocialSnapshot => return social_snapshot(&f),
        EventType::Withdrawal => return withdrawal(&f).map(|change| vec![change]),
        EventType::Publication => Record::Publication(publication(&f)?),
        EventType::UnSubmission => Record::UnSubmission(UnSubmission {
            submission_id: f.req("submission_id", identifier)?,
            mechanism: f.req("mechanism", one_of)?,
            country: f.req("country", country)?,
            submitted_on: f.req("submitted_on", date)?,
            cycle: f.opt("cycle", free_text)?,
            in_alliance: f.req("in_alliance", boolean)?,
            members: f.req_list("members", 1, member)?,
            document: f.opt("document", free_text)?,
        }),
        EventType::UnRecommendation => Record::UnRecommendation(UnRecommendation {
            recommendation_id: f.req("recommendation_id", identifier)?,
            mechanism: f.req("mechanism", one_of)?,
            country: f.req("country", country)?,
            taken_up: f.req("taken_up", boolean)?,
            document: f.opt("document", free_text)?,
            paragraph: f.opt("paragraph", paragraph)?,
            decided_on: f.req("decided_on", date)?,
        }),
        EventType::MediaStory => Record::MediaStory(MediaStory {
            story_id: f.req("story_id", identifier)?,
            member: f.req("member", member)?,
            outlet: f.req("outlet", free_text)?,
            global_advocacy: f.req("global_advocacy", boolean)?,
            published_on: f.req("published_on", date)?,
            url: f.opt("url", free_text)?,
        }),
        EventType::AdvocacyInitiative => Record::AdvocacyInitiative(AdvocacyInitiative {
            initiative_id: f.req("initiative_id", identifier)?,
            title: f.req("title", free_text)?,
            private_sector_engagement: f.req("private_sector_engagement", one_of)?,
            partners: f.list("partners", 0, free_text)?,
            started_on: f.req("started_on", date)?,
        }),
        EventType::SurvivorParticipation => Record::SurvivorParticipation(SurvivorParticipation {
            participation_id: f.req("participation_id", identifier)?,
            country: f.req("country", country)?,
            activity: f.req("activity", one_of)?,
            date: f.req("date", date)?,
        }),
        EventType::ChildOutreach => Record::ChildOutreach(ChildOutreach {
            outreach_id: f.req("outreach_id", identifier)?,
            organisation: f.req("organisation", member)?,
            organisation_kind: f.req("organisation_kind", one_of)?,
            channel: f.req("channel", one_of)?,
            regular: f.req("regular", boolean)?,
            date: f.req("date", date)?,
        }),
        EventType::CapacityTraining => Record::CapacityTraining(CapacityTraining {
            training_id: f.req("training_id", identifier)?,
            title: f.req("title", free_text)?,
            held_on: f.req("held_on", date)?,
            beneficiaries: f.req_list("beneficiaries", 1, member)?,
        }),
        EventType::MemberExpertise => Record::MemberExpertise(MemberExpertise {
            member: f.req("member", member)?,
            year: f.req("year", year)?,
            manifestations: f.req_list("manifestations", 0, one_of)?,
        }),
        EventType::Fact => Record::Fact(fact(&f)?),
    };
    Ok(vec![Change::Upsert(record)])
}

fn year(value: &Value, path: &(impl Display + ?Sized)) -> Result<i32> {
    integer(value, path, 1990, 2100).map(|y| y as i32)
}

/// A paragraph reference: an identifier string or a non-negative integer.
fn paragraph(value: &Value, path: &(impl Display + ?Sized)) -> Result<Value> {
    match value {
        Value::Number(_) => integer(value, path, 0, i64::MAX).map(Value::from),
        _ => identifier(value, path).map(Value::String),
    }
}

fn publication(f: &Fields) -> Result<Publication> {
    let scope: Scope = f.req("scope", one_of)?;
    let min_countries = usize::from(scope == Scope::National);
    Ok(Publication {
        publication_id: f.req("publication_id", identifier)?,
        title: f.req("title", free_text)?,
        scope,
        countries: f.list("countries", min_countries, country)?,
        themes: f.list("themes", 0, one_of)?,
        contributed: f.req("contributed", boolean)?,
        published_on: f.req("published_on", date)?,
        doi: f.opt("doi", free_text)?,
        url: f.opt("url", free_text)?,
    })
}

fn fact(f: &Fields) -> Result<Fact> {
    Ok(Fact {
        fact_id: f.req("fact_id", identifier)?,
        kind: f.req("kind", |v, p| slug(v, p, "a kind"))?,
        date: f.req("date", date)?,
        member: f.opt("member", member)?,
        countries: once_each(f.list("countries", 0, country)?),
        value: f.opt("value", |v, p| integer(v, p, 0, MAX_FACT_VALUE))?.unwrap_or(1),
        tags: once_each(f.list("tags", 0, |v, p| slug(v, p, "a tag"))?),
        attributes: f.opt("attributes", attributes)?,
    })
}

/// The items of a list, each once, in their first order.
fn once_each(mut items: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(items.len());
    items.retain(|item| seen.insert(item.clone()));
    items
}

/// A fact's attributes: an object whose names are slugs and whose values are texts of at
/// most 200 characters.
fn attributes(value: &Value, path: &(impl Display + ?Sized)) -> Result<BTreeMap<String, String>> {
    let fields = Fields::object(value, &path.to_string())?;
    let mut out = BTreeMap::new();
    for (name, text) in fields.entries() {
        let at = fields.path(&field_name(name));
        if !is_slug(name) {
            return Err(error(&at, format!("{} is not an attribute name (^[a-z][a-z0-9_]{{0,63}}$)", quote(name))));
        }
        out.insert(name.clone(), short_text(text, &at, MAX_ATTRIBUTE)?);
    }
    Ok(out)
}

/// A snapshot gives one version per metric it carries.
fn social_snapshot(f: &Fields) -> Result<Vec<Change>> {
    let platform = f.req("platform", platform)?;
    let post_id = f.req("post_id", identifier)?;
    let member = f.req("member", member)?;
    let published_at = f.req("published_at", timestamp)?;
    let publication_id = f.opt("publication_id", identifier)?;
    let url = f.opt("url", free_text)?;
    let metrics_path = f.path("metrics");
    let metrics = f
        .get("metrics")
        .ok_or_else(|| error(&metrics_path, "is required".into()))
        .and_then(|v| Fields::object(v, &metrics_path))?;
    let mut changes = Vec::new();
    for &metric in Metric::ALL {
        if let Some(value) = metrics.opt(metric.as_str(), |v, p| integer(v, p, 0, MAX_METRIC))? {
            changes.push(Change::Upsert(Record::SocialPost(SocialSeries {
                platform: platform.clone(),
                post_id: post_id.clone(),
                metric,
                value,
                member: member.clone(),
                published_at,
                publication_id: publication_id.clone(),
                url: url.clone(),
            })));
        }
    }
    if changes.is_empty() {
        let known: Vec<&str> = Metric::ALL.iter().map(|m| m.as_str()).collect();
        return Err(error(&metrics_path, format!("must have at least one of {}", known.join(", "))));
    }
    Ok(changes)
}

/// A withdrawal names a record by its type and key fields.
fn withdrawal(f: &Fields) -> Result<Change> {
    let record_type: RecordType = f.req("record_type", one_of)?;
    let key_path = f.path("key");
    let key = f
        .get("key")
        .ok_or_else(|| error(&key_path, "is required".into()))
        .and_then(|v| Fields::object(v, &key_path))?;
    let expected = key_fields(record_type);
    if let Some(extra) = key.names().find(|name| !expected.contains(&name.as_str())) {
        return Err(error(
            &key.path(&field_name(extra)),
            format!("is not a key field of {} (expected {})", record_type.as_str(), expected.join(", ")),
        ));
    }
    let parts: Vec<Value> = match record_type {
        RecordType::SocialPost => {
            return Ok(Change::WithdrawPost(post_key(
                &key.req("platform", platform)?,
                &key.req("post_id", identifier)?,
            )));
        }
        RecordType::MemberExpertise => vec![key.req("member", member)?.into(), key.req("year", year)?.into()],
        _ => vec![key.req(expected[0], identifier)?.into()],
    };
    Ok(Change::Withdraw(RecordKey { record_type, key: key_text(&parts) }))
}

/// The key fields of a kind of record, as a withdrawal names them (docs/events.md).
pub fn key_fields(record_type: RecordType) -> &'static [&'static str] {
    match record_type {
        RecordType::SocialPost => &["platform", "post_id"],
        RecordType::Publication => &["publication_id"],
        RecordType::UnSubmission => &["submission_id"],
        RecordType::UnRecommendation => &["recommendation_id"],
        RecordType::MediaStory => &["story_id"],
        RecordType::AdvocacyInitiative => &["initiative_id"],
        RecordType::SurvivorParticipation => &["participation_id"],
        RecordType::ChildOutreach => &["outreach_id"],
        RecordType::CapacityTraining => &["training_id"],
        RecordType::MemberExpertise => &["member", "year"],
        RecordType::Fact => &["fact_id"],
    }
}

/// A field name for an error's path: as is when plain, else quoted (escaped, cut short).
fn field_name(name: &str) -> String {
    let plain = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { name.to_owned() } else { quote(name) }
}

/// The error for an event `type` that is not one of ours.
pub fn unknown_type(text: &str) -> String {
    format!("type {} is not a known event type", quote(text))
}
