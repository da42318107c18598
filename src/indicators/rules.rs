//! The counting rules of the 13 indicators (docs/indicators.md), as pure functions.
//!
//! A current record *contributes* to tallies: either an amount to a sum (a count of
//! records is a sum of ones) or an item to a distinct count. A tally is identified by
//! indicator, period, and breakdown (`dimension`, `key`; both empty for the total).
//! The store keeps these contributions up to date as versions come and go.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use chrono::Datelike;

use super::Code;
use crate::records::{Engagement, Manifestation, Metric, Record, Scope, Theme};

/// One value of one indicator: a total (`dimension` and `key` empty) or a breakdown value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyKey {
    pub indicator: Code,
    pub period: String,
    pub dimension: &'static str,
    pub key: String,
}

/// What one record adds to one tally.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contribution {
    /// Adds `amount` to the tally.
    Sum(TallyKey, i64),
    /// Counts `item` once in the tally, however many records name it.
    Distinct(TallyKey, String),
}

/// The period under which every record counts, whatever its year.
pub const ALL: &str = "all";

/// A tally's period, without its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum PeriodRef {
    Year(i32),
    All,
}

/// A [`TallyKey`] borrowing its breakdown key from the record that contributes to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeyRef<'a> {
    pub indicator: Code,
    pub period: PeriodRef,
    pub dimension: &'static str,
    pub key: &'a str,
}

impl Hash for KeyRef<'_> {
    // Every field, as the derived hash would, in fewer writes (this is on the hot path).
    fn hash<H: Hasher>(&self, state: &mut H) {
        let period = match self.period {
            PeriodRef::Year(year) => u64::from(year as u32),
            PeriodRef::All => 1 << 32,
        };
        state.write_u64(period | (self.indicator as u64) << 40);
        state.write(self.dimension.as_bytes());
        state.write_u8(0xff);
        state.write(self.key.as_bytes());
        state.write_u8(0xff);
    }
}

impl KeyRef<'_> {
    pub fn owned(self) -> TallyKey {
        let period = match self.period {
            PeriodRef::Year(year) => year.to_string(),
            PeriodRef::All => ALL.to_owned(),
        };
        TallyKey { indicator: self.indicator, period, dimension: self.dimension, key: self.key.to_owned() }
    }
}

/// A [`Contribution`] borrowing its text from the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ContributionRef<'a> {
    Sum(KeyRef<'a>, i64),
    Distinct(KeyRef<'a>, &'a str),
}

impl ContributionRef<'_> {
    fn owned(self) -> Contribution {
        match self {
            ContributionRef::Sum(key, amount) => Contribution::Sum(key.owned(), amount),
            ContributionRef::Distinct(key, item) => Contribution::Distinct(key.owned(), item.to_owned()),
        }
    }
}

/// Collects a record's contributions: each breakdown given is counted in the record's
/// year and in `all`. A record may name a breakdown more than once: the caller counts
/// each contribution once only.
struct Collector<'a, 'o> {
    year: i32,
    out: &'o mut Vec<ContributionRef<'a>>,
}

impl<'a> Collector<'a, '_> {
    fn sum(&mut self, indicator: Code, amount: i64, breakdowns: &[(&'static str, &'a str)]) {
        let keys = keys(self.year, indicator, breakdowns);
        self.out.extend(keys.map(|key| ContributionRef::Sum(key, amount)));
    }

    fn distinct(&mut self, indicator: Code, item: &'a str, breakdowns: &[(&'static str, &'a str)]) {
        let keys = keys(self.year, indicator, breakdowns);
        self.out.extend(keys.map(|key| ContributionRef::Distinct(key, item)));
    }
}

/// The total and each breakdown, in `year` and in `all`.
fn keys<'a>(year: i32, indicator: Code, breakdowns: &[(&'static str, &'a str)]) -> impl Iterator<Item = KeyRef<'a>> {
    let all = std::iter::once(("", "")).chain(breakdowns.iter().copied());
    all.flat_map(move |(dimension, key)| {
        [PeriodRef::Year(year), PeriodRef::All].map(|period| KeyRef { indicator, period, dimension, key })
    })
}

