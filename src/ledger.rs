//! Which version of each record is current after a batch, and how the tallies move.
//!
//! Pure: the store loads the current versions of every record a batch touches, this
//! module decides, and the store writes the result. The latest (`time`, `source`, `id`)
//! wins whatever the order of arrival, so the outcome does not depend on how events are
//! split into batches or ordered inside one.
//!
//! A social post is a set of series, one per metric, each with its own current version
//! (the latest snapshot carrying that metric, or a newer withdrawal of the post). The
//! post's attributes (`member`, `published_at`, `publication_id`, `url`) are those of its
//! latest snapshot, whatever metrics it carries (docs/events.md): every live series holds
//! them, so a newer snapshot with other attributes rewrites every live series of the post.
//!
//! The post's latest snapshot needs no storage of its own: while any series of the post is
//! live, it is the current version of the live series with the greatest version. (A live
//! series is newer than every withdrawal of the post; so is the latest snapshot `L`, which
//! is then current for every metric it carries.) While no series is live, the attributes
//! count nowhere, and a snapshot that brings a series back is newer than every earlier one.

use std::collections::hash_map::Entry;
// Keys hashed with rustc-hash: this is on every batch's path, and a batch is at most a few
// thousand records, so that even keys chosen to collide cost milliseconds, not minutes.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::envelope::{Event, Version};
use crate::framework::Frameworks;
use crate::indicators::tally::{Delta, Tally};
use crate::records::{Change, Record, RecordKey, SocialSeries};

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
    /// posts it withdraws or has a snapshot of (a post's attributes follow its latest
    /// snapshot, which only all its series tell).
    pub records: HashMap<RecordKey, Current>,
    /// Withdrawals of the posts the batch names.
    pub post_withdrawals: HashMap<String, PostWithdrawal>,
}

/// What to write after the batch.
#[derive(Debug, Default)]
pub struct Plan {
    /// Records whose current version changed, and live series rewritten with their post's
    /// new attributes.
    pub records: Vec<(RecordKey, Current)>,
    /// Post withdrawals that became newer.
    pub post_withdrawals: Vec<(String, PostWithdrawal)>,
    /// Events that became current for at least one record.
    pub applied: usize,
    /// Events older than the current version of everything they name.
    pub stale: usize,
}

impl Plan {
    /// How the tallies move, by `frameworks`, when the plan's records replace their
    /// versions in `before` (the store adds this up while it writes the records).
    pub fn delta(&self, before: &Before, frameworks: &Frameworks) -> Delta {
        let mut tally = Tally::new(frameworks);
        for (key, current) in &self.records {
            let old = before.records.get(key).and_then(|o| o.record.as_ref());
            tally.replace(old, current.record.as_ref());
        }
        tally.into_delta()
    }
}

/// Decides the batch: `events` are new (not duplicates), each with its stored sequence.
/// [`Plan::delta`] then tells how the tallies move.
pub fn plan(before: &Before, events: &[(i64, &Event)]) -> Plan {
    // Everything below borrows from `before`, the events and these: only what changes is
    // copied into the plan.
    let versions: Vec<Version> = events.iter().map(|(_, event)| event.version()).collect();
    let upserts: Vec<(RecordKey, Option<String>)> = events
        .iter()
        .flat_map(|(_, event)| &event.changes)
        .filter_map(|change| match change {
            Change::Upsert(record) => Some((record.key(), record.group())),
            _ => None,
        })
        .collect();

    let mut records: HashMap<&RecordKey, Slot> = before.records.iter().map(|(key, c)| (key, Slot::of(c))).collect();
    let mut posts: HashMap<&String, (&Version, i64)> =
        before.post_withdrawals.iter().map(|(post, w)| (post, (&w.version, w.event_seq))).collect();
    let mut upsert = upserts.iter();
    for (&(seq, event), version) in events.iter().zip(&versions) {
        for change in &event.changes {
            match change {
                Change::Upsert(record) => {
                    let (key, post_key) = upsert.next().expect("a key for every upsert");
                    let candidate = Slot { version, record: Some(record), event_seq: seq, post_key: post_key.as_ref() };
                    offer(&mut records, &posts, key, candidate);
                }
                Change::Withdraw(key) => {
                    let candidate = Slot { version, record: None, event_seq: seq, post_key: None };
                    offer(&mut records, &posts, key, candidate);
                }
                Change::WithdrawPost(post) => {
                    let newer = posts.get(post).is_none_or(|w| w.0 < version);
                    if newer {
                        posts.insert(post, (version, seq));
                    }
                    for current in records.values_mut().filter(|c| c.post_key == Some(post)) {
                        if current.version < version {
                            current.version = version;
                            current.record = None;
                            current.event_seq = seq;
                        }
                    }
                }
            }
        }
    }

    let snapshot_posts: HashSet<&String> = upserts.iter().filter_map(|(_, post)| post.as_ref()).collect();
    let rewritten = follow_latest_snapshots(&records, &snapshot_posts);

    let mut plan = Plan::default();
    let mut upsert = upserts.iter();
    for &(seq, event) in events {
        let mut wins = false;
        for change in &event.changes {
            wins |= match change {
                Change::Upsert(_) => {
                    let (key, _) = upsert.next().expect("a key for every upsert");
                    records.get(key).is_some_and(|c| c.event_seq == seq)
                }
                Change::Withdraw(key) => records.get(key).is_some_and(|c| c.event_seq == seq),
                Change::WithdrawPost(post) => posts.get(post).is_some_and(|w| w.1 == seq),
            };
        }
        if wins { plan.applied += 1 } else { plan.stale += 1 }
    }
    let mut changed: Vec<(&RecordKey, Slot)> = records
        .into_iter()
        .filter(|(key, current)| {
            before.records.get(*key).map(|o| &o.version) != Some(current.version) || rewritten.contains_key(*key)
        })
        .collect();
    changed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut rewritten = rewritten;
    plan.records = changed
        .into_iter()
        .map(|(key, current)| {
            let mut owned = current.owned();
            if let Some(record) = rewritten.remove(key) {
                owned.record = Some(record);
            }
            (key.clone(), owned)
        })
        .collect();
    let mut post_withdrawals: Vec<(&String, (&Version, i64))> = posts
        .into_iter()
        .filter(|(post, w)| before.post_withdrawals.get(*post).map(|b| &b.version) != Some(w.0))
        .collect();
    post_withdrawals.sort_unstable_by(|a, b| a.0.cmp(b.0));
    plan.post_withdrawals = post_withdrawals
        .into_iter()
        .map(|(post, (version, event_seq))| (post.clone(), PostWithdrawal { version: version.clone(), event_seq }))
        .collect();
    plan
}

