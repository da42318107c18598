//! Frameworks: strategic indicators as data (docs/frameworks.md). A framework is a TOML
//! document of objectives and indicators; each indicator counts the records of one type
//! that pass its `when`, by their date's year, with breakdowns. It is read and checked
//! once ([`document::parse`]) and then evaluated per record.

pub mod document;
pub mod fields;
pub mod when;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};

use chrono::{DateTime, Datelike, Utc};

use crate::indicators::rules::{ContributionRef, KeyRef, PeriodRef};
use crate::records::{Record, RecordType};
use fields::{Field, FieldPath, Value};
use when::When;

/// The framework shipped with the product, the ECPAT network's 2018-2021 strategy: the
/// default framework, which `indicator_values` and the API show unless told otherwise.
pub const DEFAULT_TEXT: &str = include_str!("../../frameworks/ecpat-2018-2021.toml");
/// The default framework's id.
pub const DEFAULT_ID: &str = "ecpat-2018-2021";

/// The default framework as shipped, compiled.
pub fn default() -> &'static Framework {
    &BUILT_IN.loaded[0].framework
}

static BUILT_IN: LazyLock<Frameworks> = LazyLock::new(|| Frameworks {
    generation: 0,
    loaded: vec![Loaded {
        framework: document::parse(DEFAULT_TEXT).expect("the shipped framework is valid"),
        version: 0,
        loaded_at: DateTime::UNIX_EPOCH,
        sha256: String::new(),
    }],
});

/// The shipped default framework alone, as if it were the only one loaded (for counting
/// without a database).
pub fn built_in() -> &'static Frameworks {
    &BUILT_IN
}

/// A framework as stored: its current version.
#[derive(Debug)]
pub struct Loaded {
    pub framework: Framework,
    pub version: i32,
    pub loaded_at: DateTime<Utc>,
    pub sha256: String,
}

/// Every framework loaded in the database, as of `generation`: what a batch counts by.
#[derive(Debug)]
pub struct Frameworks {
    pub generation: i64,
    /// By id.
    pub loaded: Vec<Loaded>,
}

impl Frameworks {
    /// The framework `id`.
    pub fn get(&self, id: &str) -> Option<&Loaded> {
        self.loaded.iter().find(|l| l.framework.id == id)
    }

    /// Appends what a current record contributes to every framework to `out`, as the
    /// store counts it: distinct items only under their year (under `all` and the span the
    /// store derives them from the years, `store::tallies`). Each contribution once or more
    /// (sort and deduplicate to count each once).
    pub(crate) fn counted_into<'a>(&'a self, record: &'a Record, out: &mut Vec<ContributionRef<'a>>) {
        for loaded in &self.loaded {
            loaded.framework.contributions_by(record, Items::Yearly, out);
        }
    }
}

/// The frameworks last read from the database, by any batch or request of this process.
static CACHE: Mutex<Option<Arc<Frameworks>>> = Mutex::new(None);

/// The frameworks of `generation`, if they are the ones last read.
pub fn cached(generation: i64) -> Option<Arc<Frameworks>> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.as_ref().filter(|f| f.generation == generation).cloned()
}

/// Keeps `frameworks` as the ones last read.
pub fn remember(frameworks: Arc<Frameworks>) {
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some(frameworks);
}

/// Titles by language (`fr`, `en`, ...).
pub type Title = BTreeMap<String, String>;

/// A title in `language`, else in French, else the first.
pub fn title(titles: &Title, language: &str) -> String {
    titles.get(language).or_else(|| titles.get("fr")).or_else(|| titles.values().next()).cloned().unwrap_or_default()
}

#[derive(Debug)]
pub struct Objective {
    pub code: String,
    pub title: Title,
}

/// What an indicator adds up for each record that counts.
#[derive(Debug)]
pub enum ValueRule {
    /// One per record.
    Count,
    /// The field's integer (null adds 0).
    Sum(&'static Field),
    /// Each distinct value (or list item) once.
    Distinct(FieldPath),
}

#[derive(Debug)]
pub struct Breakdown {
    /// The dimension's name.
    pub name: String,
    pub field: FieldPath,
}

#[derive(Debug)]
pub struct Indicator {
    pub code: String,
    pub objective: String,
    pub title: Title,
    pub record: RecordType,
    pub when: Option<When>,
    pub value: ValueRule,
    pub date: &'static Field,
    pub breakdowns: Vec<Breakdown>,
    pub baseline: Option<i64>,
    pub targets: BTreeMap<String, i64>,
}

#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub title: Title,
    /// First and last year.
    pub years: (i32, i32),
    pub objectives: Vec<Objective>,
    /// In document order.
    pub indicators: Vec<Indicator>,
    /// The indicators of each record type, by index into `indicators`.
    by_type: BTreeMap<RecordType, Vec<usize>>,
}

impl Framework {
    pub(crate) fn new(
        id: String,
        title: Title,
        years: (i32, i32),
        objectives: Vec<Objective>,
        indicators: Vec<Indicator>,
    ) -> Framework {
        let mut by_type: BTreeMap<RecordType, Vec<usize>> = BTreeMap::new();
        for (i, indicator) in indicators.iter().enumerate() {
            by_type.entry(indicator.record).or_default().push(i);
        }
        Framework { id, title, years, objectives, indicators, by_type }
    }

    /// Everything a current record contributes to this framework's indicators.
    pub fn contributions(&self, record: &Record) -> std::collections::BTreeSet<crate::indicators::rules::Contribution> {
        let mut out = Vec::new();
        self.contributions_into(record, &mut out);
        out.into_iter().map(ContributionRef::owned).collect()
    }