/// Metrics that KE3 adds up.
const ENGAGEMENT_METRICS: [Metric; 4] = [Metric::Likes, Metric::Shares, Metric::Clicks, Metric::Stories];

/// Everything a current record contributes to the 13 indicators.
pub fn contributions(record: &Record) -> BTreeSet<Contribution> {
    let mut out = Vec::new();
    contributions_into(record, &mut out);
    out.into_iter().map(ContributionRef::owned).collect()
}

/// Appends what a current record contributes to `out`, each contribution once or more
/// (sort and deduplicate to count each once, as [`contributions`] does).
pub(crate) fn contributions_into<'a>(record: &'a Record, out: &mut Vec<ContributionRef<'a>>) {
    match record {
        Record::SocialPost(s) => {
            let mut c = Collector { year: s.published_at.year(), out };
            if s.publication_id.is_some() && ENGAGEMENT_METRICS.contains(&s.metric) {
                let by = [("metric", s.metric.as_str()), ("platform", s.platform.as_str())];
                c.sum(Code::KE3, s.value, &by);
            }
            c.distinct(Code::AP3, &s.member, &[("platform", &s.platform)]);
        }
        Record::Publication(p) => {
            let mut c = Collector { year: p.published_on.year(), out };
            let scope = [("scope", p.scope.as_str())];
            if matches!(p.scope, Scope::Global | Scope::Thematic) && p.contributed {
                c.sum(Code::KE1, 1, &scope);
            }
            if p.scope == Scope::National {
                let countries: Vec<_> = p.countries.iter().map(|k| ("country", k.as_str())).collect();
                c.sum(Code::KE2, 1, &countries);
            }
            if p.themes.contains(&Theme::AccessToJustice) {
                c.sum(Code::CV3, 1, &scope);
            }
        }
        Record::UnRecommendation(r) => {
            let mut c = Collector { year: r.decided_on.year(), out };
            if r.taken_up {
                c.sum(Code::AP1, 1, &[("mechanism", r.mechanism.as_str())]);
            }
        }
        Record::MediaStory(s) => {
            let mut c = Collector { year: s.published_on.year(), out };
            if s.global_advocacy {
                c.distinct(Code::AP2, &s.member, &[]);
            }
        }
        Record::AdvocacyInitiative(i) => {
            let mut c = Collector { year: i.started_on.year(), out };
            if i.private_sector_engagement == Engagement::Significant {
                c.sum(Code::AP4, 1, &[]);
            }
        }
        Record::SurvivorParticipation(p) => {
            let mut c = Collector { year: p.date.year(), out };
            c.distinct(Code::CV1, &p.country, &[("activity", p.activity.as_str())]);
        }
        Record::ChildOutreach(o) => {
            let mut c = Collector { year: o.date.year(), out };
            if o.regular {
                let by = [("channel", o.channel.as_str()), ("organisation_kind", o.organisation_kind.as_str())];
                c.distinct(Code::CV2, &o.organisation, &by);
            }
        }
        Record::UnSubmission(s) => {
            let mut c = Collector { year: s.submitted_on.year(), out };
            c.distinct(Code::ND1, &s.country, &[("level", s.mechanism.level())]);
        }
        Record::CapacityTraining(t) => {
            let mut c = Collector { year: t.held_on.year(), out };
            for member in &t.beneficiaries {
                c.distinct(Code::ND2, member, &[]);
            }
        }
        Record::MemberExpertise(e) => {
            let mut c = Collector { year: e.year, out };
            let distinct = Manifestation::ALL.iter().filter(|m| e.manifestations.contains(m)).count();
            if distinct >= 3 {
                c.distinct(Code::ND3, &e.member, &[]);
            }
        }
    }
}
