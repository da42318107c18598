//! The current versions a worker already knows, so that a batch need not read them again.
//!
//! What a worker knows is what its own batches read and wrote. Every batch takes the next
//! number of `apply_generation` under the apply lock and writes, in `apply_log`, the keys
//! of the records and posts it changed (as hashes, see [`record_hash`]; a post is logged
//! when its withdrawal or any of its series changed). A worker whose
//! batch finds that other batches were applied since its own last commit forgets only what
//! they changed; if their log is incomplete (pruned, or a hand edit that took a generation
//! without logging), it forgets everything (see [`Known::check`]). Nothing is learned
//! until a batch has committed: a batch that fails, or whose commit may or may not have
//! happened, leaves the worker knowing nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ledger::{Current, PostWithdrawal};
use crate::records::RecordKey;

/// How many generations behind a worker may be and still catch up from the log; the log
/// keeps a few more (see [`LOG_KEPT`]).
pub const CATCH_UP: i64 = 64;
/// Generations kept in `apply_log`; older rows are deleted by later batches.
pub const LOG_KEPT: i64 = 1000;

/// Current versions (and known absences) of records and post withdrawals, by the hash of
/// their key (the key is kept too: two keys with one hash never pass for each other).
#[derive(Debug)]
pub struct Known {
    /// The generation of this worker's last committed batch, while what it knows is true.
    generation: Option<i64>,
    /// `None`: no such record is stored. Boxed: the table's slots stay small (a slot
    /// holding a whole record took most of the memory of a large table).
    records: HashMap<i64, (RecordKey, Option<Box<Current>>), ByHash>,
    posts: HashMap<i64, (String, KnownPost), ByHash>,
    /// Records (and posts) known at most; past it, some are forgotten (see [`Known::learn`]).
    capacity: usize,
}

/// What is known of a social post.
#[derive(Debug)]
struct KnownPost {
    /// `None`: the post has no withdrawal.
    withdrawal: Option<PostWithdrawal>,
    /// The [`record_hash`] of every stored series of the post, when known (their current
    /// versions are in `records`, unless forgotten since). Hashes, not keys: a few bytes a
    /// series, whatever the number of posts known.
    series: Option<Vec<i64>>,
}

/// The state of every record and post a committed batch read or wrote.
#[derive(Debug, Default)]
pub struct Learned {
    pub generation: i64,
    pub records: Vec<(RecordKey, Option<Current>)>,
    pub posts: Vec<(String, Option<PostWithdrawal>)>,
    /// Every stored series of some of `posts` (whose current versions are in `records`).
    pub series: Vec<(String, Vec<RecordKey>)>,
}

