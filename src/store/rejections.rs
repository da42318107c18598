//! The `rejections` table: every message or event that could not be counted, with why.

use std::collections::HashSet;

use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::events::sanitize;
use crate::apply::Message;
use crate::envelope::{MAX_BODY, Reason};

/// How much of an oversized body is kept.
const KEPT_PREFIX: usize = 64 * 1024;

/// Stores every rejection of the batch; returns their reasons.
pub async fn insert(tx: &mut PgConnection, messages: &[Message]) -> Result<Vec<Reason>, sqlx::Error> {
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
