//! Adding up the contributions that change in a batch into tally deltas.

use std::collections::BTreeMap;

use super::rules::{Contribution, TallyKey, contributions};
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
