//! Which version of each record is current after a batch, and how the tallies move.
//!
//! Pure: the store loads the current versions of every record a batch touches, this
//! module decides, and the store writes the result. The latest (`time`, `source`, `id`)
//! wins whatever the order of arrival, so the outcome does not depend on how events are
//! split into batches or ordered inside one.

use std::collections::HashMap;

use crate::envelope::{Event, Version};
use crate::indicators::tally::Delta;
use crate::records::{Change, Record, RecordKey};

/// The current version of one record (or one social metric series).
#[derive(Clone, Debug, PartialEq)]
pub struct Current {
    pub version: Version,
    /// `None` when the current version is a withdrawal.
    pub record: Option<Record>,
    /// The stored event that carried this version.
    pub event_seq: i64,
    /// For a social series, its post's key (so a post withdrawal can find it).
    pub post_key: Option<String>,
}

/// The latest withdrawal of a social post, which also covers series not yet seen.
#[derive(Clone, Debug, PartialEq)]
pub struct PostWithdrawal {
    pub version: Version,
    pub event_seq: i64,
}

/// What the store knows before the batch, for the keys the batch touches.
#[derive(Debug, Default)]
pub struct Before {
    /// Current versions of the records named by the batch, and of every series of the
    /// posts it withdraws.
    pub records: HashMap<RecordKey, Current>,
    /// Withdrawals of the posts the batch names.
    pub post_withdrawals: HashMap<String, PostWithdrawal>,
}

/// What to write after the batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// Records whose current version changed.
    pub records: Vec<(RecordKey, Current)>,
    /// Post withdrawals that became newer.
    pub post_withdrawals: Vec<(String, PostWithdrawal)>,
    /// How the tallies move.
    pub delta: Delta,
    /// Events that became current for at least one record.
    pub applied: usize,
    /// Events older than the current version of everything they name.
    pub stale: usize,
}

/// Decides the batch: `events` are new (not duplicates), each with its stored sequence.
pub fn plan(before: &Before, events: &[(i64, &Event)]) -> Plan {
    let mut records = before.records.clone();
    let mut posts = before.post_withdrawals.clone();
    for &(seq, event) in events {
        let version = event.version();
        for change in &event.changes {
            match change {
                Change::Upsert(record) => {
                    let candidate =
                        Current { version: version.clone(), record: Some(record.clone()), event_seq: seq, post_key: record.group() };
                    offer(&mut records, &posts, record.key(), candidate);
                }
                Change::Withdraw(key) => {
                    let candidate = Current { version: version.clone(), record: None, event_seq: seq, post_key: None };
                    offer(&mut records, &posts, key.clone(), candidate);
                }
                Change::WithdrawPost(post) => {
                    let newer = posts.get(post).is_none_or(|w| w.version < version);
                    if newer {
                        posts.insert(post.clone(), PostWithdrawal { version: version.clone(), event_seq: seq });
                    }
                    for current in records.values_mut().filter(|c| c.post_key.as_ref() == Some(post)) {
                        if current.version < version {
                            current.version = version.clone();
                            current.record = None;
                            current.event_seq = seq;
                        }
                    }
                }
            }
        }
    }

    let mut plan = Plan::default();
    for (seq, event) in events {
        let wins = event.changes.iter().any(|change| match change {
            Change::Upsert(record) => records.get(&record.key()).is_some_and(|c| c.event_seq == *seq),
            Change::Withdraw(key) => records.get(key).is_some_and(|c| c.event_seq == *seq),
            Change::WithdrawPost(post) => posts.get(post).is_some_and(|w| w.event_seq == *seq),
        });
        if wins { plan.applied += 1 } else { plan.stale += 1 }
    }
    for (key, current) in records {
        let old = before.records.get(&key);
        if old.map(|o| &o.version) != Some(&current.version) {
            plan.delta.replace(old.and_then(|o| o.record.as_ref()), current.record.as_ref());
            plan.records.push((key, current));
        }
    }
    for (post, withdrawal) in posts {
        if before.post_withdrawals.get(&post).map(|w| &w.version) != Some(&withdrawal.version) {
            plan.post_withdrawals.push((post, withdrawal));
        }
    }
    plan.records.sort_by(|a, b| a.0.cmp(&b.0));
    plan.post_withdrawals.sort_by(|a, b| a.0.cmp(&b.0));
    plan.delta.prune();
    plan
}

/// Makes `candidate` current for `key` if it is newer than what is current; a series
/// seen for the first time starts from its post's withdrawal, if any.
fn offer(
    records: &mut HashMap<RecordKey, Current>,
    posts: &HashMap<String, PostWithdrawal>,
    key: RecordKey,
    candidate: Current,
) {
    let current = records.entry(key).or_insert_with(|| {
        let withdrawn = candidate.post_key.as_ref().and_then(|p| posts.get(p));
        match withdrawn {
            Some(w) => Current {
                version: w.version.clone(),
                record: None,
                event_seq: w.event_seq,
                post_key: candidate.post_key.clone(),
            },
            None => candidate.clone(),
        }
    });
    if current.version < candidate.version {
        *current = candidate;
    }
}
