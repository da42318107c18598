//! Applying a batch of messages in one transaction: store new events, move the current
//! versions, update the tallies, keep the rejections, and notify listeners.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

mod series;

use super::APPLY_LOCK;
use super::known::{CATCH_UP, Known, LOG_KEPT, Learned, Logged, Lookup, changed_since, post_hash, record_hash};
use crate::envelope::{Decoded, Event, MAX_BODY, Reason, Version};
use crate::indicators::Code;
use crate::indicators::rules::TallyKey;
use crate::indicators::tally::Delta;
use crate::ledger::{self, Before, Current, PostWithdrawal};
use crate::records::{Change, Record, RecordKey, RecordType};
use series::{preload_series, series_of};

/// The PostgreSQL channel on which changed totals are announced.
pub const TALLY_CHANNEL: &str = "ecpat_tallies";
/// How much of an oversized body is kept.
const KEPT_PREFIX: usize = 64 * 1024;
/// NOTIFY payloads must stay under 8000 bytes.
const NOTIFY_CHUNK: usize = 7000;

/// One message taken from the broker, decoded.
#[derive(Debug)]
pub struct Message {
    pub routing_key: String,
    /// The AMQP headers, as JSON (kept with rejections).
    pub headers: serde_json::Value,
    /// The body's size in bytes.
    pub size: usize,
    pub decoded: Decoded,
    /// The message may have been applied before (redelivered by the broker, or its batch
    /// retried after a failure whose commit may have gone through): its rejections are
    /// stored only if not already there.
    pub maybe_applied: bool,
}

/// A total that changed, as announced to dashboards.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TotalChange {
    pub code: String,
    pub period: String,
    pub value: i64,
}

/// What a batch did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: usize,
    pub duplicates: usize,
    pub stale: usize,
    pub rejected: Vec<Reason>,
    pub totals: Vec<TotalChange>,
}

/// Applies `messages` in one transaction; nothing is written if it fails. `known`: what
/// this worker knows of the current versions (see [`Known`]).
pub async fn apply(pool: &PgPool, messages: &[Message], known: &mut Known) -> Result<Outcome, sqlx::Error> {
    let stored = store(pool, messages, None).await?;
    finish(stored, messages, known).await
}

/// The first half of [`apply`]: a batch's new events, inserted in a transaction that is
/// still open. Storing takes no lock and waits for no other batch, so it can run while the
/// previous batch is applied: an event is inserted unless a committed batch stored it,
/// and a copy that another batch commits meanwhile is deleted under the lock ([`finish`]).
pub struct Stored {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// Each newly stored event: its sequence number, where it is in the messages, and the
    /// hash of its key ([`event_hash`]).
    inserted: Vec<(i64, EventAt, i64)>,
    /// The generation of the last batch whose events the insert saw (`None` if it inserted
    /// nothing): other copies can only come from later batches.
    generation: Option<i64>,
    /// The keys of every distinct event in the batch (their number is the batch's event count).
    keys: EventKeys,
    /// Duplicates in the batch, among its events or of stored events.
    duplicates: usize,
    took: std::time::Duration,
}

/// Where an event is in a batch: (message, event) indexes.
type EventAt = (usize, usize);

/// An event's key: the SHA-256 of its `source` and `id` (see [`event_key`]).
type EventKey = Vec<u8>;
/// The keys of a batch's events.
pub type EventKeys = Arc<HashSet<EventKey>>;

impl Stored {
    /// The keys of the batch's events, to pass as `in_flight` to the next [`store`].
    pub fn keys(&self) -> EventKeys {
        self.keys.clone()
    }

    /// Gives the batch up: nothing it stored is kept.
    pub async fn abandon(self) {
        let _ = self.tx.rollback().await;
    }
}

/// Stores the batch's new events, without applying them: see [`Stored`].
///
/// `in_flight` holds the event keys of a batch stored but not yet committed by this
/// worker. An event of ours among them is a duplicate once that batch commits; inserting
/// it would only store a copy to delete under the lock. It is counted as a duplicate and
/// not inserted; if that batch fails instead, the caller abandons this one and stores it
/// again without `in_flight`.
pub async fn store(pool: &PgPool, messages: &[Message], in_flight: Option<&EventKeys>) -> Result<Stored, sqlx::Error> {
    let started = std::time::Instant::now();
    let (mut fresh, in_batch_duplicates) = unique_events(messages);
    let keys: HashSet<EventKey> = fresh.iter().map(|f| f.key.clone()).collect();
    let before_skipping = fresh.len();
    if let Some(in_flight) = in_flight {
        fresh.retain(|f| !in_flight.contains(&f.key));
    }
    let skipped = before_skipping - fresh.len();
    let mut tx = pool.begin().await?;
    // Every statement of the batch looks rows up by key, a few hundred or thousand at a
    // time. Left to its estimates, the planner sometimes joins the keys to a whole-table scan
    // of `records`, whose cost grows with the table: keep it to index look-ups. `local`: for
    // this transaction only.
    let planned = sqlx::query!(
        "select set_config('enable_seqscan', 'off', true) as seqscan, set_config('enable_hashjoin', 'off', true) as hashjoin,
            set_config('enable_mergejoin', 'off', true) as mergejoin"
    )
    .fetch_one(&mut *tx)
    .await;
    if let Err(e) = planned {
        let _ = tx.rollback().await;
        return Err(e);
    }
    let (inserted, generation) = match insert_events(&mut tx, &fresh).await {
        Ok(inserted) => inserted,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(e);
        }
    };
    let duplicates = in_batch_duplicates + skipped + fresh.len() - inserted.len();
    let inserted = inserted.into_iter().map(|(seq, i)| (seq, fresh[i].at, event_hash(&fresh[i].key))).collect();
    Ok(Stored { tx, inserted, generation, keys: Arc::new(keys), duplicates, took: started.elapsed() })
}