/// A [`Current`] borrowed from `before` or from the batch's events.
#[derive(Clone, Copy)]
struct Slot<'a> {
    version: &'a Version,
    record: Option<&'a Record>,
    event_seq: i64,
    post_key: Option<&'a String>,
}

impl<'a> Slot<'a> {
    fn of(current: &'a Current) -> Self {
        Slot {
            version: &current.version,
            record: current.record.as_ref(),
            event_seq: current.event_seq,
            post_key: current.post_key.as_ref(),
        }
    }

    fn owned(self) -> Current {
        Current {
            version: self.version.clone(),
            record: self.record.cloned(),
            event_seq: self.event_seq,
            post_key: self.post_key.cloned(),
        }
    }
}

/// For each post of `posts`: its live series whose attributes are not those of the post's
/// latest snapshot (the live series with the greatest version, see the module's comment),
/// with those attributes.
fn follow_latest_snapshots<'a>(
    records: &HashMap<&'a RecordKey, Slot<'a>>,
    posts: &HashSet<&String>,
) -> HashMap<&'a RecordKey, Record> {
    let mut latest: HashMap<&String, (&Version, &SocialSeries)> = HashMap::default();
    for slot in records.values() {
        if let (Some(post), Some(Record::SocialPost(series))) = (slot.post_key, slot.record)
            && posts.contains(post)
        {
            match latest.entry(post) {
                Entry::Occupied(mut found) => {
                    if found.get().0 < slot.version {
                        found.insert((slot.version, series));
                    }
                }
                Entry::Vacant(vacant) => {
                    vacant.insert((slot.version, series));
                }
            }
        }
    }
    let mut rewritten = HashMap::default();
    if latest.is_empty() {
        return rewritten;
    }
    for (&key, slot) in records {
        if let (Some(post), Some(Record::SocialPost(series))) = (slot.post_key, slot.record)
            && let Some((_, attributes)) = latest.get(post)
            && !series.same_post_attributes(attributes)
        {
            rewritten.insert(key, Record::SocialPost(series.with_post_attributes(attributes)));
        }
    }
    rewritten
}

/// Makes `candidate` current for `key` if it is newer than what is current; a series
/// seen for the first time starts from its post's withdrawal, if any.
fn offer<'a>(
    records: &mut HashMap<&'a RecordKey, Slot<'a>>,
    posts: &HashMap<&'a String, (&'a Version, i64)>,
    key: &'a RecordKey,
    candidate: Slot<'a>,
) {
    match records.entry(key) {
        Entry::Occupied(mut current) => {
            if current.get().version < candidate.version {
                current.insert(candidate);
            }
        }
        Entry::Vacant(vacant) => {
            let withdrawn = candidate.post_key.and_then(|p| posts.get(p));
            match withdrawn {
                Some(&(version, event_seq)) if candidate.version <= version => {
                    vacant.insert(Slot { version, record: None, event_seq, post_key: candidate.post_key });
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
        let before = Before { records: stored.records.into_iter().collect(), post_withdrawals: HashMap::default() };
        let late = story("e1", "2019-05-01T00:00:00Z", "ecpat-france");
        let plan = plan(&before, &[(9, &late)]);
        assert!(plan.records.is_empty());
        assert_eq!((plan.applied, plan.stale), (0, 1));
        assert_eq!(plan.delta(&before, crate::framework::built_in()), Delta::default());
    }

    #[test]
    fn a_post_withdrawal_covers_series_not_seen_yet_until_a_newer_snapshot() {
        let withdrawal = withdraw_post("w", "2019-06-01T00:00:00Z");
        let older_clicks = snapshot("s1", "2019-05-15T00:00:00Z", json!({"clicks": 5}));
        let plan = plan_all(&[withdrawal.clone(), older_clicks.clone()]);
        assert!(plan.records.iter().all(|(_, c)| c.record.is_none()), "an older snapshot stays withdrawn");
        let delta = plan.delta(&Before::default(), crate::framework::built_in());
        assert!(delta.sums.is_empty() && delta.items.is_empty());

        let newer_likes = snapshot("s2", "2019-07-01T00:00:00Z", json!({"likes": 3}));
        let plan = plan_all(&[newer_likes, withdrawal, older_clicks]);
        let live: Vec<_> = plan.records.iter().filter(|(_, c)| c.record.is_some()).collect();
        assert_eq!(live.len(), 1, "only the series of the newer snapshot comes back");
        assert_eq!(plan.post_withdrawals.len(), 1);
    }

    mod posts;
}
