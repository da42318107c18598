//! The series of social posts a batch needs: a post's attributes follow its latest
//! snapshot, which only all its series tell (see `ledger`), so a batch that names a post
//! needs every stored series of it.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::{JoinedRow, Wanted};
use crate::ledger::{Before, Current};
use crate::records::RecordKey;
use crate::store::known::Known;

/// Reads, before the apply lock, every series of the posts whose series this worker does
/// not all know, if the generation is still `generation` (else none is kept).
pub(super) async fn preload_series(
    tx: &mut PgConnection,
    wanted: &Wanted,
    known: &Known,
    generation: i64,
) -> Result<HashMap<String, Vec<(RecordKey, Current)>>, sqlx::Error> {
    let posts: Vec<String> = wanted.posts.iter().filter(|post| known.series(post).is_none()).cloned().collect();
    if posts.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query_as!(
        JoinedRow,
        r#"select g.n as "generation!", r.record_type as "record_type?", r.record_key as "record_key?", r.post_key,
            r.version_secs as "version_secs?", r.version_nanos as "version_nanos?",
            r.version_subnanos as "version_subnanos?", r.version_source as "version_source?",
            r.version_id as "version_id?", r.event_seq as "event_seq?", r.record::text as record
        from apply_generation g
        left join records r on r.post_key = any($1::text[])"#,
        &posts,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut series: HashMap<String, Vec<(RecordKey, Current)>> = HashMap::new();
    if rows.first().is_none_or(|row| row.generation != generation) {
        return Ok(series);
    }
    for post in posts {
        series.insert(post, vec![]);
    }
    for stored in rows.into_iter().filter_map(JoinedRow::stored) {
        let (key, current) = stored.current()?;
        if let Some(of_post) = current.post_key.as_ref().and_then(|post| series.get_mut(post)) {
            of_post.push((key, current));
        }
    }
    Ok(series)
}

/// Every stored series of each of `posts` after the batch: those read before it (every
/// series of the posts it names, see [`load_before`]) and those it wrote.
pub(super) fn series_of(
    posts: &[String],
    before: &Before,
    written: &[(RecordKey, Current)],
) -> Vec<(String, Vec<RecordKey>)> {
    let mut series: HashMap<&String, Vec<RecordKey>> = posts.iter().map(|post| (post, vec![])).collect();
    for (key, current) in before.records.iter().chain(written.iter().map(|(key, current)| (key, current))) {
        if let Some(keys) = current.post_key.as_ref().and_then(|post| series.get_mut(post)) {
            keys.push(key.clone());
        }
    }
    series
        .into_iter()
        .map(|(post, mut keys)| {
            keys.sort_unstable();
            keys.dedup();
            (post.clone(), keys)
        })
        .collect()
}
