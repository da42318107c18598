//! The `events` table: every accepted event, kept verbatim as evidence, once per
//! (`source`, `id`).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::envelope::Event;
use crate::records::{Change, RecordType};

/// An event of a batch, with the routing key of its message.
pub struct Arrived<'a> {
    pub routing_key: &'a str,
    pub event: &'a Event,
}

/// Keeps the first of each (`source`, `id`) among `events`, sorted by that pair (so that
/// concurrent inserts meet keys in one order); returns them and how many were dropped.
pub fn unique<'a>(events: impl Iterator<Item = Arrived<'a>>) -> (Vec<Arrived<'a>>, usize) {
    let mut seen = HashSet::default();
    let mut kept = Vec::new();
    let mut duplicates = 0;
    for arrived in events {
        if seen.insert((arrived.event.source.as_str(), arrived.event.id.as_str())) {
            kept.push(arrived);
        } else {
            duplicates += 1;
        }
    }
    kept.sort_by(|a, b| (&a.event.source, &a.event.id).cmp(&(&b.event.source, &b.event.id)));
    (kept, duplicates)
}

/// Inserts the events not stored yet; returns those, each with its sequence number, in the
/// order of `events`. An event that another open transaction has inserted waits for it
/// (the event key is unique): inserted if that one rolls back, a duplicate if it commits.
pub async fn insert<'a>(tx: &mut PgConnection, events: &[Arrived<'a>]) -> Result<Vec<(i64, &'a Event)>, sqlx::Error> {
    if events.is_empty() {
        return Ok(vec![]);
    }
    let mut columns = Columns::default();
    for arrived in events {
        columns.push(arrived);
    }
    let rows = sqlx::query!(
        r#"insert into events (event_key, source, id, type, time, routing_key, record_type, record_keys, record_group,
            body)
        select ek, s, i, t, tm, rk, rt, k::text[], g, b::json
        from unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::text[]) as u(ek, s, i, t, tm, rk, rt, k, g, b)
        on conflict (event_key) do nothing
        returning seq, event_key"#,
        &columns.event_keys,
        &columns.sources,
        &columns.ids,
        &columns.types,
        &columns.times,
        &columns.routing_keys,
        &columns.record_types,
        &columns.record_keys,
        &columns.groups,
        &columns.bodies,
    )
    .fetch_all(&mut *tx)
    .await?;
    let seqs: HashMap<Vec<u8>, i64> = rows.into_iter().map(|row| (row.event_key, row.seq)).collect();
    Ok(columns
        .event_keys
        .iter()
        .zip(events)
        .filter_map(|(key, arrived)| seqs.get(key).map(|&seq| (seq, arrived.event)))
        .collect())
}

/// Events as columns, for `unnest`.
#[derive(Default)]
struct Columns {
    event_keys: Vec<Vec<u8>>,
    sources: Vec<String>,
    ids: Vec<String>,
    types: Vec<String>,
    times: Vec<DateTime<Utc>>,
    routing_keys: Vec<String>,
    record_types: Vec<String>,
    record_keys: Vec<String>,
    groups: Vec<String>,
    bodies: Vec<String>,
}

impl Columns {
    fn push(&mut self, Arrived { routing_key, event }: &Arrived<'_>) {
        let (record_type, record_keys, group) = targets(event);
        self.event_keys.push(event_key(&event.source, &event.id));
        self.sources.push(event.source.clone());
        self.ids.push(event.id.clone());
        self.types.push(event.event_type.as_str().to_owned());
        self.times.push(event.time.to_utc());
        self.routing_keys.push(sanitize(routing_key));
        self.record_types.push(record_type.as_str().to_owned());
        self.record_keys.push(array_literal(&record_keys));
        self.groups.push(group);
        self.bodies.push(event.raw.clone());
    }
}

/// What an event is a version of: its record type and keys, as stored with it, and its
/// group (the record key, or for a social post the post key), which the evidence API
/// looks events up by.
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

/// The SHA-256 of an event's identity: `source` and `id`, each length-prefixed.
fn event_key(source: &str, id: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    for part in [source, id] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().to_vec()
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

/// Text columns cannot hold NUL; routing keys are the only unchecked text stored.
pub fn sanitize(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
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
