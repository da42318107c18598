//! What the API and the CLI read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// One row of `indicator_values`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ValueRow {
    pub indicator: String,
    pub period: String,
    pub dimension: String,
    pub key: String,
    pub value: i64,
}

/// The non-zero values of every indicator of a framework for one period.
pub async fn values_for_period(
    executor: impl sqlx::PgExecutor<'_>,
    framework: &str,
    period: &str,
) -> Result<Vec<ValueRow>, sqlx::Error> {
    sqlx::query_as!(
        ValueRow,
        r#"select indicator as "indicator!", period as "period!", dimension as "dimension!", key as "key!",
            value as "value!"
        from framework_values where framework = $1 and period = $2
        order by indicator, dimension, key"#,
        framework,
        period
    )
    .fetch_all(executor)
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

/// How many rejections one listing may hold, in the API and the CLI (docs/api.md).
pub const REJECTIONS_LIMIT: std::ops::RangeInclusive<i64> = 1..=1000;

/// A message or event that could not be applied; its bytes are kept in the database.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Rejection)]
pub struct RejectionRow {
    #[schema(minimum = 1)]
    pub id: i64,
    pub received_at: DateTime<Utc>,
    #[schema(value_type = crate::envelope::Reason)]
    pub reason: String,
    /// A readable explanation; for `invalid_data` it names the field.
    pub detail: String,
    pub routing_key: String,
    /// The body's size in bytes.
    #[schema(minimum = 0)]
    pub size: i64,
    /// The event's position in its batch, or null for a whole message.
    #[schema(required = true, minimum = 0)]
    pub batch_index: Option<i32>,
    /// When it was published again by `rejections replay`, or null.
    #[schema(required = true)]
    pub replayed_at: Option<DateTime<Utc>>,
    /// For a replayed message that was rejected again: the id of the rejection it replayed;
    /// otherwise null.
    #[schema(required = true, minimum = 1)]
    pub replay_of: Option<i64>,
}

/// The total number of rejections and the newest `limit` of them.
pub async fn rejections(pool: &PgPool, limit: i64) -> Result<(i64, Vec<RejectionRow>), sqlx::Error> {
    let total = sqlx::query_scalar!(r#"select count(*) as "n!" from rejections"#).fetch_one(pool).await?;
    let items = sqlx::query_as!(
        RejectionRow,
        r#"select id, received_at, reason, detail, routing_key, size, batch_index, replayed_at, replay_of
        from rejections order by received_at desc, id desc limit $1"#,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok((total, items))
}

/// One rejection, and whether its whole body was kept (only then can it be replayed).
pub async fn rejection(pool: &PgPool, id: i64) -> Result<Option<(RejectionRow, bool)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"select id, received_at, reason, detail, routing_key, size, batch_index, replayed_at, replay_of, truncated
        from rejections where id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| {
        let row = RejectionRow {
            id: r.id,
            received_at: r.received_at,
            reason: r.reason,
            detail: r.detail,
            routing_key: r.routing_key,
            size: r.size,
            batch_index: r.batch_index,
            replayed_at: r.replayed_at,
            replay_of: r.replay_of,
        };
        (row, r.truncated)
    }))
}

/// Rejections not replayed yet and whose whole body was kept, oldest first; optionally
/// only one reason or one id.
pub async fn replayable(
    pool: &PgPool,
    reason: Option<&str>,
    id: Option<i64>,
) -> Result<Vec<RejectionRow>, sqlx::Error> {
    sqlx::query_as!(
        RejectionRow,
        r#"select id, received_at, reason, detail, routing_key, size, batch_index, replayed_at, replay_of
        from rejections
        where replayed_at is null and not truncated
          and ($1::text is null or reason = $1) and ($2::int8 is null or id = $2)
        order by id"#,
        reason,
        id
    )
    .fetch_all(pool)
    .await
}

/// A rejection to replay: its bytes and where it was published.
#[derive(Debug)]
pub struct Replayable {
    pub id: i64,
    pub routing_key: String,
    pub body: Vec<u8>,
}

/// Marks those of `ids` not replayed yet as replayed, in `tx`, and returns them: a replay
/// publishes them and then commits. Another replay running at once waits for the commit
/// and then finds them marked, so no rejection is replayed twice.
pub async fn claim_for_replay(tx: &mut PgConnection, ids: &[i64]) -> Result<Vec<Replayable>, sqlx::Error> {
    sqlx::query_as!(
        Replayable,
        r#"update rejections set replayed_at = now()
        where id = any($1::int8[]) and replayed_at is null and not truncated
        returning id, routing_key, body"#,
        ids
    )
    .fetch_all(&mut *tx)
    .await
}

/// Whether the database answers.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query!("select 1 as one").fetch_one(pool).await.is_ok()
}

/// An indicator's total for every year with data, oldest first.
pub async fn yearly_totals(
    executor: impl sqlx::PgExecutor<'_>,
    framework: &str,
    indicator: &str,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select period as "period!", value as "value!" from framework_values
        where framework = $1 and indicator = $2 and dimension = '' and length(period) = 4
        order by period"#,
        framework,
        indicator
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|r| (r.period, r.value)).collect())
}

