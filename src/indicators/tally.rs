//! Adding up the contributions that change in a batch into tally deltas.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use super::rules::{Contribution, ContributionRef, KeyRef, TallyKey, contributions};
use crate::framework::Frameworks;
use crate::records::Record;

/// How the tallies move when records change: sums to add, and distinct items whose
/// reference counts move (an item counts while at least one record names it). The store
/// moves items only under their year (`store::tallies` derives `all` and the span): a
/// [`Tally`] leaves out the others.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub sums: BTreeMap<TallyKey, i64>,
    pub items: BTreeMap<(TallyKey, String), i64>,
}

impl Delta {
    /// Adds (`sign` 1) or removes (`sign` -1) a record's contributions.
    pub fn add(&mut self, record: &Record, sign: i64) {
        for contribution in contributions(record) {
            match contribution {
                Contribution::Sum(key, amount) => *self.sums.entry(key).or_default() += sign * amount,
                Contribution::Distinct(key, item) => *self.items.entry((key, item)).or_default() += sign,
            }
        }
    }

    /// Replaces `old` by `new` (either may be absent: created, withdrawn).
    pub fn replace(&mut self, old: Option<&Record>, new: Option<&Record>) {
        if old == new {
            return;
        }
        if let Some(old) = old {
            self.add(old, -1);
        }
        if let Some(new) = new {
            self.add(new, 1);
        }
    }

    /// Adds `other` to this delta.
    pub fn merge(&mut self, other: Delta) {
        for (key, amount) in other.sums {
            *self.sums.entry(key).or_default() += amount;
        }
        for (item, refs) in other.items {
            *self.items.entry(item).or_default() += refs;
        }
    }

    /// Drops entries that cancelled out.
    pub fn prune(&mut self) {
        self.sums.retain(|_, v| *v != 0);
        self.items.retain(|_, v| *v != 0);
    }
}

/// A [`Delta`] being added up by `frameworks`, with distinct items under their year only,
/// its keys borrowed from the records that contribute and from the frameworks: their text
/// is copied once per tally that moves, when it becomes a [`Delta`].
pub(crate) struct Tally<'a> {
    frameworks: &'a Frameworks,
    sums: HashMap<KeyRef<'a>, i64>,
    items: HashMap<(KeyRef<'a>, Cow<'a, str>), i64>,
    /// The contributions of the version replaced and of the new one, reused from record to
    /// record.
    removed: Vec<ContributionRef<'a>>,
    added: Vec<ContributionRef<'a>>,
}

impl<'a> Tally<'a> {
    pub fn new(frameworks: &'a Frameworks) -> Tally<'a> {
        Tally {
            frameworks,
            sums: HashMap::default(),
            items: HashMap::default(),
            removed: Vec::new(),
            added: Vec::new(),
        }
    }

    /// Adds (`sign` 1) or removes (`sign` -1) a record's contributions.
    pub fn add(&mut self, record: &'a Record, sign: i64) {
        let mut contributions = std::mem::take(&mut self.added);
        each_once(self.frameworks, Some(record), &mut contributions);
        for contribution in contributions.drain(..) {
            self.count(contribution, sign);
        }
        self.added = contributions;
    }

    /// As [`Delta::replace`]. Contributions that both versions make cancel out: only the
    /// others are counted.
    pub fn replace(&mut self, old: Option<&'a Record>, new: Option<&'a Record>) {
        if old == new {
            return;
        }
        let (mut removed, mut added) = (std::mem::take(&mut self.removed), std::mem::take(&mut self.added));
        each_once(self.frameworks, old, &mut removed);
        each_once(self.frameworks, new, &mut added);
        let (mut r, mut a) = (0, 0);
        loop {
            match (removed.get(r), added.get(a)) {
                (Some(old), Some(new)) if old == new => (r, a) = (r + 1, a + 1),
                (Some(old), new) if new.is_none_or(|new| old < new) => {
                    self.count(old.clone(), -1);
                    r += 1;
                }
                (_, Some(new)) => {
                    self.count(new.clone(), 1);
                    a += 1;
                }
                (_, None) => break,
            }
        }
        (self.removed, self.added) = (removed, added);
    }

    /// Adds (`sign` 1) or removes (`sign` -1) one contribution.
    fn count(&mut self, contribution: ContributionRef<'a>, sign: i64) {
        match contribution {
            ContributionRef::Sum(key, amount) => *self.sums.entry(key).or_default() += sign * amount,
            ContributionRef::Distinct(key, item) => *self.items.entry((key, item)).or_default() += sign,
        }
    }

    /// The delta, without the entries that cancelled out (as after [`Delta::prune`]).
    pub fn into_delta(self) -> Delta {
        Delta {
            sums: totals(self.sums, KeyRef::owned),
            items: totals(self.items, |(key, item)| (key.owned(), item.into_owned())),
        }
    }
}

/// A record's contributions to `frameworks` (none for no record), each once, in order.
fn each_once<'a>(frameworks: &'a Frameworks, record: Option<&'a Record>, out: &mut Vec<ContributionRef<'a>>) {
    out.clear();
    if let Some(record) = record {
        frameworks.counted_into(record, out);
        out.sort_unstable();
        out.dedup();
    }
}

/// The totals that are not zero, with their keys copied.
fn totals<K, O: Ord>(entries: HashMap<K, i64>, owned: impl Fn(K) -> O) -> BTreeMap<O, i64> {
    entries.into_iter().filter(|&(_, total)| total != 0).map(|(key, total)| (owned(key), total)).collect()
}
