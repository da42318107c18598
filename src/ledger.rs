//! Which version of each record is current after a batch, and how the tallies move.
//!
//! Pure: the store loads the current versions of every record a batch touches, this
//! module decides, and the store writes the result. The latest (`time`, `source`, `id`)
//! wins whatever the order of arrival, so the outcome does not depend on how events are
//! split into batches or ordered inside one.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

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
                    let candidate = Current {
                        version: version.clone(),
                        record: Some(record.clone()),
                        event_seq: seq,
                        post_key: record.group(),
                    };
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
    match records.entry(key) {
        Entry::Occupied(mut current) => {
            if current.get().version < candidate.version {
                current.insert(candidate);
            }
        }
        Entry::Vacant(vacant) => {
            let withdrawn = candidate.post_key.as_ref().and_then(|p| posts.get(p));
            match withdrawn {
                Some(w) if candidate.version <= w.version => {
                    let post_key = candidate.post_key;
                    vacant.insert(Current {
                        version: w.version.clone(),
                        record: None,
                        event_seq: w.event_seq,
                        post_key,
                    });
                }
                _ => {
                    vacant.insert(candidate);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::envelope::decode;

    /// An event from a JSON object (`data` and its `type`), at `time`, from `source`/`id`.
    fn event(source: &str, id: &str, time: &str, event_type: &str, data: serde_json::Value) -> Event {
        let body =
            json!({"specversion": "1.0", "id": id, "source": source, "type": event_type, "time": time, "data": data});
        let mut decoded = decode(body.to_string().as_bytes());
        assert!(decoded.rejections.is_empty(), "{:?}", decoded.rejections);
        decoded.events.remove(0)
    }

    fn story(id: &str, time: &str, member: &str) -> Event {
        let data = json!({"story_id": "s1", "member": member, "outlet": "Le Monde", "global_advocacy": true,
            "published_on": "2019-05-01"});
        event("urn:a", id, time, "org.ecpat.media.story.recorded", data)
    }

    fn snapshot(id: &str, time: &str, metrics: serde_json::Value) -> Event {
        let data = json!({"platform": "x", "post_id": "1", "member": "ecpat-france",
            "published_at": "2019-05-01T00:00:00Z", "publication_id": "p", "metrics": metrics});
        event("urn:a", id, time, "org.ecpat.social.metrics.snapshot", data)
    }

    fn withdraw_post(id: &str, time: &str) -> Event {
        let data = json!({"record_type": "social_post", "key": {"platform": "x", "post_id": "1"}});
        event("urn:a", id, time, "org.ecpat.record.withdrawn", data)
    }

    /// Plans `events` (sequence numbers in order) from nothing.
    fn plan_all(events: &[Event]) -> Plan {
        let numbered: Vec<(i64, &Event)> = events.iter().enumerate().map(|(i, e)| (i as i64 + 1, e)).collect();
        plan(&Before::default(), &numbered)
    }

    fn current_member(plan: &Plan) -> Option<String> {
        plan.records.iter().find_map(|(_, c)| match &c.record {
            Some(Record::MediaStory(s)) => Some(s.member.clone()),
            _ => None,
        })
    }

    #[test]
    fn the_latest_time_wins_whatever_the_order() {
        let newer = story("e2", "2019-05-02T00:00:00Z", "ecpat-uk");
        let older = story("e1", "2019-05-01T00:00:00Z", "ecpat-france");
        for events in [vec![newer.clone(), older.clone()], vec![older, newer]] {
            let plan = plan_all(&events);
            assert_eq!(current_member(&plan).as_deref(), Some("ecpat-uk"));
            assert_eq!((plan.applied, plan.stale), (1, 1));
        }
    }

    #[test]
    fn at_the_same_instant_the_greater_source_then_id_wins() {
        let a = story("e1", "2019-05-01T02:00:00+02:00", "ecpat-france");
        let b = story("e2", "2019-05-01T00:00:00Z", "ecpat-uk");
        assert_eq!(current_member(&plan_all(&[b.clone(), a.clone()])).as_deref(), Some("ecpat-uk"));
        let mut c = story("e0", "2019-05-01T00:00:00Z", "ecpat-taiwan");
        c.source = "urn:b".into();
        assert_eq!(current_member(&plan_all(&[a, c, b])).as_deref(), Some("ecpat-taiwan"));
    }

    #[test]
    fn a_stored_newer_version_makes_a_late_one_stale() {
        let stored = plan_all(&[story("e2", "2019-05-02T00:00:00Z", "ecpat-uk")]);
        let before = Before { records: stored.records.into_iter().collect(), post_withdrawals: HashMap::new() };
        let late = story("e1", "2019-05-01T00:00:00Z", "ecpat-france");
        let plan = plan(&before, &[(9, &late)]);
        assert!(plan.records.is_empty());
        assert_eq!((plan.applied, plan.stale), (0, 1));
        assert_eq!(plan.delta, Delta::default());
    }

    #[test]
    fn a_post_withdrawal_covers_series_not_seen_yet_until_a_newer_snapshot() {
        let withdrawal = withdraw_post("w", "2019-06-01T00:00:00Z");
        let older_clicks = snapshot("s1", "2019-05-15T00:00:00Z", json!({"clicks": 5}));
        let plan = plan_all(&[withdrawal.clone(), older_clicks.clone()]);
        assert!(plan.records.iter().all(|(_, c)| c.record.is_none()), "an older snapshot stays withdrawn");
        assert!(plan.delta.sums.is_empty() && plan.delta.items.is_empty());

        let newer_likes = snapshot("s2", "2019-07-01T00:00:00Z", json!({"likes": 3}));
        let plan = plan_all(&[newer_likes, withdrawal, older_clicks]);
        let live: Vec<_> = plan.records.iter().filter(|(_, c)| c.record.is_some()).collect();
        assert_eq!(live.len(), 1, "only the series of the newer snapshot comes back");
        assert_eq!(plan.post_withdrawals.len(), 1);
    }
}