/// The second half of [`apply`]: under the apply lock, moves the current versions and the
/// tallies for the stored events, keeps the rejections, notifies, and commits. Nothing is
/// written if it fails.
pub async fn finish(stored: Stored, messages: &[Message], known: &mut Known) -> Result<Outcome, sqlx::Error> {
    let events = stored.keys.len();
    let Stored { mut tx, inserted, generation, duplicates, took, .. } = stored;
    let new_events: Vec<(i64, &Event, i64)> =
        inserted.iter().map(|&(seq, (m, e), hash)| (seq, &messages[m].decoded.events[e], hash)).collect();
    let started = std::time::Instant::now();
    match apply_stored(&mut tx, messages, &new_events, generation, known).await {
        Ok((mut outcome, learned)) => {
            let applied = started.elapsed();
            tx.commit().await?;
            known.learn(learned);
            outcome.duplicates += duplicates;
            tracing::debug!(
                events,
                store_ms = took.as_secs_f64() * 1e3,
                apply_ms = applied.as_secs_f64() * 1e3,
                commit_ms = (started.elapsed() - applied).as_secs_f64() * 1e3,
                "Batch phases."
            );
            Ok(outcome)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// `stored`: the batch's new events, each with its sequence number and [`event_hash`];
/// `stored_at`: the generation the insert saw ([`Stored`]).
async fn apply_stored(
    tx: &mut PgConnection,
    messages: &[Message],
    stored: &[(i64, &Event, i64)],
    stored_at: Option<i64>,
    known: &mut Known,
) -> Result<(Outcome, Learned), sqlx::Error> {
    let started = std::time::Instant::now();
    let wanted = Wanted::of(stored.iter().map(|&(_, event, _)| event));
    // Before the lock: what this worker does not know is read now, as of some generation;
    // under the lock only what changed since is read again. Another worker's batch is
    // applied meanwhile.
    let preloaded = preload(&mut *tx, &wanted, known).await?;
    let preload_took = started.elapsed();
    sqlx::query!("select pg_advisory_xact_lock($1)", APPLY_LOCK).execute(&mut *tx).await?;
    // Every batch takes the next generation, under the lock, and reads what the batches
    // since this worker's last commit (or since its preload) changed, if that is not too
    // long ago: it forgets that (see [`Known::check`]) and reads it again.
    let since = [known.since(), Some(preloaded.generation), stored_at].into_iter().flatten().min().unwrap_or(i64::MAX);
    let rows = sqlx::query!(
        r#"with bump as (update apply_generation set n = n + 1 returning n)
        select bump.n as "generation!", l.generation as "logged?", l.records as "records?", l.posts as "posts?",
            case when $3 then l.events end as "events?"
        from bump left join apply_log l
            on l.generation > greatest($1, bump.n - $2::int8 - 1) and l.generation < bump.n
        order by l.generation"#,
        since,
        CATCH_UP,
        stored_at.is_some(),
    )
    .fetch_all(&mut *tx)
    .await?;
    let generation = rows[0].generation;
    let log: Vec<Logged> = rows
        .into_iter()
        .filter_map(|row| {
            Some(Logged {
                generation: row.logged?,
                records: row.records?,
                posts: row.posts.unwrap_or_default(),
                events: row.events.unwrap_or_default(),
            })
        })
        .collect();
    known.check(generation, &log);
    let preloaded = preloaded.still_current(generation, &log);
    let locked = started.elapsed();
    let copies = match stored_at {
        Some(stored_at) => delete_copies(&mut *tx, stored, stored_at, generation, &log).await?,
        None => HashSet::new(),
    };
    let kept: Vec<&(i64, &Event, i64)> = stored.iter().filter(|(seq, _, _)| !copies.contains(seq)).collect();
    let new_events: Vec<(i64, &Event)> = kept.iter().map(|&&(seq, event, _)| (seq, event)).collect();
    let event_hashes: Vec<i64> = kept.iter().map(|&&(_, _, hash)| hash).collect();
    let mut outcome = Outcome { duplicates: copies.len(), ..Outcome::default() };
    let posts = wanted.posts.clone();
    let (before, absent) = load_before(&mut *tx, wanted, known, preloaded).await?;
    let loaded = started.elapsed();
    let plan = ledger::plan(&before, &new_events);
    let planned = started.elapsed();
    outcome.applied = plan.applied;
    outcome.stale = plan.stale;
    write_records(&mut *tx, &plan.records, &before).await?;
    write_post_withdrawals(&mut *tx, &plan.post_withdrawals).await?;
    log_changes(&mut *tx, generation, &event_hashes, &plan.records, &plan.post_withdrawals).await?;
    let written = started.elapsed();
    // What the batch read and wrote, to know once it commits (the last state of a key wins).
    let series = series_of(&posts, &before, &plan.records);
    let learned = Learned {
        generation,
        series,
        records: absent
            .records
            .into_iter()
            .map(|key| (key, None))
            .chain(before.records.into_iter().map(|(key, current)| (key, Some(current))))
            .chain(plan.records.into_iter().map(|(key, current)| (key, Some(current))))
            .collect(),
        posts: absent
            .posts
            .into_iter()
            .map(|post| (post, None))
            .chain(before.post_withdrawals.into_iter().map(|(post, w)| (post, Some(w))))
            .chain(plan.post_withdrawals.into_iter().map(|(post, w)| (post, Some(w))))
            .collect(),
    };
    outcome.totals = apply_delta_in(&mut *tx, plan.delta).await?;
    let tallied = started.elapsed();
    outcome.rejected = insert_rejections(&mut *tx, messages).await?;
    notify(&mut *tx, &outcome.totals).await?;
    tracing::debug!(
        preload_ms = preload_took.as_secs_f64() * 1e3,
        lock_ms = (locked - preload_took).as_secs_f64() * 1e3,
        load_ms = (loaded - locked).as_secs_f64() * 1e3,
        plan_ms = (planned - loaded).as_secs_f64() * 1e3,
        records_ms = (written - planned).as_secs_f64() * 1e3,
        tallies_ms = (tallied - written).as_secs_f64() * 1e3,
        rest_ms = (started.elapsed() - tallied).as_secs_f64() * 1e3,
        "Batch apply phases."
    );
    Ok((outcome, learned))
}

/// An event of the batch, with what storing it needs.
struct Fresh<'a> {
    /// The routing key of its message.
    routing_key: &'a str,
    event: &'a Event,
    at: EventAt,
    key: EventKey,
}

/// The batch's events, first of each (`source`, `id`) only, sorted by that pair, each with
/// its key; and how many in-batch duplicates were dropped.
fn unique_events(messages: &[Message]) -> (Vec<Fresh<'_>>, usize) {
    let mut seen = HashSet::new();
    let mut events = Vec::new();
    let mut duplicates = 0;
    for (m, message) in messages.iter().enumerate() {
        for (e, event) in message.decoded.events.iter().enumerate() {
            if seen.insert((event.source.as_str(), event.id.as_str())) {
                let key = event_key(&event.source, &event.id);
                events.push(Fresh { routing_key: message.routing_key.as_str(), event, at: (m, e), key });
            } else {
                duplicates += 1;
            }
        }
    }
    events.sort_by(|a, b| (&a.event.source, &a.event.id).cmp(&(&b.event.source, &b.event.id)));
    (events, duplicates)
}

/// What an event is a version of: its record type and keys, as stored with it, and its
/// group (the record key, or for a social post the post key).
fn targets(event: &Event) -> (RecordType, Vec<String>, String) {
    let mut record_type = RecordType::SocialPost;
    let mut group = None;
    let keys = event
        .changes
        .iter()
        .map(|change| match change {
            Change::Upsert(record) => {
                record_type = record.record_type();
                let key = record.key().key;
                group = Some(record.group().unwrap_or_else(|| key.clone()));
                key
            }
            Change::Withdraw(key) => {
                record_type = key.record_type;
                group = Some(key.key.clone());
                key.key.clone()
            }
            Change::WithdrawPost(post) => {
                group = Some(post.clone());
                post.clone()
            }
        })
        .collect();
    (record_type, keys, group.expect("an event changes at least one record"))
}

/// Inserts the events that no committed batch stored; returns their sequence numbers with
/// their index in `events`, and the generation of the last batch the statement saw (a
/// batch's events and its generation commit together). It waits for no other batch: a
/// copy that another open batch holds is found under the lock ([`delete_copies`]).
async fn insert_events(
    tx: &mut PgConnection,
    events: &[Fresh<'_>],
) -> Result<(Vec<(i64, usize)>, Option<i64>), sqlx::Error> {
    if events.is_empty() {
        return Ok((vec![], None));
    }
    let mut sources = Vec::new();
    let mut ids = Vec::new();
    let mut types = Vec::new();
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    let mut routing_keys = Vec::new();
    let mut record_types = Vec::new();
    let mut keys = Vec::new();
    let mut bodies = Vec::new();
    let mut groups = Vec::new();
    for Fresh { routing_key, event, .. } in events {
        let (record_type, record_keys, group) = targets(event);
        groups.push(group);
        sources.push(event.source.clone());
        ids.push(event.id.clone());
        types.push(event.event_type.as_str().to_owned());
        times.push(event.time.to_utc());
        routing_keys.push(sanitize(routing_key));
        record_types.push(record_type.as_str().to_owned());
        keys.push(array_literal(&record_keys));
        bodies.push(event.raw.clone());
    }
    let hashes: Vec<EventKey> = events.iter().map(|f| f.key.clone()).collect();
    let prepared = std::time::Instant::now();
    let rows = sqlx::query!(
        r#"insert into events (event_key, source, id, type, time, routing_key, record_type, record_keys, record_group,
            body)
        select ek, s, i, t, tm, rk, rt, k::text[], g, b::json
        from unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[]) as u(ek, s, i, t, tm, rk, rt, k, g, b)
        where not exists (select from events e where e.event_key = u.ek)
        returning seq, source, id, (select n from apply_generation) as "generation!""#,
        &hashes,
        &sources,
        &ids,
        &types,
        &times,
        &routing_keys,
        &record_types,
        &keys,
        &groups,
        &bodies,
    )
    .fetch_all(&mut *tx)
    .await?;
    tracing::debug!(insert_ms = prepared.elapsed().as_secs_f64() * 1e3, "Events inserted.");
    let index: HashMap<(&str, &str), usize> =
        events.iter().enumerate().map(|(i, f)| ((f.event.source.as_str(), f.event.id.as_str()), i)).collect();
    let generation = rows.first().map(|r| r.generation);
    Ok((rows.iter().map(|r| (r.seq, index[&(r.source.as_str(), r.id.as_str())])).collect(), generation))
}

/// Under the lock, at `generation`: deletes this batch's copy of every event that another
/// batch committed after the insert saw generation `stored_at` (two workers stored it at
/// once, neither seeing the other's); returns the sequence numbers of the copies deleted.
/// The batches logged since then name their events' hashes; without a complete log every
/// event of the batch is looked up.
async fn delete_copies(
    tx: &mut PgConnection,
    stored: &[(i64, &Event, i64)],
    stored_at: i64,
    generation: i64,
    log: &[Logged],
) -> Result<HashSet<i64>, sqlx::Error> {
    let suspects: Vec<i64> = match changed_since(log, stored_at, generation) {
        Some(since) => {
            let logged: HashSet<i64> = since.iter().flat_map(|logged| logged.events.iter().copied()).collect();
            stored.iter().filter(|(_, _, hash)| logged.contains(hash)).map(|&(seq, _, _)| seq).collect()
        }
        None => stored.iter().map(|&(seq, _, _)| seq).collect(),
    };
    if suspects.is_empty() {
        return Ok(HashSet::new());
    }
    let deleted = sqlx::query_scalar!(
        "delete from events mine using events other
        where mine.seq = any($1::int8[]) and other.event_key = mine.event_key and other.seq <> mine.seq
        returning mine.seq",
        &suspects
    )
    .fetch_all(&mut *tx)
    .await?;
    if !deleted.is_empty() {
        tracing::debug!(copies = deleted.len(), "Copies of events another batch committed meanwhile, deleted.");
    }
    Ok(deleted.into_iter().collect())
}

/// A PostgreSQL array literal of `items` (sent as text and cast: sqlx has no arrays of arrays).
fn array_literal(items: &[String]) -> String {
    let mut literal = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    literal
}

/// The SHA-256 of an event's identity: `source` and `id`, each length-prefixed.
fn event_key(source: &str, id: &str) -> EventKey {
    let mut hasher = Sha256::new();
    for part in [source, id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_vec()
}

/// The hash of an event key logged in `apply_log`: its first 8 bytes (a hash that two keys
/// share only makes the batch look the event up).
fn event_hash(key: &[u8]) -> i64 {
    i64::from_be_bytes(key[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

/// Text columns cannot hold NUL; routing keys are the only unchecked text we store.
fn sanitize(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// Records and posts a batch read that are not stored.
#[derive(Default)]
struct Absent {
    records: Vec<RecordKey>,
    posts: Vec<String>,
}

/// What a batch's new events name: the records they change, and the posts they withdraw
/// or have a snapshot of.
struct Wanted {
    /// Records other than social series (those are read with their post).
    records: Vec<RecordKey>,
    /// Posts, whose withdrawal and every series are read: a withdrawal is a version of
    /// every series, and a snapshot may give the post new attributes, which every live
    /// series then takes (see `ledger`).
    posts: Vec<String>,
}

impl Wanted {
    fn of<'a>(events: impl Iterator<Item = &'a Event>) -> Wanted {
        let mut records = HashSet::new();
        let mut posts = HashSet::new();
        for event in events {
            for change in &event.changes {
                match change {
                    Change::Upsert(record) => match record.group() {
                        Some(post) => {
                            posts.insert(post);
                        }
                        None => {
                            records.insert(record.key());
                        }
                    },
                    Change::Withdraw(key) => {
                        records.insert(key.clone());
                    }
                    Change::WithdrawPost(post) => {
                        posts.insert(post.clone());
                    }
                }
            }
        }
        Wanted { records: records.into_iter().collect(), posts: posts.into_iter().collect() }
    }
}

/// Current versions read before the apply lock (`None`: not stored), as of `generation`.
struct Preloaded {
    generation: i64,
    records: HashMap<RecordKey, Option<Current>>,
    posts: HashMap<String, Option<PostWithdrawal>>,
    /// Every stored series of posts whose series this worker does not all know.
    series: HashMap<String, Vec<(RecordKey, Current)>>,
}

/// Reads, before the apply lock, the current versions of what the batch names and this
/// worker does not know; each statement also reads the generation it sees (a batch's
/// writes and its generation commit together, so the rows are those of that generation).
async fn preload(tx: &mut PgConnection, wanted: &Wanted, known: &Known) -> Result<Preloaded, sqlx::Error> {
    let mut types = Vec::new();
    let mut keys = Vec::new();
    for key in &wanted.records {
        if matches!(known.record(key), Lookup::Unknown) {
            types.push(key.record_type.as_str().to_owned());
            keys.push(key.key.clone());
        }
    }
    let posts: Vec<String> =
        wanted.posts.iter().filter(|post| matches!(known.post(post), Lookup::Unknown)).cloned().collect();
    let rows = sqlx::query_as!(
        JoinedRow,
        r#"select g.n as "generation!", r.record_type as "record_type?", r.record_key as "record_key?", r.post_key,
            r.version_secs as "version_secs?", r.version_nanos as "version_nanos?",
            r.version_subnanos as "version_subnanos?", r.version_source as "version_source?",
            r.version_id as "version_id?", r.event_seq as "event_seq?", r.record::text as record
        from apply_generation g
        left join (unnest($1::text[], $2::text[]) as u(rt, rk)
            join records r on r.record_type = u.rt and r.record_key = u.rk) on true"#,
        &types,
        &keys,
    )
    .fetch_all(&mut *tx)
    .await?;
    let generation = rows.first().map_or(0, |row| row.generation);
    let mut records: HashMap<RecordKey, Option<Current>> = HashMap::new();
    for stored in rows.into_iter().filter_map(JoinedRow::stored) {
        let (key, current) = stored.current()?;
        records.insert(key, Some(current));
    }
    for (record_type, key) in types.iter().zip(keys) {
        let record_type = RecordType::parse(record_type).expect("a type this worker named");
        records.entry(RecordKey { record_type, key }).or_insert(None);
    }
    // Posts in their own statement: its generation must be the same, else none is kept.
    let rows = sqlx::query!(
        r#"select g.n as "generation!", p.post_key as "post_key?", p.version_secs as "version_secs?",
            p.version_nanos as "version_nanos?", p.version_subnanos as "version_subnanos?",
            p.version_source as "version_source?", p.version_id as "version_id?", p.event_seq as "event_seq?"
        from apply_generation g
        left join post_withdrawals p on p.post_key = any($1::text[])"#,
        &posts,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut preloaded_posts = HashMap::new();
    if rows.first().is_some_and(|row| row.generation == generation) {
        for row in rows {
            let (Some(post_key), Some(secs), Some(nanos), Some(subnanos), Some(source), Some(id), Some(event_seq)) = (
                row.post_key,
                row.version_secs,
                row.version_nanos,
                row.version_subnanos,
                row.version_source,
                row.version_id,
                row.event_seq,
            ) else {
                continue;
            };
            let version = Version { secs, nanos: nanos as u32, subnanos, source, id };
            preloaded_posts.insert(post_key, Some(PostWithdrawal { version, event_seq }));
        }
        for post in posts {
            preloaded_posts.entry(post).or_insert(None);
        }
    }
    let series = preload_series(tx, wanted, known, generation).await?;
    Ok(Preloaded { generation, records, posts: preloaded_posts, series })
}

impl Preloaded {
    /// Under the lock, at `generation`: drops what the batches logged since the preload
    /// changed; everything, unless `log` holds every one of them.
    fn still_current(mut self, generation: i64, log: &[Logged]) -> Preloaded {
        let Some(since) = changed_since(log, self.generation, generation) else {
            self.records.clear();
            self.posts.clear();
            self.series.clear();
            return self;
        };
        let records: HashSet<i64> = since.iter().flat_map(|logged| logged.records.iter().copied()).collect();
        let posts: HashSet<i64> = since.iter().flat_map(|logged| logged.posts.iter().copied()).collect();
        if !records.is_empty() {
            self.records.retain(|key, _| !records.contains(&record_hash(key)));
        }
        if !posts.is_empty() {
            // A post is logged when its withdrawal or any of its series changed.
            self.posts.retain(|post, _| !posts.contains(&post_hash(post)));
            self.series.retain(|post, _| !posts.contains(&post_hash(post)));
        }
        self
    }
}

/// Loads, under the apply lock, the current versions of everything the new events name:
/// from what this worker knows, else from what it preloaded and is still current, else from
/// the database. Every series of a post the batch withdraws or has a snapshot of is needed:
/// from what this worker knows if it knows them all ([`Known::series`]), else read from the
/// database (what it preloaded, by key, may not hold them all).
async fn load_before(
    tx: &mut PgConnection,
    wanted: Wanted,
    known: &Known,
    mut preloaded: Preloaded,
) -> Result<(Before, Absent), sqlx::Error> {
    let mut before = Before::default();
    let mut absent = Absent::default();
    let mut unread = HashSet::new();
    let preloaded_records = preloaded.records.len();
    let mut types = Vec::new();
    let mut keys = Vec::new();
    for key in wanted.records {
        match known.record(&key) {
            Lookup::Stored(current) => {
                before.records.insert(key, current.clone());
            }
            Lookup::Absent => absent.records.push(key),
            Lookup::Unknown => match preloaded.records.remove(&key) {
                Some(Some(current)) => {
                    before.records.insert(key, current);
                }
                Some(None) => absent.records.push(key),
                None => {
                    types.push(key.record_type.as_str().to_owned());
                    keys.push(key.key.clone());
                    unread.insert(key);
                }
            },
        }
    }
    let mut posts = Vec::new();
    // The posts whose series this worker neither knows all of nor preloaded: read now.
    let mut whole = Vec::new();
    for post in wanted.posts {
        match known.series(&post) {
            Some(series) => {
                before.records.extend(series.into_iter().map(|(key, current)| (key.clone(), current.clone())));
            }
            None => match preloaded.series.remove(&post) {
                Some(series) => before.records.extend(series),
                None => whole.push(post.clone()),
            },
        }
        match known.post(&post) {
            Lookup::Stored(withdrawal) => {
                before.post_withdrawals.insert(post, withdrawal.clone());
            }
            Lookup::Absent => absent.posts.push(post),
            Lookup::Unknown => match preloaded.posts.remove(&post) {
                Some(Some(withdrawal)) => {
                    before.post_withdrawals.insert(post, withdrawal);
                }
                Some(None) => absent.posts.push(post),
                None => posts.push(post),
            },
        }
    }
    tracing::debug!(
        records = before.records.len() + absent.records.len() + keys.len(),
        preloaded = preloaded_records - preloaded.records.len(),
        read_again = keys.len(),
        "Batch records found."
    );
    // Two look-ups, each by its own index (an `or` of both would scan the table).
    let by_key = if keys.is_empty() {
        vec![]
    } else {
        sqlx::query_as!(
            StoredRow,
            r#"select r.record_type, r.record_key, r.post_key, r.version_secs, r.version_nanos, r.version_subnanos,
                r.version_source, r.version_id, r.event_seq, r.record::text as record
            from unnest($1::text[], $2::text[]) as u(rt, rk)
            join records r on r.record_type = u.rt and r.record_key = u.rk"#,
            &types,
            &keys,
        )
        .fetch_all(&mut *tx)
        .await?
    };
    let by_post = if whole.is_empty() {
        vec![]
    } else {
        sqlx::query_as!(
            StoredRow,
            r#"select record_type, record_key, post_key, version_secs, version_nanos, version_subnanos, version_source,
                version_id, event_seq, record::text as record
            from records where post_key = any($1::text[])"#,
            &whole,
        )
        .fetch_all(&mut *tx)
        .await?
    };
    for row in by_key.into_iter().chain(by_post) {
        let (key, current) = row.current()?;
        unread.remove(&key);
        before.records.insert(key, current);
    }
    absent.records.extend(unread);
    let rows = if posts.is_empty() {
        vec![]
    } else {
        sqlx::query!(
            r#"select post_key, version_secs, version_nanos, version_subnanos, version_source, version_id, event_seq
        from post_withdrawals where post_key = any($1::text[])"#,
            &posts,
        )
        .fetch_all(&mut *tx)
        .await?
    };
    let mut unseen: HashSet<&String> = posts.iter().collect();
    for row in rows {
        let version = Version {
            secs: row.version_secs,
            nanos: row.version_nanos as u32,
            subnanos: row.version_subnanos,
            source: row.version_source,
            id: row.version_id,
        };
        unseen.remove(&row.post_key);
        before.post_withdrawals.insert(row.post_key, PostWithdrawal { version, event_seq: row.event_seq });
    }
    absent.posts.extend(unseen.into_iter().cloned());
    Ok((before, absent))
}

/// A row of the generation left-joined to the current versions it was read with: no
/// version when none of the records asked for is stored.
struct JoinedRow {
    generation: i64,
    record_type: Option<String>,
    record_key: Option<String>,
    post_key: Option<String>,
    version_secs: Option<i64>,
    version_nanos: Option<i32>,
    version_subnanos: Option<String>,
    version_source: Option<String>,
    version_id: Option<String>,
    event_seq: Option<i64>,
    record: Option<String>,
}

impl JoinedRow {
    /// The stored version the row holds, if it holds one.
    fn stored(self) -> Option<StoredRow> {
        Some(StoredRow {
            record_type: self.record_type?,
            record_key: self.record_key?,
            post_key: self.post_key,
            version_secs: self.version_secs?,
            version_nanos: self.version_nanos?,
            version_subnanos: self.version_subnanos?,
            version_source: self.version_source?,
            version_id: self.version_id?,
            event_seq: self.event_seq?,
            record: self.record,
        })
    }
}

/// A stored current version, as read.
struct StoredRow {
    record_type: String,
    record_key: String,
    post_key: Option<String>,
    version_secs: i64,
    version_nanos: i32,
    version_subnanos: String,
    version_source: String,
    version_id: String,
    event_seq: i64,
    record: Option<String>,
}

impl StoredRow {
    fn current(self) -> Result<(RecordKey, Current), sqlx::Error> {
        let record_type =
            RecordType::parse(&self.record_type).ok_or_else(|| corrupt("record_type", &self.record_type))?;
        let record = self
            .record
            .map(|text| serde_json::from_str::<Record>(&text).map_err(|e| corrupt("record", &e.to_string())))
            .transpose()?;
        let version = Version {
            secs: self.version_secs,
            nanos: self.version_nanos as u32,
            subnanos: self.version_subnanos,
            source: self.version_source,
            id: self.version_id,
        };
        let current = Current { version, record, event_seq: self.event_seq, post_key: self.post_key };
        Ok((RecordKey { record_type, key: self.record_key }, current))
    }
}

fn corrupt(what: &str, detail: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("stored {what} cannot be read: {detail}"))
}

/// Writes the new current versions: an update where the record was stored (it is in
/// `before`, loaded under the apply lock), an insert where it was not; no upsert, whose
/// conflict check costs one more index look-up per row.
async fn write_records(
    tx: &mut PgConnection,
    records: &[(RecordKey, Current)],
    before: &Before,
) -> Result<(), sqlx::Error> {
    let (stored, new): (Vec<_>, Vec<_>) = records.iter().partition(|(key, _)| before.records.contains_key(key));
    let stored = RecordColumns::of(&stored);
    if !stored.keys.is_empty() {
        sqlx::query!(
            r#"update records r set
                post_key = u.pk, version_secs = u.vs, version_nanos = u.vn, version_subnanos = u.vsub,
                version_source = u.vsrc, version_id = u.vid, event_seq = u.seq, record = u.rec::json,
                updated_at = now()
            from unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::text[], $7::text[],
                $8::text[], $9::int8[], $10::text[]) as u(rt, rk, pk, vs, vn, vsub, vsrc, vid, seq, rec)
            where r.record_type = u.rt and r.record_key = u.rk"#,
            &stored.types,
            &stored.keys,
            &stored.posts as &[Option<String>],
            &stored.secs,
            &stored.nanos,
            &stored.subnanos,
            &stored.sources,
            &stored.ids,
            &stored.seqs,
            &stored.bodies as &[Option<String>],
        )
        .execute(&mut *tx)
        .await?;
    }
    let new = RecordColumns::of(&new);
    if !new.keys.is_empty() {
        sqlx::query!(
            r#"insert into records (record_type, record_key, post_key, version_secs, version_nanos,
                version_subnanos, version_source, version_id, event_seq, record)
            select rt, rk, pk, vs, vn, vsub, vsrc, vid, seq, rec::json
            from unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int4[], $6::text[], $7::text[],
                $8::text[], $9::int8[], $10::text[]) as u(rt, rk, pk, vs, vn, vsub, vsrc, vid, seq, rec)"#,
            &new.types,
            &new.keys,
            &new.posts as &[Option<String>],
            &new.secs,
            &new.nanos,
            &new.subnanos,
            &new.sources,
            &new.ids,
            &new.seqs,
            &new.bodies as &[Option<String>],
        )
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Current versions as columns, for `unnest`.
#[derive(Default)]
struct RecordColumns {
    types: Vec<String>,
    keys: Vec<String>,
    posts: Vec<Option<String>>,
    secs: Vec<i64>,
    nanos: Vec<i32>,
    subnanos: Vec<String>,
    sources: Vec<String>,
    ids: Vec<String>,
    seqs: Vec<i64>,
    bodies: Vec<Option<String>>,
}

impl RecordColumns {
    fn of(records: &[&(RecordKey, Current)]) -> RecordColumns {
        let mut columns = RecordColumns::default();
        for (key, current) in records {
            columns.types.push(key.record_type.as_str().to_owned());
            columns.keys.push(key.key.clone());
            columns.posts.push(current.post_key.clone());
            columns.secs.push(current.version.secs);
            columns.nanos.push(current.version.nanos as i32);
            columns.subnanos.push(current.version.subnanos.clone());
            columns.sources.push(current.version.source.clone());
            columns.ids.push(current.version.id.clone());
            columns.seqs.push(current.event_seq);
            columns.bodies.push(current.record.as_ref().map(|r| serde_json::to_string(r).expect("records serialize")));
        }
        columns
    }
}

async fn write_post_withdrawals(tx: &mut PgConnection, posts: &[(String, PostWithdrawal)]) -> Result<(), sqlx::Error> {
    if posts.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = posts.iter().map(|(k, _)| k.clone()).collect();
    let secs: Vec<i64> = posts.iter().map(|(_, w)| w.version.secs).collect();
    let nanos: Vec<i32> = posts.iter().map(|(_, w)| w.version.nanos as i32).collect();
    let subnanos: Vec<String> = posts.iter().map(|(_, w)| w.version.subnanos.clone()).collect();
    let sources: Vec<String> = posts.iter().map(|(_, w)| w.version.source.clone()).collect();
    let ids: Vec<String> = posts.iter().map(|(_, w)| w.version.id.clone()).collect();
    let seqs: Vec<i64> = posts.iter().map(|(_, w)| w.event_seq).collect();
    sqlx::query!(
        r#"insert into post_withdrawals (post_key, version_secs, version_nanos, version_subnanos, version_source,
            version_id, event_seq)
        select * from unnest($1::text[], $2::int8[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::int8[])
        on conflict (post_key) do update set
            version_secs = excluded.version_secs, version_nanos = excluded.version_nanos,
            version_subnanos = excluded.version_subnanos, version_source = excluded.version_source,
            version_id = excluded.version_id, event_seq = excluded.event_seq"#,
        &keys,
        &secs,
        &nanos,
        &subnanos,
        &sources,
        &ids,
        &seqs,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes what the batch changed in `apply_log` (for the other workers, see [`Known`]),
/// and deletes the rows no worker will read any more.
async fn log_changes(
    tx: &mut PgConnection,
    generation: i64,
    events: &[i64],
    records: &[(RecordKey, Current)],
    posts: &[(String, PostWithdrawal)],
) -> Result<(), sqlx::Error> {
    // A post is logged when any of its series changed too: another worker that knows every
    // series of the post may not know the new one (see `Known::series`).
    let series_posts: HashSet<&String> = records.iter().filter_map(|(_, current)| current.post_key.as_ref()).collect();
    let posts: Vec<i64> = posts
        .iter()
        .map(|(post, _)| post)
        .filter(|post| !series_posts.contains(post))
        .chain(series_posts.iter().copied())
        .map(|post| post_hash(post))
        .collect();
    let records: Vec<i64> = records.iter().map(|(key, _)| record_hash(key)).collect();
    sqlx::query!(
        "with pruned as (delete from apply_log where generation <= $1 - $5::int8)
        insert into apply_log (generation, records, posts, events) values ($1, $2, $3, $4)",
        generation,
        &records,
        &posts,
        events,
        LOG_KEPT,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A distinct item's tally and name, as text: (indicator, period, dimension, key, item).
type ItemId<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Columns of tally keys, for `unnest`.
#[derive(Default)]
struct KeyColumns {
    indicators: Vec<String>,
    periods: Vec<String>,
    dimensions: Vec<String>,
    keys: Vec<String>,
}

impl KeyColumns {
    fn push(&mut self, key: &TallyKey) {
        self.indicators.push(key.indicator.as_str().to_owned());
        self.periods.push(key.period.clone());
        self.dimensions.push(key.dimension.to_owned());
        self.keys.push(key.key.clone());
    }
}

/// Moves the distinct items' reference counts, turns the items that started or stopped
/// counting into sums, and adds the sums to the tallies. Returns the changed totals.
pub(super) async fn apply_delta_in(tx: &mut PgConnection, delta: Delta) -> Result<Vec<TotalChange>, sqlx::Error> {
    let Delta { mut sums, items } = delta;
    if !items.is_empty() {
        let mut columns = KeyColumns::default();
        let mut names = Vec::new();
        let mut refs = Vec::new();
        for ((key, item), change) in &items {
            columns.push(key);
            names.push(item.clone());
            refs.push(*change);
        }
        let rows = sqlx::query!(
            r#"insert into tally_items (indicator, period, dimension, key, item, refs)
            select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
            on conflict (indicator, period, dimension, key, item) do update set refs = tally_items.refs + excluded.refs
            returning indicator, period, dimension, key, item, refs"#,
            &columns.indicators,
            &columns.periods,
            &columns.dimensions,
            &columns.keys,
            &names,
            &refs,
        )
        .fetch_all(&mut *tx)
        .await?;
        let by_name: HashMap<ItemId, &(TallyKey, String)> = items
            .keys()
            .map(|k| ((k.0.indicator.as_str(), k.0.period.as_str(), k.0.dimension, k.0.key.as_str(), k.1.as_str()), k))
            .collect();
        for row in &rows {
            let id = (
                row.indicator.as_str(),
                row.period.as_str(),
                row.dimension.as_str(),
                row.key.as_str(),
                row.item.as_str(),
            );
            let entry = by_name[&id];
            let old = row.refs - items[entry];
            let counted = match (old > 0, row.refs > 0) {
                (false, true) => 1,
                (true, false) => -1,
                _ => 0,
            };
            if counted != 0 {
                *sums.entry(entry.0.clone()).or_default() += counted;
            }
        }
    }
    sums.retain(|_, v| *v != 0);
    if sums.is_empty() {
        return Ok(vec![]);
    }
    let mut columns = KeyColumns::default();
    let mut values = Vec::new();
    for (key, value) in &sums {
        columns.push(key);
        values.push(*value);
    }
    let rows = sqlx::query!(
        r#"insert into tallies (indicator, period, dimension, key, value)
        select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])
        on conflict (indicator, period, dimension, key) do update
            set value = tallies.value + excluded.value, updated_at = now()
        returning indicator, period, dimension, value"#,
        &columns.indicators,
        &columns.periods,
        &columns.dimensions,
        &columns.keys,
        &values,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut totals: Vec<TotalChange> = rows
        .into_iter()
        .filter(|r| r.dimension.is_empty())
        .map(|r| TotalChange { code: r.indicator, period: r.period, value: r.value })
        .collect();
    totals.sort_by(|a, b| (code_rank(&a.code), &a.period).cmp(&(code_rank(&b.code), &b.period)));
    Ok(totals)
}

fn code_rank(code: &str) -> usize {
    Code::ALL.iter().position(|c| c.as_str() == code).unwrap_or(usize::MAX)
}

/// Stores every rejection of the batch; returns their reasons.
async fn insert_rejections(tx: &mut PgConnection, messages: &[Message]) -> Result<Vec<Reason>, sqlx::Error> {
    let (seen, replayed) = already_rejected(tx, messages).await?;
    let mut reasons = Vec::new();
    let mut details = Vec::new();
    let mut routing_keys = Vec::new();
    let mut headers = Vec::new();
    let mut bodies = Vec::new();
    let mut sizes = Vec::new();
    let mut hashes = Vec::new();
    let mut truncated = Vec::new();
    let mut indexes: Vec<Option<i32>> = Vec::new();
    let mut replays: Vec<Option<i64>> = Vec::new();
    for message in messages {
        let replay_of = crate::broker::replay_of(&message.headers);
        for rejection in &message.decoded.rejections {
            let hash = hex::encode(Sha256::digest(&rejection.raw));
            let index = rejection.index.map(|i| i as i32);
            let routing_key = sanitize(&message.routing_key);
            // A stored rejection points only to a rejection that exists (the insert below).
            let stored_replay_of = replay_of.filter(|id| replayed.contains(id));
            if message.maybe_applied && seen.contains(&(hash.clone(), routing_key.clone(), index, stored_replay_of)) {
                continue;
            }
            let whole = rejection.raw.len() > MAX_BODY;
            let kept = if whole { &rejection.raw[..KEPT_PREFIX] } else { &rejection.raw[..] };
            reasons.push(rejection.reason);
            details.push(sanitize(&rejection.detail));
            routing_keys.push(routing_key);
            headers.push(message.headers.to_string());
            bodies.push(kept.to_vec());
            sizes.push(rejection.raw.len() as i64);
            hashes.push(hash);
            truncated.push(whole);
            indexes.push(index);
            replays.push(replay_of);
        }
    }
    if reasons.is_empty() {
        return Ok(reasons);
    }
    let reason_texts: Vec<String> = reasons.iter().map(|r| r.as_str().to_owned()).collect();
    sqlx::query!(
        r#"insert into rejections
            (reason, detail, routing_key, headers, body, size, sha256, truncated, batch_index, replay_of)
        select r, d, rk, h::json, b, s, sh, t, bi, (select id from rejections where id = ro)
        from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::int8[], $7::text[], $8::bool[],
            $9::int4[], $10::int8[]) as u(r, d, rk, h, b, s, sh, t, bi, ro)"#,
        &reason_texts,
        &details,
        &routing_keys,
        &headers,
        &bodies,
        &sizes,
        &hashes,
        &truncated,
        &indexes as &[Option<i32>],
        &replays as &[Option<i64>],
    )
    .execute(&mut *tx)
    .await?;
    Ok(reasons)
}

/// The stored rejections (hash, routing key, batch index, the rejection a replay came
/// from) that messages which may have been applied before could repeat, and which of the
/// rejections their replay headers name exist.
async fn already_rejected(tx: &mut PgConnection, messages: &[Message]) -> Result<(Seen, HashSet<i64>), sqlx::Error> {
    let maybe_applied = || messages.iter().filter(|m| m.maybe_applied && !m.decoded.rejections.is_empty());
    let hashes: Vec<String> = maybe_applied()
        .flat_map(|m| m.decoded.rejections.iter().map(|r| hex::encode(Sha256::digest(&r.raw))))
        .collect();
    if hashes.is_empty() {
        return Ok((HashSet::new(), HashSet::new()));
    }
    let rows = sqlx::query!(
        "select sha256, routing_key, batch_index, replay_of from rejections where sha256 = any($1::text[])",
        &hashes
    )
    .fetch_all(&mut *tx)
    .await?;
    let seen = rows.into_iter().map(|r| (r.sha256, r.routing_key, r.batch_index, r.replay_of)).collect();
    let named: Vec<i64> = maybe_applied().filter_map(|m| crate::broker::replay_of(&m.headers)).collect();
    let replayed = sqlx::query_scalar!("select id from rejections where id = any($1::int8[])", &named)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    Ok((seen, replayed))
}

/// Stored rejections, by body hash, routing key, index in the batch and `replay_of`.
type Seen = HashSet<(String, String, Option<i32>, Option<i64>)>;

/// Announces the changed totals on [`TALLY_CHANNEL`], delivered at commit.
pub(super) async fn notify(tx: &mut PgConnection, totals: &[TotalChange]) -> Result<(), sqlx::Error> {
    let mut chunks: Vec<Vec<&TotalChange>> = vec![];
    let mut size = 0;
    for total in totals {
        if chunks.is_empty() || size > NOTIFY_CHUNK {
            chunks.push(vec![]);
            size = 0;
        }
        size += 64 + total.code.len() + total.period.len();
        chunks.last_mut().expect("a chunk").push(total);
    }
    for chunk in chunks {
        let payload = serde_json::to_string(&chunk).expect("totals serialize");
        sqlx::query!("select pg_notify($1, $2)", TALLY_CHANNEL, payload).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Rejection counts by reason, for logs.
pub fn count_reasons(reasons: &[Reason]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for reason in reasons {
        *counts.entry(reason.as_str()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_literal_quotes_every_item_and_escapes_quotes_and_backslashes() {
        let items = [r#"["x","1"]"#.to_owned(), r"a\b".to_owned(), String::new(), "{é,}".to_owned()];

        assert_eq!(array_literal(&items), r#"{"[\"x\",\"1\"]","a\\b","","{é,}"}"#);
    }
}
