//! Adding up the contributions that change in a batch into tally deltas.

use std::collections::BTreeMap;

use super::rules::{Contribution, ContributionRef, KeyRef, TallyKey, contributions, contributions_into};
use crate::records::Record;

/// How the tallies move when records change: sums to add, and distinct items whose
/// reference counts move (an item counts while at least one record names it).
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

    /// Drops entries that cancelled out.
    pub fn prune(&mut self) {
        self.sums.retain(|_, v| *v != 0);
        self.items.retain(|_, v| *v != 0);
    }
}

/// A [`Delta`] being added up, its keys borrowed from the records that contribute: their
/// text is copied once per tally that moves, when it becomes a [`Delta`].
#[derive(Default)]
pub(crate) struct Tally<'a> {
    sums: Vec<(KeyRef<'a>, i64)>,
    items: Vec<((KeyRef<'a>, &'a str), i64)>,
    /// One record's contributions, reused from record to record.
    record: Vec<ContributionRef<'a>>,
}

impl<'a> Tally<'a> {
    /// Adds (`sign` 1) or removes (`sign` -1) a record's contributions, each once.
    fn add(&mut self, record: &'a Record, sign: i64) {
        self.record.clear();
        contributions_into(record, &mut self.record);
        self.record.sort_unstable();
        self.record.dedup();
        for contribution in self.record.drain(..) {
            match contribution {
                ContributionRef::Sum(key, amount) => self.sums.push((key, sign * amount)),
                ContributionRef::Distinct(key, item) => self.items.push(((key, item), sign)),
            }
        }
    }

    /// As [`Delta::replace`].
    pub fn replace(&mut self, old: Option<&'a Record>, new: Option<&'a Record>) {
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

    /// The delta, without the entries that cancelled out (as after [`Delta::prune`]).
    pub fn into_delta(self) -> Delta {
        Delta {
            sums: totals(self.sums, KeyRef::owned),
            items: totals(self.items, |(key, item)| (key.owned(), item.to_owned())),
        }
    }
}

/// Adds up the amounts of each key, dropping the totals that are zero.
fn totals<K: Ord + Copy, O: Ord>(mut entries: Vec<(K, i64)>, owned: impl Fn(K) -> O) -> BTreeMap<O, i64> {
    entries.sort_unstable_by_key(|entry| entry.0);
    entries
        .chunk_by(|a, b| a.0 == b.0)
        .filter_map(|run| {
            let total: i64 = run.iter().map(|(_, amount)| amount).sum();
            (total != 0).then(|| (owned(run[0].0), total))
        })
        .collect()
}
