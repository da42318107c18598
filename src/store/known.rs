//! The current versions a worker already knows, so that a batch need not read them again.
//!
//! What a worker knows is what its own batches read and wrote. It is true only while no
//! other process has applied a batch since this worker's last commit: every batch bumps
//! `apply_generation` under the apply lock, and a worker that finds a generation other
//! than the one right after its last commit forgets everything before it reads (see
//! [`Known::check`]). Nothing is learned until a batch has committed: a batch that fails,
//! or whose commit may or may not have happened, leaves the worker knowing nothing.

use std::collections::HashMap;

use crate::ledger::{Current, PostWithdrawal};
use crate::records::RecordKey;

/// Current versions (and known absences) of records and post withdrawals.
#[derive(Debug)]
pub struct Known {
    /// The generation of this worker's last committed batch, while what it knows is true.
    generation: Option<i64>,
    /// `None`: no such record is stored. Boxed: the table's slots stay small (a slot
    /// holding a whole record took most of the memory of a large table).
    records: HashMap<RecordKey, Option<Box<Current>>>,
    /// `None`: the post has no withdrawal.
    posts: HashMap<String, Option<PostWithdrawal>>,
    /// Records (and posts) known at most; past it, some are forgotten (see [`Known::learn`]).
    capacity: usize,
}

/// The state of every record and post a committed batch read or wrote.
#[derive(Debug, Default)]
pub struct Learned {
    pub generation: i64,
    pub records: Vec<(RecordKey, Option<Current>)>,
    pub posts: Vec<(String, Option<PostWithdrawal>)>,
}

/// What is known about one record or post.
pub enum Lookup<'a, T> {
    /// Stored, with this current state.
    Stored(&'a T),
    /// Known not to be stored.
    Absent,
    /// Not known: read it from the database.
    Unknown,
}

impl Known {
    /// Knows nothing; keeps at most `capacity` records (0: never keeps any).
    pub fn new(capacity: usize) -> Self {
        Known { generation: None, records: HashMap::new(), posts: HashMap::new(), capacity }
    }

    /// Called under the apply lock with the generation the batch just took: what is known
    /// stays only if the batch before this one was this worker's own last commit. Until
    /// [`Known::learn`], the next batch will find it stale.
    pub fn check(&mut self, generation: i64) {
        if self.generation != Some(generation - 1) {
            self.records.clear();
            self.posts.clear();
        }
        self.generation = None;
    }

    pub fn record(&self, key: &RecordKey) -> Lookup<'_, Current> {
        match self.records.get(key) {
            Some(Some(current)) => Lookup::Stored(current.as_ref()),
            Some(None) => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    pub fn post(&self, post: &str) -> Lookup<'_, PostWithdrawal> {
        match self.posts.get(post) {
            Some(Some(withdrawal)) => Lookup::Stored(withdrawal),
            Some(None) => Lookup::Absent,
            None => Lookup::Unknown,
        }
    }

    /// After a batch committed: keeps what it read and wrote. Past the capacity, a quarter
    /// of what was known (and more if the batch needs the room) is forgotten first.
    pub fn learn(&mut self, learned: Learned) {
        if self.capacity == 0 || learned.records.len() > self.capacity {
            self.records.clear();
            self.posts.clear();
        } else {
            let room = (self.capacity * 3 / 4).min(self.capacity - learned.records.len());
            if self.records.len() + learned.records.len() > self.capacity {
                keep_only(&mut self.records, room);
            }
            if self.posts.len() + learned.posts.len() > self.capacity {
                keep_only(&mut self.posts, room);
            }
            self.records.extend(learned.records.into_iter().map(|(key, current)| (key, current.map(Box::new))));
            self.posts.extend(learned.posts);
        }
        self.generation = Some(learned.generation);
    }

    /// Records known now (for tests and logs).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Keeps `left` entries of `map`, whichever come first.
fn keep_only<K, V>(map: &mut HashMap<K, V>, mut left: usize) {
    map.retain(|_, _| {
        let kept = left > 0;
        left = left.saturating_sub(1);
        kept
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Version;
    use crate::records::RecordType;

    fn key(k: &str) -> RecordKey {
        RecordKey { record_type: RecordType::MediaStory, key: k.into() }
    }

    fn current(seq: i64) -> Current {
        let version = Version { secs: seq, nanos: 0, source: "urn:a".into(), id: format!("e{seq}") };
        Current { version, record: None, event_seq: seq, post_key: None }
    }

    fn learned(generation: i64, keys: &[(&str, Option<i64>)]) -> Learned {
        let records = keys.iter().map(|(k, seq)| (key(k), seq.map(current))).collect();
        Learned { generation, records, posts: vec![("p".into(), None)] }
    }

    #[test]
    fn what_a_worker_learned_holds_while_its_own_batches_follow_each_other() {
        let mut known = Known::new(10);
        known.check(1);
        known.learn(learned(1, &[("a", Some(1)), ("b", None)]));
        known.check(2);
        assert!(matches!(known.record(&key("a")), Lookup::Stored(c) if c.event_seq == 1));
        assert!(matches!(known.record(&key("b")), Lookup::Absent));
        assert!(matches!(known.record(&key("c")), Lookup::Unknown));
        assert!(matches!(known.post("p"), Lookup::Absent));
    }

    #[test]
    fn a_capacity_of_0_keeps_nothing_not_even_posts() {
        let mut known = Known::new(0);
        known.check(1);
        known.learn(Learned { generation: 1, records: vec![], posts: vec![("p".into(), None)] });
        known.check(2);
        assert!(matches!(known.post("p"), Lookup::Unknown));
    }

    #[test]
    fn another_workers_batch_in_between_makes_it_forget() {
        let mut known = Known::new(10);
        known.check(1);
        known.learn(learned(1, &[("a", Some(1))]));
        known.check(3);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        assert!(matches!(known.post("p"), Lookup::Unknown));
    }

    #[test]
    fn a_batch_that_did_not_commit_leaves_nothing_known_for_the_next() {
        let mut known = Known::new(10);
        known.check(1);
        known.learn(learned(1, &[("a", Some(1))]));
        known.check(2);
        // The batch of generation 2 failed (or its commit is uncertain): no learn.
        known.check(2);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        known.check(3);
        assert!(known.is_empty());
    }

    #[test]
    fn past_its_capacity_it_forgets_some_of_the_older_first() {
        let mut known = Known::new(3);
        known.check(1);
        known.learn(learned(1, &[("a", Some(1)), ("b", Some(1))]));
        known.check(2);
        known.learn(learned(2, &[("c", Some(2)), ("d", Some(2))]));
        assert_eq!(known.len(), 3);
        known.check(3);
        let older = [key("a"), key("b")].iter().filter(|k| matches!(known.record(k), Lookup::Stored(_))).count();
        assert_eq!(older, 1, "one of the two older records is forgotten");
        assert!(matches!(known.record(&key("c")), Lookup::Stored(_)));
        assert!(matches!(known.record(&key("d")), Lookup::Stored(_)));
        known.learn(learned(3, &[("e", Some(3)), ("f", Some(3)), ("g", Some(3)), ("h", Some(3))]));
        assert!(known.is_empty(), "a batch larger than the capacity is not kept");
    }
}