/// Every stored total (zeros included), by framework, indicator and period.
pub async fn current_totals(pool: &PgPool) -> Result<Vec<crate::store::tallies::TotalChange>, sqlx::Error> {
    sqlx::query_as!(
        crate::store::tallies::TotalChange,
        r#"select framework, indicator as code, period, value from tallies where dimension = ''
        order by framework, indicator, period"#
    )
    .fetch_all(pool)
    .await
}

/// A current (not withdrawn) record.
#[derive(Debug)]
pub struct CurrentRecord {
    pub record_key: String,
    pub post_key: Option<String>,
    pub event_seq: i64,
    pub record: String,
}

/// Every current record of one type.
pub async fn current_records(
    executor: impl sqlx::PgExecutor<'_>,
    record_type: &str,
) -> Result<Vec<CurrentRecord>, sqlx::Error> {
    sqlx::query_as!(
        CurrentRecord,
        r#"select record_key, post_key, event_seq, record::text as "record!"
        from records where record_type = $1 and record is not null
        order by record_key"#,
        record_type
    )
    .fetch_all(executor)
    .await
}

/// A stored event, as evidence.
#[derive(Debug, Serialize)]
pub struct EvidenceEvent {
    pub seq: i64,
    pub source: String,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    #[serde(skip)]
    pub record_keys: Vec<String>,
    /// `time` as sent: `time` holds microseconds, the order of versions every digit.
    #[serde(skip)]
    pub time_text: String,
}

/// Every stored event of `record_type` in one of `groups` (record keys, or post keys for
/// social posts), oldest version first.
pub async fn events_in_groups(
    executor: impl sqlx::PgExecutor<'_>,
    record_type: &str,
    groups: &[String],
) -> Result<Vec<EvidenceEvent>, sqlx::Error> {
    sqlx::query_as!(
        EvidenceEvent,
        r#"select seq, source, id, type as event_type, time, received_at, record_keys,
            -- PostgreSQL gives no text out of a json document holding an escaped NUL
            -- anywhere: such an event is ordered by `time`, to the microsecond.
            case when strpos(body::text, '\u0000') = 0 then body->>'time' else '' end as "time_text!"
        from events where record_type = $1 and record_group = any($2::text[])
        order by time, source, id"#,
        record_type,
        groups
    )
    .fetch_all(executor)
    .await
}

/// A row of the CSV export.
#[derive(Debug)]
pub struct ExportRow {
    pub indicator: String,
    pub period: String,
    pub dimension: String,
    pub key: String,
    pub value: i64,
    pub updated_at: DateTime<Utc>,
}

/// The `framework_values` rows of a framework for one period, in the order of `codes`
/// (the framework's indicators).
pub async fn export_rows(
    pool: &PgPool,
    framework: &str,
    codes: &[String],
    period: &str,
) -> Result<Vec<ExportRow>, sqlx::Error> {
    sqlx::query_as!(
        ExportRow,
        r#"select indicator as "indicator!", period as "period!", dimension as "dimension!", key as "key!",
            value as "value!", updated_at as "updated_at!"
        from framework_values where framework = $1 and period = $3
        order by array_position($2::text[], indicator::text), dimension, key"#,
        framework,
        codes,
        period
    )
    .fetch_all(pool)
    .await
}

/// A read-only transaction that sees one snapshot of the database, and the time it was
/// taken: what a report reads, so that all its figures agree.
pub async fn snapshot(
    pool: &PgPool,
) -> Result<(sqlx::Transaction<'static, sqlx::Postgres>, DateTime<Utc>), sqlx::Error> {
    let mut tx = pool.begin_with("begin isolation level repeatable read, read only").await?;
    let as_of = sqlx::query_scalar!(r#"select now() as "now!""#).fetch_one(&mut *tx).await?;
    Ok((tx, as_of))
}

/// Every tally row, zeros included: what the API keeps in memory.
pub async fn tally_rows(
    executor: impl sqlx::PgExecutor<'_>,
) -> Result<Vec<crate::store::tallies::RowChange>, sqlx::Error> {
    sqlx::query_as!(
        crate::store::tallies::RowChange,
        "select framework, indicator, period, dimension, key, value from tallies"
    )
    .fetch_all(executor)
    .await
}

/// The transactions whose changes the current snapshot sees, as `pg_current_snapshot()`
/// writes it (`xmin:xmax:xip,...`): with [`visible`], whether a notification's changes are
/// already in what was read in that snapshot.
pub async fn visibility(executor: impl sqlx::PgExecutor<'_>) -> Result<String, sqlx::Error> {
    sqlx::query_scalar!(r#"select pg_current_snapshot()::text as "snapshot!""#).fetch_one(executor).await
}

/// Whether the transaction `xid` (as `txid_current()` gives it) had committed when the
/// snapshot `snapshot` (from [`visibility`]) was taken; `None` if `snapshot` does not read.
pub fn visible(snapshot: &str, xid: u64) -> Option<bool> {
    let mut parts = snapshot.split(':');
    let xmin: u64 = parts.next()?.parse().ok()?;
    let xmax: u64 = parts.next()?.parse().ok()?;
    let running = parts.next()?;
    if xid < xmin {
        return Some(true);
    }
    if xid >= xmax {
        return Some(false);
    }
    for id in running.split(',').filter(|s| !s.is_empty()) {
        if id.parse::<u64>().ok()? == xid {
            return Some(false);
        }
    }
    Some(true)
}