/// One row of `apply_log`: what another batch changed.
#[derive(Debug, Default)]
pub struct Logged {
    pub generation: i64,
    /// [`record_hash`] of each record it wrote.
    pub records: Vec<i64>,
    /// [`post_hash`] of each post whose withdrawal or any series it wrote.
    pub posts: Vec<i64>,
    /// The hash of the key of each event it stored (`batch::event_hash`).
    pub events: Vec<i64>,
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
        Known { generation: None, records: HashMap::default(), posts: HashMap::default(), capacity }
    }

    /// The generation after which the log must be read for [`Known::check`] (`None`: what
    /// is known cannot be trusted whatever the log says).
    pub fn since(&self) -> Option<i64> {
        self.generation
    }

    /// Called under the apply lock with the generation the batch just took and the log of
    /// the batches after [`Known::since`] and before it: what they changed is forgotten;
    /// everything is, unless the log holds every one of those batches. Until
    /// [`Known::learn`], the next batch will find all of it stale.
    pub fn check(&mut self, generation: i64, log: &[Logged]) {
        match self.generation {
            Some(last) if last + 1 == generation => {}
            Some(last)
                if generation - last <= CATCH_UP + 1
                    && let Some(since) = changed_since(log, last, generation) =>
            {
                for logged in since {
                    for hash in &logged.records {
                        self.records.remove(hash);
                    }
                    for hash in &logged.posts {
                        self.posts.remove(hash);
                    }
                }
            }
            _ => {
                self.records.clear();
                self.posts.clear();
            }
        }
        self.generation = None;
    }

    pub fn record(&self, key: &RecordKey) -> Lookup<'_, Current> {
        match self.records.get(&record_hash(key)) {
            Some((known, Some(current))) if known == key => Lookup::Stored(current.as_ref()),
            Some((known, None)) if known == key => Lookup::Absent,
            _ => Lookup::Unknown,
        }
    }

    pub fn post(&self, post: &str) -> Lookup<'_, PostWithdrawal> {
        match self.posts.get(&post_hash(post)) {
            Some((known, KnownPost { withdrawal: Some(withdrawal), .. })) if known == post => {
                Lookup::Stored(withdrawal)
            }
            Some((known, KnownPost { withdrawal: None, .. })) if known == post => Lookup::Absent,
            _ => Lookup::Unknown,
        }
    }

    /// Every stored series of `post` with its current version, if this worker knows them
    /// all (`None`: read them).
    pub fn series(&self, post: &str) -> Option<Vec<(&RecordKey, &Current)>> {
        let (known, entry) = self.posts.get(&post_hash(post))?;
        if known != post {
            return None;
        }
        let hashes = entry.series.as_ref()?;
        hashes
            .iter()
            .map(|hash| match self.records.get(hash) {
                // Another record that shares the hash is not taken for the series.
                Some((key, Some(current))) if current.post_key.as_deref() == Some(post) => {
                    Some((key, current.as_ref()))
                }
                _ => None,
            })
            .collect()
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
            self.records.extend(
                learned.records.into_iter().map(|(key, current)| (record_hash(&key), (key, current.map(Box::new)))),
            );
            self.posts.extend(
                learned
                    .posts
                    .into_iter()
                    .map(|(post, withdrawal)| (post_hash(&post), (post, KnownPost { withdrawal, series: None }))),
            );
            for (post, series) in learned.series {
                let mut hashes: Vec<i64> = series.iter().map(record_hash).collect();
                hashes.sort_unstable();
                hashes.dedup();
                // Two series of one post that share a hash: the post's series are read each time.
                let distinct = hashes.len() == series.len();
                if let Some((known, entry)) = self.posts.get_mut(&post_hash(&post))
                    && *known == post
                    && distinct
                {
                    entry.series = Some(hashes);
                }
            }
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

/// The rows of `log` (in order; it may start earlier) after generation `since`, if they are
/// every generation strictly between `since` and `generation`; `None` if one is missing
/// (then what was read as of `since` cannot be told apart from what changed).
pub fn changed_since(log: &[Logged], since: i64, generation: i64) -> Option<&[Logged]> {
    let after = &log[log.partition_point(|logged| logged.generation <= since)..];
    let consecutive = after.iter().enumerate().all(|(i, logged)| logged.generation == since + 1 + i as i64);
    (consecutive && since + 1 + after.len() as i64 == generation).then_some(after)
}

/// Keeps `left` entries of `map`, whichever come first.
fn keep_only<K, V>(map: &mut HashMap<K, V, ByHash>, mut left: usize) {
    map.retain(|_, _| {
        let kept = left > 0;
        left = left.saturating_sub(1);
        kept
    });
}

/// The hash of a record key logged in `apply_log`: the same in every worker and version
/// (FNV-1a over the type and the key, then mixed). Two keys may share one; that only makes
/// a worker forget a little more.
pub fn record_hash(key: &RecordKey) -> i64 {
    stable_hash(&[key.record_type.as_str().as_bytes(), key.key.as_bytes()])
}

/// The hash of a post key logged in `apply_log` (see [`record_hash`]).
pub fn post_hash(post: &str) -> i64 {
    stable_hash(&[post.as_bytes()])
}

fn stable_hash(parts: &[&[u8]]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in *part {
            h ^= u64::from(byte);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator no UTF-8 text holds, so that ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // MurmurHash3's finaliser: every bit of the input reaches the low bits the table uses.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as i64
}

/// The tables' keys are hashes already: they are used as they are.
type ByHash = BuildHasherDefault<AsIs>;

#[derive(Default)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) ^ u64::from(byte);
        }
    }

    fn write_i64(&mut self, n: i64) {
        self.0 = n as u64;
    }
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
        let version =
            Version { secs: seq, nanos: 0, subnanos: String::new(), source: "urn:a".into(), id: format!("e{seq}") };
        Current { version, record: None, event_seq: seq, post_key: None }
    }

    fn learned(generation: i64, keys: &[(&str, Option<i64>)]) -> Learned {
        let records = keys.iter().map(|(k, seq)| (key(k), seq.map(current))).collect();
        Learned { generation, records, posts: vec![("p".into(), None)], series: vec![] }
    }

    #[test]
    fn what_a_worker_learned_holds_while_its_own_batches_follow_each_other() {
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1, &[("a", Some(1)), ("b", None)]));
        known.check(2, &[]);
        assert!(matches!(known.record(&key("a")), Lookup::Stored(c) if c.event_seq == 1));
        assert!(matches!(known.record(&key("b")), Lookup::Absent));
        assert!(matches!(known.record(&key("c")), Lookup::Unknown));
        assert!(matches!(known.post("p"), Lookup::Absent));
    }

    #[test]
    fn a_capacity_of_0_keeps_nothing_not_even_posts() {
        let mut known = Known::new(0);
        known.check(1, &[]);
        known.learn(Learned { generation: 1, records: vec![], posts: vec![("p".into(), None)], series: vec![] });
        known.check(2, &[]);
        assert!(matches!(known.post("p"), Lookup::Unknown));
    }

    #[test]
    fn another_workers_batch_in_between_makes_it_forget() {
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1, &[("a", Some(1))]));
        known.check(3, &[]);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        assert!(matches!(known.post("p"), Lookup::Unknown));
    }

    #[test]
    fn another_workers_logged_batches_in_between_make_it_forget_only_what_they_changed() {
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1, &[("a", Some(1)), ("b", None), ("c", Some(1))]));
        let log = [
            Logged { generation: 2, records: vec![record_hash(&key("a"))], posts: vec![], ..Default::default() },
            Logged {
                generation: 3,
                records: vec![record_hash(&key("b"))],
                posts: vec![post_hash("p")],
                ..Default::default()
            },
        ];
        known.check(4, &log);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        assert!(matches!(known.record(&key("b")), Lookup::Unknown));
        assert!(matches!(known.record(&key("c")), Lookup::Stored(c) if c.event_seq == 1));
        assert!(matches!(known.post("p"), Lookup::Unknown));
    }

    #[test]
    fn a_log_read_from_an_earlier_generation_is_used_from_after_the_last_commit() {
        let mut known = Known::new(10);
        known.check(3, &[]);
        known.learn(learned(3, &[("a", Some(3)), ("b", Some(3))]));
        let log = [
            Logged { generation: 2, records: vec![record_hash(&key("b"))], posts: vec![], ..Default::default() },
            Logged { generation: 3, records: vec![record_hash(&key("b"))], posts: vec![], ..Default::default() },
            Logged { generation: 4, records: vec![record_hash(&key("a"))], posts: vec![], ..Default::default() },
        ];
        known.check(5, &log);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        assert!(matches!(known.record(&key("b")), Lookup::Stored(_)), "changed before its own last commit");
    }

    #[test]
    fn a_log_with_a_gap_or_too_far_behind_makes_it_forget_everything() {
        let logged = |generation| Logged { generation, records: vec![], posts: vec![], ..Default::default() };
        for (generation, log) in [
            (4, vec![logged(2)]),
            (4, vec![logged(3)]),
            (4, vec![logged(2), logged(2)]),
            (1, vec![]),
            (1 + CATCH_UP + 2, (2..1 + CATCH_UP + 2).map(logged).collect()),
        ] {
            let mut known = Known::new(10);
            known.check(1, &[]);
            known.learn(learned(1, &[("c", Some(1))]));
            known.check(generation, &log);
            assert!(known.is_empty(), "generation {generation}, {} logged", log.len());
        }
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1, &[("c", Some(1))]));
        known.check(1 + CATCH_UP + 1, &(2..1 + CATCH_UP + 1).map(logged).collect::<Vec<_>>());
        assert_eq!(known.len(), 1, "a worker as far behind as it may be catches up");
    }

    #[test]
    fn a_key_sharing_its_hash_with_a_known_one_is_not_taken_for_it() {
        let mut known = Known::new(10);
        known.records.insert(record_hash(&key("a")), (key("b"), Some(Box::new(current(1)))));
        known.posts.insert(post_hash("p"), ("q".into(), KnownPost { withdrawal: None, series: Some(vec![]) }));
        let series = RecordKey { record_type: RecordType::SocialPost, key: "s".into() };
        let mut of_another = current(1);
        of_another.post_key = Some("q".into());
        known.records.insert(record_hash(&series), (series.clone(), Some(Box::new(of_another))));
        known.posts.insert(
            post_hash("r"),
            ("r".into(), KnownPost { withdrawal: None, series: Some(vec![record_hash(&series)]) }),
        );
        assert!(known.series("r").is_none(), "a record of another post is not one of its series");
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        assert!(matches!(known.post("p"), Lookup::Unknown));
        assert!(known.series("p").is_none());
    }

    #[test]
    fn a_posts_series_are_known_while_each_of_them_is_and_the_post_is() {
        let series = |k: &str| RecordKey { record_type: RecordType::SocialPost, key: k.into() };
        let of_p = || {
            let mut current = current(1);
            current.post_key = Some("p".into());
            Some(current)
        };
        let learned = |generation| Learned {
            generation,
            records: vec![(series("p-likes"), of_p()), (series("p-shares"), of_p())],
            posts: vec![("p".into(), None)],
            series: vec![("p".into(), vec![series("p-likes"), series("p-shares")])],
        };
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1));
        known.check(2, &[]);
        assert_eq!(known.series("p").map(|all| all.len()), Some(2));
        assert!(known.series("q").is_none());

        // Another worker changed one series: that one is forgotten, so are the post's series.
        let one = Logged { generation: 2, records: vec![record_hash(&series("p-shares"))], ..Default::default() };
        known.check(3, &[one]);
        assert!(known.series("p").is_none());

        // Another worker gave the post a new series: it logged the post.
        known.learn(learned(3));
        let new = Logged { generation: 4, posts: vec![post_hash("p")], ..Default::default() };
        known.check(5, &[new]);
        assert!(known.series("p").is_none());
        assert!(matches!(known.record(&series("p-likes")), Lookup::Stored(_)));
    }

    #[test]
    fn hashes_are_stable_and_tell_type_and_key_apart() {
        // Logged by one worker and read by another (perhaps another version): fixed values.
        assert_ne!(stable_hash(&[b"ab", b"c"]), stable_hash(&[b"a", b"bc"]));
        assert_ne!(record_hash(&key("p")), post_hash("p"), "a record key is hashed with its type");
        assert_eq!(stable_hash(&[b"a"]), 4245884901632234395, "computed apart, in Python");
    }

    #[test]
    fn a_batch_that_did_not_commit_leaves_nothing_known_for_the_next() {
        let mut known = Known::new(10);
        known.check(1, &[]);
        known.learn(learned(1, &[("a", Some(1))]));
        known.check(2, &[]);
        // The batch of generation 2 failed (or its commit is uncertain): no learn.
        known.check(2, &[]);
        assert!(matches!(known.record(&key("a")), Lookup::Unknown));
        known.check(3, &[]);
        assert!(known.is_empty());
    }

    #[test]
    fn past_its_capacity_it_forgets_some_of_the_older_first() {
        let mut known = Known::new(3);
        known.check(1, &[]);
        known.learn(learned(1, &[("a", Some(1)), ("b", Some(1))]));
        known.check(2, &[]);
        known.learn(learned(2, &[("c", Some(2)), ("d", Some(2))]));
        assert_eq!(known.len(), 3);
        known.check(3, &[]);
        let older = [key("a"), key("b")].iter().filter(|k| matches!(known.record(k), Lookup::Stored(_))).count();
        assert_eq!(older, 1, "one of the two older records is forgotten");
        assert!(matches!(known.record(&key("c")), Lookup::Stored(_)));
        assert!(matches!(known.record(&key("d")), Lookup::Stored(_)));
        known.learn(learned(3, &[("e", Some(3)), ("f", Some(3)), ("g", Some(3)), ("h", Some(3))]));
        assert!(known.is_empty(), "a batch larger than the capacity is not kept");
    }
}
