//! What the API and the CLI read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;

/// One row of `indicator_values`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ValueRow {
    pub indicator: String,
    pub period: String,
    pub dimension: String,
    pub key: String,
    pub value: i64,
}

/// The non-zero values of every indicator for one period.
pub async fn values_for_period(pool: &PgPool, period: &str) -> Result<Vec<ValueRow>, sqlx::Error> {
    sqlx::query_as!(
        ValueRow,
        r#"select indicator as "indicator!", period as "period!", dimension as "dimension!", key as "key!",
            value as "value!"
        from indicator_values where period = $1
        order by indicator, dimension, key"#,
        period
    )
    .fetch_all(pool)
    .await
}

/// Every non-zero value, sorted: what `recompute` must reproduce.
pub async fn all_values(pool: &PgPool) -> Result<Vec<ValueRow>, sqlx::Error> {
    sqlx::query_as!(
        ValueRow,
        r#"select indicator as "indicator!", period as "period!", dimension as "dimension!", key as "key!",
            value as "value!"
        from indicator_values
        order by indicator, period, dimension, key"#
    )
    .fetch_all(pool)
    .await
}

/// A stored rejection, as listed.
#[derive(Clone, Debug, Serialize)]
pub struct RejectionRow {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub detail: String,
    pub routing_key: String,
    pub size: i64,
    pub batch_index: Option<i32>,
    pub replayed_at: Option<DateTime<Utc>>,
}

/// The total number of rejections and the newest `limit` of them.
pub async fn rejections(pool: &PgPool, limit: i64) -> Result<(i64, Vec<RejectionRow>), sqlx::Error> {
    let total = sqlx::query_scalar!(r#"select count(*) as "n!" from rejections"#).fetch_one(pool).await?;
    let items = sqlx::query_as!(
        RejectionRow,
        r#"select id, received_at, reason, detail, routing_key, size, batch_index, replayed_at
        from rejections order by received_at desc, id desc limit $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok((total, items))
}

/// A rejection to replay: its bytes and where it was published.
#[derive(Debug)]
pub struct Replayable {
    pub id: i64,
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// Rejections not replayed yet and whose whole body was kept, oldest first; optionally
/// only one reason or one id.
pub async fn replayable(pool: &PgPool, reason: Option<&str>, id: Option<i64>) -> Result<Vec<Replayable>, sqlx::Error> {
    sqlx::query_as!(
        Replayable,
        r#"select id, routing_key, body from rejections
        where replayed_at is null and not truncated
          and ($1::text is null or reason = $1) and ($2::int8 is null or id = $2)
        order by id"#,
        reason,
        id
    )
    .fetch_all(pool)
    .await
}

/// Marks a rejection as replayed (published again).
pub async fn mark_replayed(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!("update rejections set replayed_at = now() where id = $1", id).execute(pool).await?;
    Ok(())
}

/// Whether the database answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query!("select 1 as one").fetch_one(pool).await.is_ok()
}

/// An indicator's total for every year with data, oldest first.
pub async fn yearly_totals(pool: &PgPool, indicator: &str) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select period as "period!", value as "value!" from indicator_values
        where indicator = $1 and dimension = '' and period <> 'all'
        order by period"#,
        indicator
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.period, r.value)).collect())
}
