//! The posts the collector polls: registering them, finding them among the records,
//! choosing the due ones and keeping each poll's outcome.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;

use crate::records::post_key;

/// A tracked post, as stored.
#[derive(Clone, Debug, Serialize)]
pub struct TrackedPost {
    pub platform: String,
    pub post_id: String,
    pub member: String,
    pub published_at: DateTime<Utc>,
    pub publication_id: Option<String>,
    pub url: Option<String>,
    /// `active`, `gone`, `withdrawn` or `removed` (see the migration).
    pub status: String,
    /// `cli` or `records`.
    pub origin: String,
    pub tracked_since: DateTime<Utc>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub next_poll_at: DateTime<Utc>,
    pub last_error: Option<String>,
}

/// A post to register; its fields are already validated.
#[derive(Clone, Debug)]
pub struct NewPost {
    pub platform: String,
    pub post_id: String,
    pub member: String,
    pub published_at: DateTime<Utc>,
    pub publication_id: Option<String>,
    pub url: Option<String>,
}

/// What one poll found for one post that stays active.
#[derive(Clone, Debug)]
pub struct Polled {
    pub post_id: String,
    pub next_poll_at: DateTime<Utc>,
    /// Why the post gave no values this time, if it did not.
    pub error: Option<String>,
}

/// Tracks a post, due at once; a post already known is updated and made active again.
pub async fn add(executor: impl PgExecutor<'_>, post: &NewPost, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into tracked_posts (platform, post_id, post_key, member, published_at, publication_id, url, origin,
            tracked_since, next_poll_at)
        values ($1, $2, $3, $4, $5, $6, $7, 'cli', $8, $8)
        on conflict (platform, post_id) do update set
            post_key = excluded.post_key, member = excluded.member, published_at = excluded.published_at,
            publication_id = excluded.publication_id, url = excluded.url, status = 'active', origin = 'cli',
            tracked_since = excluded.tracked_since, next_poll_at = excluded.next_poll_at, last_error = null",
        post.platform,
        post.post_id,
        post_key(&post.platform, &post.post_id),
        post.member,
        post.published_at,
        post.publication_id,
        post.url,
        now
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Stops polling a post (its counted values stay). False when it was not tracked.
pub async fn remove(executor: impl PgExecutor<'_>, platform: &str, post_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query!(
        "update tracked_posts set status = 'removed' where platform = $1 and post_id = $2",
        platform,
        post_id
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Every tracked post, optionally of one status.
pub async fn list(executor: impl PgExecutor<'_>, status: Option<&str>) -> Result<Vec<TrackedPost>, sqlx::Error> {
    sqlx::query_as!(
        TrackedPost,
        "select platform, post_id, member, published_at, publication_id, url, status, origin, tracked_since,
            last_polled_at, next_poll_at, last_error
        from tracked_posts where $1::text is null or status = $1
        order by platform, post_id",
        status
    )
    .fetch_all(executor)
    .await
}

/// Tracks, due at once, every current post of `platforms` seen in a snapshot and published
/// since `oldest` (with the attributes of its latest series). Returns how many were new.
pub async fn discover(
    executor: impl PgExecutor<'_>,
    platforms: &[String],
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"insert into tracked_posts (platform, post_id, post_key, member, published_at, publication_id, url, origin,
            tracked_since, next_poll_at)
        select platform, post_id, post_key, member, published_at, publication_id, url, 'records', $3, $3
        from (
            select distinct on (record->>'platform', record->>'post_id')
                record->>'platform' as platform, record->>'post_id' as post_id, post_key,
                record->>'member' as member, (record->>'published_at')::timestamptz as published_at,
                record->>'publication_id' as publication_id, record->>'url' as url
            from records
            where record_type = 'social_post' and record is not null and post_key is not null
              and record->>'platform' = any($1::text[])
            order by record->>'platform', record->>'post_id', version_secs desc, version_nanos desc,
                version_subnanos desc
        ) as seen
        where published_at >= $2 and member is not null
        on conflict (platform, post_id) do nothing"#,
        platforms,
        oldest,
        now
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Marks `withdrawn` the active posts that a withdrawal newer than their tracking says do
/// not count (and that no newer snapshot brought back): polling them would undo it.
pub async fn mark_withdrawn(executor: impl PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "update tracked_posts t set status = 'withdrawn'
        where t.status = 'active'
          and exists (select 1 from post_withdrawals w
              where w.post_key = t.post_key and w.version_secs >= extract(epoch from t.tracked_since)::bigint)
          and not exists (select 1 from records r where r.post_key = t.post_key and r.record is not null)"
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// The active posts of a platform that are due at `now` and published since `oldest`.
pub async fn due(
    executor: impl PgExecutor<'_>,
    platform: &str,
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<TrackedPost>, sqlx::Error> {
    sqlx::query_as!(
        TrackedPost,
        "select platform, post_id, member, published_at, publication_id, url, status, origin, tracked_since,
            last_polled_at, next_poll_at, last_error
        from tracked_posts
        where status = 'active' and platform = $1 and next_poll_at <= $3 and published_at >= $2
        order by next_poll_at, post_id",
        platform,
        oldest,
        now
    )
    .fetch_all(executor)
    .await
}

/// Records a poll of some posts of a platform: when they are due next, and any error.
pub async fn record_polls(
    executor: impl PgExecutor<'_>,
    platform: &str,
    polled: &[Polled],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let ids: Vec<String> = polled.iter().map(|p| p.post_id.clone()).collect();
    let next: Vec<DateTime<Utc>> = polled.iter().map(|p| p.next_poll_at).collect();
    let errors: Vec<Option<String>> = polled.iter().map(|p| p.error.clone()).collect();
    sqlx::query!(
        "update tracked_posts t set last_polled_at = $2, next_poll_at = p.next_poll_at, last_error = p.error
        from unnest($3::text[], $4::timestamptz[], $5::text[]) as p (post_id, next_poll_at, error)
        where t.platform = $1 and t.post_id = p.post_id",
        platform,
        now,
        &ids,
        &next,
        &errors as &[Option<String>]
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Marks posts `gone`: the platform says they no longer exist. They are not polled again.
pub async fn mark_gone(
    executor: impl PgExecutor<'_>,
    platform: &str,
    post_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update tracked_posts set status = 'gone', last_polled_at = $2, last_error = null
        where platform = $1 and post_id = any($3::text[])",
        platform,
        now,
        post_ids
    )
    .execute(executor)
    .await?;
    Ok(())
}
