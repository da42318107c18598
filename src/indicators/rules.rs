//! What records contribute to indicator tallies; the rules themselves are a framework's
//! (`crate::framework`).
//!
//! A current record *contributes* to tallies: either an amount to a sum (a count of
//! records is a sum of ones) or an item to a distinct count. A tally is identified by
//! indicator, period, and breakdown (`dimension`, `key`; both empty for the total).
//! The store keeps these contributions up to date as versions come and go.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use crate::records::Record;

/// One value of one indicator: a total (`dimension` and `key` empty) or a breakdown value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TallyKey {
    pub framework: String,
    pub indicator: String,
    pub period: String,
    pub dimension: String,
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
    /// A framework's span, first and last year: `2018-2021`.
    Span(i32, i32),
}

/// A [`TallyKey`] borrowing its breakdown key from the record that contributes to it.
/// Compared field by field, as a derived order would; the framework, indicator and
/// dimension borrow the framework's own text, so the same text is first compared by
/// address (this is on the hot path).
#[derive(Clone, Debug)]
pub(crate) struct KeyRef<'a> {
    pub framework: &'a str,
    pub indicator: &'a str,
    pub period: PeriodRef,
    pub dimension: &'a str,
    pub key: Cow<'a, str>,
}

/// The order of two texts, without reading them when they are the same text.
fn order(a: &str, b: &str) -> Ordering {
    if std::ptr::eq(a, b) { Ordering::Equal } else { a.cmp(b) }
}

impl Ord for KeyRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        order(self.framework, other.framework)
            .then_with(|| order(self.indicator, other.indicator))
            .then_with(|| self.period.cmp(&other.period))
            .then_with(|| order(self.dimension, other.dimension))
            .then_with(|| self.key.cmp(&other.key))
    }
}

impl PartialOrd for KeyRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for KeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &str, b: &str| std::ptr::eq(a, b) || a == b;
        self.period == other.period
            && same(self.framework, other.framework)
            && same(self.indicator, other.indicator)
            && same(self.dimension, other.dimension)
            && self.key == other.key
    }
}

impl Eq for KeyRef<'_> {}

impl Hash for KeyRef<'_> {
    // Every field, as the derived hash would, in fewer writes (this is on the hot path).
    fn hash<H: Hasher>(&self, state: &mut H) {
        let period = match self.period {
            PeriodRef::Year(year) => u64::from(year as u32),
            PeriodRef::All => 1 << 32,
            PeriodRef::Span(first, last) => 2 << 32 | u64::from(first as u32) << 16 | u64::from(last as u32),
        };
        state.write_u64(period);
        state.write(self.framework.as_bytes());
        state.write_u8(0xff);
        state.write(self.indicator.as_bytes());
        state.write_u8(0xff);
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
            PeriodRef::Span(first, last) => format!("{first}-{last}"),
        };
        TallyKey {
            framework: self.framework.to_owned(),
            indicator: self.indicator.to_owned(),
            period,
            dimension: self.dimension.to_owned(),
            key: self.key.into_owned(),
        }
    }
}

/// A [`Contribution`] borrowing its text from the record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ContributionRef<'a> {
    Sum(KeyRef<'a>, i64),
    Distinct(KeyRef<'a>, Cow<'a, str>),
}

impl ContributionRef<'_> {
    pub(crate) fn owned(self) -> Contribution {
        match self {
            ContributionRef::Sum(key, amount) => Contribution::Sum(key.owned(), amount),
            ContributionRef::Distinct(key, item) => Contribution::Distinct(key.owned(), item.into_owned()),
        }
    }
}

/// Everything a current record contributes to the default framework's indicators.
pub fn contributions(record: &Record) -> BTreeSet<Contribution> {
    let mut out = Vec::new();
    contributions_into(record, &mut out);
    out.into_iter().map(ContributionRef::owned).collect()
}

/// Appends what a current record contributes to the shipped default framework to `out`,
/// each contribution once or more (sort and deduplicate to count each once, as
/// [`contributions`] does).
pub(crate) fn contributions_into<'a>(record: &'a Record, out: &mut Vec<ContributionRef<'a>>) {
    crate::framework::default().contributions_into(record, out);
}
