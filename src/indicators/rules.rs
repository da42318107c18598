//! The counting rules of the 13 indicators (CONTRACT §4), as pure functions.
//!
//! A current record *contributes* to tallies: either an amount to a sum (a count of
//! records is a sum of ones) or an item to a distinct count. A tally is identified by
//! indicator, period, and breakdown (`dimension`, `key`; both empty for the total).
//! The store keeps these contributions up to date as versions come and go.

use std::collections::BTreeSet;

use chrono::Datelike;

use super::Code;
use crate::records::{Engagement, Metric, Record, Scope, Theme};

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

/// Collects a record's contributions: each breakdown given is counted in the record's
/// year and in `all`, and once only however often the record names it.
struct Collector {
    year: String,
    out: BTreeSet<Contribution>,
}

impl Collector {
    fn new(year: i32) -> Self {
        Collector { year: year.to_string(), out: BTreeSet::new() }
    }

    fn keys(&self, indicator: Code, breakdowns: &[(&'static str, String)]) -> Vec<TallyKey> {
        let total = std::iter::once(("", String::new()));
        let all = total.chain(breakdowns.iter().cloned());
        all.flat_map(|(dimension, key)| {
            [self.year.as_str(), ALL].map(|period| TallyKey {
                indicator,
                period: period.to_owned(),
                dimension,
                key: key.clone(),
            })
        })
        .collect()
    }

    fn sum(&mut self, indicator: Code, amount: i64, breakdowns: &[(&'static str, String)]) {
        for key in self.keys(indicator, breakdowns) {
            self.out.insert(Contribution::Sum(key, amount));
        }
    }

    fn distinct(&mut self, indicator: Code, item: &str, breakdowns: &[(&'static str, String)]) {
        for key in self.keys(indicator, breakdowns) {
            self.out.insert(Contribution::Distinct(key, item.to_owned()));
        }
    }
}

/// Metrics that KE3 adds up.
const ENGAGEMENT_METRICS: [Metric; 4] = [Metric::Likes, Metric::Shares, Metric::Clicks, Metric::Stories];

/// Everything a current record contributes to the 13 indicators.
pub fn contributions(record: &Record) -> BTreeSet<Contribution> {
    match record {
        Record::SocialPost(s) => {
            let mut c = Collector::new(s.published_at.year());
            if s.publication_id.is_some() && ENGAGEMENT_METRICS.contains(&s.metric) {
                let by = [("metric", s.metric.as_str().to_owned()), ("platform", s.platform.clone())];
                c.sum(Code::KE3, s.value, &by);
            }
            c.distinct(Code::AP3, &s.member, &[("platform", s.platform.clone())]);
            c.out
        }
        Record::Publication(p) => {
            let mut c = Collector::new(p.published_on.year());
            let scope = [("scope", p.scope.as_str().to_owned())];
            if matches!(p.scope, Scope::Global | Scope::Thematic) && p.contributed {
                c.sum(Code::KE1, 1, &scope);
            }
            if p.scope == Scope::National {
                let countries: Vec<_> = p.countries.iter().map(|k| ("country", k.clone())).collect();
                c.sum(Code::KE2, 1, &countries);
            }
            if p.themes.contains(&Theme::AccessToJustice) {
                c.sum(Code::CV3, 1, &scope);
            }
            c.out
        }
        Record::UnRecommendation(r) => {
            let mut c = Collector::new(r.decided_on.year());
            if r.taken_up {
                c.sum(Code::AP1, 1, &[("mechanism", r.mechanism.as_str().to_owned())]);
            }
            c.out
        }
        Record::MediaStory(s) => {
            let mut c = Collector::new(s.published_on.year());
            if s.global_advocacy {
                c.distinct(Code::AP2, &s.member, &[]);
            }
            c.out
        }
        Record::AdvocacyInitiative(i) => {
            let mut c = Collector::new(i.started_on.year());
            if i.private_sector_engagement == Engagement::Significant {
                c.sum(Code::AP4, 1, &[]);
            }
            c.out
        }
        Record::SurvivorParticipation(p) => {
            let mut c = Collector::new(p.date.year());
            c.distinct(Code::CV1, &p.country, &[("activity", p.activity.as_str().to_owned())]);
            c.out
        }
        Record::ChildOutreach(o) => {
            let mut c = Collector::new(o.date.year());
            if o.regular {
                let by = [
                    ("channel", o.channel.as_str().to_owned()),
                    ("organisation_kind", o.organisation_kind.as_str().to_owned()),
                ];
                c.distinct(Code::CV2, &o.organisation, &by);
            }
            c.out
        }
        Record::UnSubmission(s) => {
            let mut c = Collector::new(s.submitted_on.year());
            c.distinct(Code::ND1, &s.country, &[("level", s.mechanism.level().to_owned())]);
            c.out
        }
        Record::CapacityTraining(t) => {
            let mut c = Collector::new(t.held_on.year());
            for member in &t.beneficiaries {
                c.distinct(Code::ND2, member, &[]);
            }
            c.out
        }
        Record::MemberExpertise(e) => {
            let mut c = Collector::new(e.year);
            let distinct: BTreeSet<_> = e.manifestations.iter().collect();
            if distinct.len() >= 3 {
                c.distinct(Code::ND3, &e.member, &[]);
            }
            c.out
        }
    }
}
