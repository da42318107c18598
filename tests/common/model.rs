//! A brute-force model of docs/events.md and docs/indicators.md, written independently of the crate: from the
//! arrival sequence of (valid) events straight to every indicator value.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

/// (indicator, period, dimension, key) -> value, non-zero values only.
pub type Values = BTreeMap<(String, String, String, String), i64>;

/// (the instant to the second, every fractional digit of `time` padded to one width,
/// `source`, `id`): RFC 3339 allows any number of fractional digits, and all of them count.
type Version = (i64, String, String, String);

/// (record_type, key fields).
type RecordId = (String, Vec<String>);

fn version(event: &Value) -> Version {
    let text = event["time"].as_str().unwrap();
    let (whole, fraction) = match text.split_once('.') {
        Some((head, tail)) => {
            let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
            (format!("{head}{}", &tail[digits..]), &tail[..digits])
        }
        None => (text.to_owned(), ""),
    };
    let secs = DateTime::parse_from_rfc3339(&whole).unwrap().timestamp();
    assert!(fraction.len() <= 64, "model: fraction too long in {text}");
    (secs, format!("{fraction:0<64}"), s(&event["source"]), s(&event["id"]))
}

fn s(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn year_of_date(v: &Value) -> String {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap().year().to_string()
}

fn record_type_of(event_type: &str) -> &'static str {
    match event_type {
        "org.ecpat.social.metrics.snapshot" => "social_post",
        "org.ecpat.research.publication.recorded" => "publication",
        "org.ecpat.un.submission.recorded" => "un_submission",
        "org.ecpat.un.recommendation.outcome" => "un_recommendation",
        "org.ecpat.media.story.recorded" => "media_story",
        "org.ecpat.advocacy.initiative.recorded" => "advocacy_initiative",
        "org.ecpat.survivors.participation.recorded" => "survivor_participation",
        "org.ecpat.children.outreach.recorded" => "child_outreach",
        "org.ecpat.capacity.training.recorded" => "capacity_training",
        "org.ecpat.member.expertise.assessed" => "member_expertise",
        "org.ecpat.fact.recorded" => "fact",
        other => panic!("model: unexpected type {other}"),
    }
}

fn key_of(record_type: &str, d: &Value) -> Vec<String> {
    let fields: &[&str] = match record_type {
        "social_post" => &["platform", "post_id"],
        "publication" => &["publication_id"],
        "un_submission" => &["submission_id"],
        "un_recommendation" => &["recommendation_id"],
        "media_story" => &["story_id"],
        "advocacy_initiative" => &["initiative_id"],
        "survivor_participation" => &["participation_id"],
        "child_outreach" => &["outreach_id"],
        "capacity_training" => &["training_id"],
        "fact" => &["fact_id"],
        _ => &["member", "year"],
    };
    fields.iter().map(|f| s(&d[*f])).collect()
}

/// The current records: (record_type, key) -> data, for social posts one entry per series
/// with key [platform, post_id, metric], the metric's value under `data["value"]` (from the
/// series' latest version) and the post's attributes from its latest snapshot, whichever
/// metrics that one carries.
pub fn current_records(arrivals: &[Value]) -> BTreeMap<(String, Vec<String>), Value> {
    let mut seen = HashSet::new();
    let events: Vec<&Value> = arrivals.iter().filter(|e| seen.insert((s(&e["source"]), s(&e["id"])))).collect();
    // Every version of every key, None for withdrawals.
    let mut versions: HashMap<RecordId, Vec<(Version, Option<Value>)>> = HashMap::new();
    let mut post_withdrawals: HashMap<Vec<String>, Vec<Version>> = HashMap::new();
    // Each post's latest snapshot, whatever metrics it carries: the post's attributes.
    let mut latest_snapshots: HashMap<Vec<String>, (Version, Value)> = HashMap::new();
    for event in &events {
        let v = version(event);
        let d = &event["data"];
        let event_type = event["type"].as_str().unwrap();
        if event_type == "org.ecpat.record.withdrawn" {
            let record_type = s(&d["record_type"]);
            let key = key_of(&record_type, &d["key"]);
            if record_type == "social_post" {
                post_withdrawals.entry(key).or_default().push(v);
            } else {
                versions.entry((record_type, key)).or_default().push((v, None));
            }
            continue;
        }
        let record_type = record_type_of(event_type);
        let key = key_of(record_type, d);
        if record_type == "social_post" {
            let latest = latest_snapshots.entry(key.clone()).or_insert_with(|| (v.clone(), d.clone()));
            if latest.0 < v {
                *latest = (v.clone(), d.clone());
            }
            for (metric, value) in d["metrics"].as_object().unwrap() {
                let mut series = d.clone();
                series["metric"] = Value::from(metric.as_str());
                series["value"] = value.clone();
                let mut series_key = key.clone();
                series_key.push(metric.clone());
                versions.entry((record_type.to_owned(), series_key)).or_default().push((v.clone(), Some(series)));
            }
        } else {
            versions.entry((record_type.to_owned(), key)).or_default().push((v, Some(d.clone())));
        }
    }
    let mut current = BTreeMap::new();
    for ((record_type, key), mut list) in versions {
        if record_type == "social_post" {
            for w in post_withdrawals.get(&key[..2]).into_iter().flatten() {
                list.push((w.clone(), None));
            }
        }
        let latest = list.into_iter().max_by(|a, b| a.0.cmp(&b.0)).unwrap();
        if let Some(mut data) = latest.1 {
            if record_type == "social_post" {
                let attributes = &latest_snapshots[&key[..2]].1;
                for field in ["member", "published_at", "publication_id", "url"] {
                    data[field] = attributes.get(field).cloned().unwrap_or(Value::Null);
                }
            }
            current.insert((record_type, key), data);
        }
    }
    current
}