    /// The indicator with `code`.
    pub fn indicator(&self, code: &str) -> Option<&Indicator> {
        self.indicators.iter().find(|i| i.code == code)
    }

    /// Appends what a current record contributes to `out`, each contribution once or more
    /// (sort and deduplicate to count each once).
    pub(crate) fn contributions_into<'a>(&'a self, record: &'a Record, out: &mut Vec<ContributionRef<'a>>) {
        self.contributions_by(record, Items::EveryPeriod, out);
    }

    fn contributions_by<'a>(&'a self, record: &'a Record, items: Items, out: &mut Vec<ContributionRef<'a>>) {
        let Some(indicators) = self.by_type.get(&record.record_type()) else { return };
        for &i in indicators {
            self.indicators[i].contributions_into(&self.id, self.years, record, items, out);
        }
    }
}

/// An indicator whose `when` fails on current records: how many, and the first one's key
/// and error.
#[derive(Debug, PartialEq, Eq)]
pub struct WhenFailures {
    pub indicator: String,
    pub records: usize,
    pub first_key: String,
    pub first_error: String,
}

impl Framework {
    /// The record types that some indicator's `when` reads.
    pub fn types_with_when(&self) -> Vec<RecordType> {
        self.by_type
            .iter()
            .filter(|(_, indicators)| indicators.iter().any(|&i| self.indicators[i].when.is_some()))
            .map(|(record_type, _)| *record_type)
            .collect()
    }

    /// Evaluates every `when` of this framework on `record` (named `key`), adding its
    /// failures to `failures` (in document order of the indicators).
    pub fn check_when(&self, key: &str, record: &Record, failures: &mut Vec<WhenFailures>) {
        let Some(indicators) = self.by_type.get(&record.record_type()) else { return };
        for indicator in indicators.iter().map(|&i| &self.indicators[i]) {
            let Some(when) = &indicator.when else { continue };
            let Err(error) = when.holds(record) else { continue };
            match failures.iter_mut().find(|f| f.indicator == indicator.code) {
                Some(failure) => failure.records += 1,
                None => failures.push(WhenFailures {
                    indicator: indicator.code.clone(),
                    records: 1,
                    first_key: key.to_owned(),
                    first_error: error,
                }),
            }
        }
    }
}

/// Under which periods a record's distinct items are given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Items {
    /// Its year, `all` and the span: everything the record contributes.
    EveryPeriod,
    /// Its year only.
    Yearly,
}

impl Indicator {
    fn contributions_into<'a>(
        &'a self,
        framework: &'a str,
        (first, last): (i32, i32),
        record: &'a Record,
        items_under: Items,
        out: &mut Vec<ContributionRef<'a>>,
    ) {
        if let Some(when) = &self.when {
            match when.holds(record) {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(
                        framework,
                        indicator = self.code,
                        when = when.source,
                        error,
                        "A `when` failed on a record, which does not count."
                    );
                    let labels = [("framework", framework.to_owned()), ("indicator", self.code.clone())];
                    metrics::counter!("ecpat_when_failures_total", &labels).increment(1);
                    return;
                }
            }
        }
        let Some(year) = year((self.date.get)(record)) else { return };
        let mut breakdowns: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
        for breakdown in &self.breakdowns {
            for key in keys(breakdown.field.get(record)) {
                breakdowns.push((breakdown.name.as_str(), key));
            }
        }
        let tallies =
            std::iter::once(("", Cow::Borrowed(""))).chain(breakdowns).flat_map(|(dimension, key)| {
                let span = (first..=last).contains(&year).then_some(PeriodRef::Span(first, last));
                [Some(PeriodRef::Year(year)), Some(PeriodRef::All), span]
                    .into_iter()
                    .flatten()
                    .map(move |period| KeyRef { framework, indicator: &self.code, period, dimension, key: key.clone() })
            });
        match &self.value {
            ValueRule::Count => out.extend(tallies.map(|key| ContributionRef::Sum(key, 1))),
            ValueRule::Sum(field) => {
                let amount = match (field.get)(record) {
                    Value::Int(n) => n,
                    _ => 0,
                };
                out.extend(tallies.map(|key| ContributionRef::Sum(key, amount)));
            }
            ValueRule::Distinct(field) => {
                let items = keys(field.get(record));
                if items.is_empty() {
                    return;
                }
                for key in tallies {
                    if items_under == Items::Yearly && !matches!(key.period, PeriodRef::Year(_)) {
                        continue;
                    }
                    out.extend(items.iter().map(|item| ContributionRef::Distinct(key.clone(), item.clone())));
                }
            }
        }
    }
}

/// The UTC year of a date, a timestamp or a year.
fn year(value: Value<'_>) -> Option<i32> {
    match value {
        Value::Date(date) => Some(date.year()),
        Value::Timestamp(at) => Some(at.year()),
        Value::Int(year) => i32::try_from(year).ok(),
        _ => None,
    }
}

/// The keys a value gives as a breakdown or distinct items: none for null, an empty list
/// or a whole map, one per item of a list, else its text.
fn keys(value: Value<'_>) -> Vec<Cow<'_, str>> {
    match value {
        Value::Null | Value::Timestamp(_) | Value::Map(_) => vec![],
        Value::Text(text) => vec![text],
        Value::Int(n) => vec![Cow::Owned(n.to_string())],
        Value::Bool(b) => vec![Cow::Borrowed(if b { "true" } else { "false" })],
        Value::Date(date) => vec![Cow::Owned(date.format("%Y-%m-%d").to_string())],
        Value::List(items) => items.into_iter().map(Cow::Borrowed).collect(),
    }
}

#[cfg(test)]
mod tests;
