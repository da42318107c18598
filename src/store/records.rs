//! The `records` and `post_withdrawals` tables: the current version of every record (and
//! of every series of a social post), and the latest withdrawal of every post.

use rustc_hash::FxHashSet as HashSet;

use sqlx::PgConnection;

use crate::apply::ApplyError;
use crate::envelope::{Event, Version};
use crate::ledger::{Before, Current, Plan, PostWithdrawal};
use crate::records::{Change, Record, RecordKey, RecordType};

/// Loads the current versions of everything `events` name: the records they change, and
/// for each post they withdraw or have a snapshot of, its withdrawal and every stored
/// series (a post's attributes follow its latest snapshot, which only all its series tell:
/// see `ledger`).
pub async fn load<'a>(tx: &mut PgConnection, events: impl Iterator<Item = &'a Event>) -> Result<Before, ApplyError> {
    let wanted = Wanted::of(events);
    let types: Vec<String> = wanted.records.iter().map(|key| key.record_type.as_str().to_owned()).collect();
    let keys: Vec<String> = wanted.records.iter().map(|key| key.key.clone()).collect();
    let mut before = Before::default();
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
    let by_post = if wanted.posts.is_empty() {
        vec![]
    } else {
        sqlx::query_as!(
            StoredRow,
            r#"select record_type, record_key, post_key, version_secs, version_nanos, version_subnanos, version_source,
                version_id, event_seq, record::text as record
            from records where post_key = any($1::text[])"#,
            &wanted.posts,
        )
        .fetch_all(&mut *tx)
        .await?
    };
    for row in by_key.into_iter().chain(by_post) {
        let (key, current) = row.current()?;
        before.records.insert(key, current);
    }
    if !wanted.posts.is_empty() {
        let rows = sqlx::query!(
            r#"select post_key, version_secs, version_nanos, version_subnanos, version_source, version_id, event_seq
            from post_withdrawals where post_key = any($1::text[])"#,
            &wanted.posts,
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let version = Version {
                secs: row.version_secs,
                nanos: row.version_nanos as u32,
                subnanos: row.version_subnanos,
                source: row.version_source,
                id: row.version_id,
            };
            before.post_withdrawals.insert(row.post_key, PostWithdrawal { version, event_seq: row.event_seq });
        }
    }
    Ok(before)
}

/// Writes the plan's new current versions and post withdrawals. A record is updated where
/// it was stored (it is in `before`), inserted where it was not: no upsert, whose conflict
/// check costs one more index look-up per row.
pub async fn write(tx: &mut PgConnection, plan: &Plan, before: &Before) -> Result<(), sqlx::Error> {
    let (stored, new): (Vec<_>, Vec<_>) = plan.records.iter().partition(|(key, _)| before.records.contains_key(key));
    let stored = Columns::of(&stored);
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
    let new = Columns::of(&new);
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
    write_post_withdrawals(tx, &plan.post_withdrawals).await
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

/// What a batch's new events name: the records they change, and the posts they withdraw
/// or have a snapshot of.
struct Wanted {
    /// Records other than social series (those are read with their post).
    records: Vec<RecordKey>,
    posts: Vec<String>,
}

impl Wanted {
    fn of<'a>(events: impl Iterator<Item = &'a Event>) -> Wanted {
        let mut records = HashSet::default();
        let mut posts = HashSet::default();
        for change in events.flat_map(|event| &event.changes) {
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
        Wanted { records: records.into_iter().collect(), posts: posts.into_iter().collect() }
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
    /// The row decoded; a row that does not decode is an error no retry can cure.
    fn current(self) -> Result<(RecordKey, Current), ApplyError> {
        let (record_type, record_key) = (&self.record_type, &self.record_key);
        let corrupt = |detail: String| ApplyError::Corrupt { what: format!("{record_type} {record_key}"), detail };
        let record_type = RecordType::parse(record_type).ok_or_else(|| corrupt("unknown record type".into()))?;
        let record = self
            .record
            .map(|text| serde_json::from_str::<Record>(&text).map_err(|e| corrupt(e.to_string())))
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

/// Current versions as columns, for `unnest`.
#[derive(Default)]
struct Columns {
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

impl Columns {
    fn of(records: &[&(RecordKey, Current)]) -> Columns {
        let mut columns = Columns::default();
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