/// Counts per tally: sums, and distinct item sets.
#[derive(Default)]
struct Acc {
    sums: BTreeMap<(String, String, String, String), i64>,
    sets: BTreeMap<(String, String, String, String), BTreeSet<String>>,
}

impl Acc {
    /// The record's year, `all`, and the default framework's span when the year is in it.
    fn periods(year: &str) -> Vec<String> {
        let mut periods = vec![year.to_owned(), "all".to_owned()];
        if ("2018"..="2021").contains(&year) {
            periods.push("2018-2021".to_owned());
        }
        periods
    }

    fn add(&mut self, code: &str, year: &str, dim: &str, key: &str, amount: i64) {
        for p in Self::periods(year) {
            *self.sums.entry((code.into(), p, dim.into(), key.into())).or_default() += amount;
        }
    }

    fn item(&mut self, code: &str, year: &str, dim: &str, key: &str, item: &str) {
        for p in Self::periods(year) {
            self.sets.entry((code.into(), p, dim.into(), key.into())).or_default().insert(item.into());
        }
    }
}

/// Every indicator value the counting rules give for this arrival sequence.
pub fn values(arrivals: &[Value]) -> Values {
    let mut acc = Acc::default();
    for ((record_type, _), d) in current_records(arrivals) {
        match record_type.as_str() {
            "social_post" => {
                let published =
                    DateTime::parse_from_rfc3339(d["published_at"].as_str().unwrap()).unwrap().with_timezone(&Utc);
                let year = published.year().to_string();
                let (metric, platform, member) = (s(&d["metric"]), s(&d["platform"]), s(&d["member"]));
                if d.get("publication_id").is_some_and(|p| !p.is_null())
                    && ["likes", "shares", "clicks", "stories"].contains(&metric.as_str())
                {
                    let value = d["value"].as_i64().unwrap();
                    acc.add("KE3", &year, "", "", value);
                    acc.add("KE3", &year, "metric", &metric, value);
                    acc.add("KE3", &year, "platform", &platform, value);
                }
                acc.item("AP3", &year, "", "", &member);
                acc.item("AP3", &year, "platform", &platform, &member);
            }
            "publication" => {
                let year = year_of_date(&d["published_on"]);
                let scope = s(&d["scope"]);
                if (scope == "global" || scope == "thematic") && d["contributed"] == true {
                    acc.add("KE1", &year, "", "", 1);
                    acc.add("KE1", &year, "scope", &scope, 1);
                }
                if scope == "national" {
                    acc.add("KE2", &year, "", "", 1);
                    let countries: BTreeSet<String> =
                        d["countries"].as_array().unwrap().iter().map(|c| s(c).to_uppercase()).collect();
                    for c in countries {
                        acc.add("KE2", &year, "country", &c, 1);
                    }
                }
                let themes = d.get("themes").and_then(Value::as_array).cloned().unwrap_or_default();
                if themes.iter().any(|t| t == "access_to_justice") {
                    acc.add("CV3", &year, "", "", 1);
                    acc.add("CV3", &year, "scope", &scope, 1);
                }
            }
            "un_recommendation" => {
                if d["taken_up"] == true {
                    let year = year_of_date(&d["decided_on"]);
                    acc.add("AP1", &year, "", "", 1);
                    acc.add("AP1", &year, "mechanism", &s(&d["mechanism"]), 1);
                }
            }
            "media_story" => {
                if d["global_advocacy"] == true {
                    acc.item("AP2", &year_of_date(&d["published_on"]), "", "", &s(&d["member"]));
                }
            }
            "advocacy_initiative" => {
                if d["private_sector_engagement"] == "significant" {
                    acc.add("AP4", &year_of_date(&d["started_on"]), "", "", 1);
                }
            }
            "survivor_participation" => {
                let (year, country) = (year_of_date(&d["date"]), s(&d["country"]).to_uppercase());
                acc.item("CV1", &year, "", "", &country);
                acc.item("CV1", &year, "activity", &s(&d["activity"]), &country);
            }
            "child_outreach" => {
                if d["regular"] == true {
                    let (year, org) = (year_of_date(&d["date"]), s(&d["organisation"]));
                    acc.item("CV2", &year, "", "", &org);
                    acc.item("CV2", &year, "channel", &s(&d["channel"]), &org);
                    acc.item("CV2", &year, "organisation_kind", &s(&d["organisation_kind"]), &org);
                }
            }
            "un_submission" => {
                let (year, country) = (year_of_date(&d["submitted_on"]), s(&d["country"]).to_uppercase());
                let mechanism = s(&d["mechanism"]);
                let global = ["upr", "crc", "un_special_procedures", "un_other"].contains(&mechanism.as_str());
                acc.item("ND1", &year, "", "", &country);
                acc.item("ND1", &year, "level", if global { "global" } else { "regional" }, &country);
            }
            "capacity_training" => {
                let year = year_of_date(&d["held_on"]);
                for m in d["beneficiaries"].as_array().unwrap() {
                    acc.item("ND2", &year, "", "", &s(m));
                }
            }
            "member_expertise" => {
                let distinct: BTreeSet<String> = d["manifestations"].as_array().unwrap().iter().map(s).collect();
                if distinct.len() >= 3 {
                    acc.item("ND3", &s(&d["year"]), "", "", &s(&d["member"]));
                }
            }
            // Facts count in no indicator of the default framework.
            "fact" => {}
            other => panic!("model: unexpected record type {other}"),
        }
    }
    let mut out: Values = acc.sums;
    for (key, set) in acc.sets {
        out.insert(key, set.len() as i64);
    }
    out.retain(|_, v| *v != 0);
    out
}
