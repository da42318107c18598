//! The `tallies` and `tally_items` tables: every indicator value, by period and breakdown,
//! moved by each batch's delta; and the announcement of changed totals to dashboards.

use serde::Serialize;
use sqlx::PgConnection;

use crate::framework::Frameworks;
use crate::indicators::rules::TallyKey;
use crate::indicators::tally::Delta;

/// The PostgreSQL channel on which changed totals are announced.
pub const TALLY_CHANNEL: &str = "ecpat_tallies";
/// NOTIFY payloads must stay under 8000 bytes (rows are added to a part until it passes
/// this size; one row is at most a few hundred bytes).
const NOTIFY_CHUNK: usize = 7000;

/// A total that changed, as announced to dashboards.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TotalChange {
    pub framework: String,
    pub code: String,
    pub period: String,
    pub value: i64,
}

/// A tally row as a batch left it (zero included): what the API's copy of the values in
/// memory is moved by. Sent as an array, `[framework, indicator, period, dimension, key,
/// value]`, to keep notifications small.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(from = "RowTuple", into = "RowTuple")]
pub struct RowChange {
    pub framework: String,
    pub indicator: String,
    pub period: String,
    pub dimension: String,
    pub key: String,
    pub value: i64,
}

type RowTuple = (String, String, String, String, String, i64);

impl From<RowTuple> for RowChange {
    fn from((framework, indicator, period, dimension, key, value): RowTuple) -> RowChange {
        RowChange { framework, indicator, period, dimension, key, value }
    }
}

impl From<RowChange> for RowTuple {
    fn from(r: RowChange) -> RowTuple {
        (r.framework, r.indicator, r.period, r.dimension, r.key, r.value)
    }
}

impl RowChange {
    /// The total it is, if it is one (no dimension).
    pub fn total(&self) -> Option<TotalChange> {
        self.dimension.is_empty().then(|| TotalChange {
            framework: self.framework.clone(),
            code: self.indicator.clone(),
            period: self.period.clone(),
            value: self.value,
        })
    }
}

/// What one notification on [`TALLY_CHANNEL`] says, after the sending transaction's id
/// and a space: a part of the rows it changed (a transaction's parts are delivered one
/// after the other, in order), or that every value must be read again (a rebuild, a
/// framework loaded or removed).
#[derive(Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Announcement {
    Rows { part: usize, parts: usize, rows: Vec<RowChange> },
    Reload,
}

/// Columns of tally keys, for `unnest`.
#[derive(Default)]
struct KeyColumns {
    frameworks: Vec<String>,
    indicators: Vec<String>,
    periods: Vec<String>,
    dimensions: Vec<String>,
    keys: Vec<String>,
}

impl KeyColumns {
    fn push(&mut self, key: TallyKey) {
        self.frameworks.push(key.framework);
        self.indicators.push(key.indicator);
        self.periods.push(key.period);
        self.dimensions.push(key.dimension);
        self.keys.push(key.key);
    }
}

/// Moves the tallies by `delta`, in one statement, and returns the changed rows, sorted.
///
/// A distinct item is stored under each year with a reference count: the number of
/// records that name it there. It counts in a year while that count is above zero, and
/// under `all` and its framework's span while it counts in at least one of their years;
/// those are not stored but follow from the years (`delta` holds items under their year
/// only, as a [`Tally`](crate::indicators::tally::Tally) adds them up; `frameworks` give
/// the spans):
/// 1. the items' counts in their years move (`moved`); an item whose count rose from zero
///    starts counting, one whose count fell to zero stops (`yearly`: its count before is
///    `refs - last_delta`, the batch's change);
/// 2. for each item that starts or stops counting in a year, the number of years it
///    counted in before the batch, under `all` and in its span, is read (the statement
///    reads the table as it was before the statement), and with the batch's starts and
///    stops tells whether it starts or stops counting there (`across`);
/// 3. those and the sums are added up per tally (`added`) and added to the tallies.
pub async fn apply(
    tx: &mut PgConnection,
    delta: Delta,
    frameworks: &Frameworks,
) -> Result<Vec<RowChange>, sqlx::Error> {
    let Delta { sums, items } = delta;
    if sums.is_empty() && items.is_empty() {
        return Ok(vec![]);
    }
    let mut item_keys = KeyColumns::default();
    let (mut names, mut refs) = (Vec::with_capacity(items.len()), Vec::with_capacity(items.len()));
    for ((key, item), change) in items {
        debug_assert!(key.period.parse::<i32>().is_ok(), "an item under {}, not a year", key.period);
        debug_assert!(
            frameworks.loaded.iter().any(|l| l.framework.id == key.framework),
            "an item of {}, not loaded",
            key.framework
        );
        item_keys.push(key);
        names.push(item);
        refs.push(change);
    }
    let mut sum_keys = KeyColumns::default();
    let mut amounts = Vec::with_capacity(sums.len());
    for (key, amount) in sums {
        sum_keys.push(key);
        amounts.push(amount);
    }
    let span_frameworks: Vec<&str> = frameworks.loaded.iter().map(|l| l.framework.id.as_str()).collect();
    let firsts: Vec<i32> = frameworks.loaded.iter().map(|l| l.framework.years.0).collect();
    let lasts: Vec<i32> = frameworks.loaded.iter().map(|l| l.framework.years.1).collect();
    let rows = sqlx::query_as!(
        RowChange,
        r#"with moved as (
            insert into tally_items (framework, indicator, period, dimension, key, item, refs, last_delta)
            select f, i, p, d, k, it, r, r
            from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[])
                as u(f, i, p, d, k, it, r)
            on conflict (item, key, dimension, period, indicator, framework)
                do update set refs = tally_items.refs + excluded.refs, last_delta = excluded.refs
            returning framework, indicator, period, dimension, key, item, refs, last_delta
        ), yearly as (
            select framework as f, indicator as i, period as p, dimension as d, key as k, item as it,
                case when refs > 0 and refs - last_delta <= 0 then 1::int8
                     when refs <= 0 and refs - last_delta > 0 then -1::int8 else 0::int8 end as v
            from moved
        ), changed as (
            select y.f, y.i, y.d, y.k, y.it, s.first, s.last, sum(y.v)::int8 as all_v,
                coalesce(sum(y.v) filter (where y.p::int4 between s.first and s.last), 0)::int8 as span_v
            from yearly as y
            join unnest($14::text[], $15::int4[], $16::int4[]) as s(f, first, last) on s.f = y.f
            where y.v <> 0
            group by y.f, y.i, y.d, y.k, y.it, s.first, s.last
        ), across as (
            select c.f, c.i, c.d, c.k, c.first, c.last, c.all_v, c.span_v, b.all_before, b.span_before
            from changed as c
            cross join lateral (
                select count(*) as all_before,
                    count(*) filter (where t.period::int4 between c.first and c.last) as span_before
                from tally_items as t
                where t.item = c.it and t.key = c.k and t.dimension = c.d and t.indicator = c.i
                    and t.framework = c.f and t.refs > 0
            ) as b
        ), counted as (
            select f, i, p, d, k, v from yearly where v <> 0
            union all
            select f, i, 'all', d, k,
                case when all_before = 0 and all_v > 0 then 1::int8
                     when all_before > 0 and all_before + all_v <= 0 then -1::int8 else 0::int8 end
            from across
            union all
            select f, i, first || '-' || last, d, k,
                case when span_before = 0 and span_v > 0 then 1::int8
                     when span_before > 0 and span_before + span_v <= 0 then -1::int8 else 0::int8 end
            from across
        ), added as (
            select f, i, p, d, k, sum(v)::int8 as v
            from (select * from counted
                  union all
                  select * from unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::int8[])
                      as s(f, i, p, d, k, v)) as changes
            group by f, i, p, d, k
            having sum(v) <> 0
        )
        insert into tallies (framework, indicator, period, dimension, key, value)
        select f, i, p, d, k, v from added
        on conflict (framework, indicator, period, dimension, key) do update
            set value = tallies.value + excluded.value, updated_at = now()
        returning framework, indicator, period, dimension, key, value"#,
        &item_keys.frameworks,
        &item_keys.indicators,
        &item_keys.periods,
        &item_keys.dimensions,
        &item_keys.keys,
        &names,
        &refs,
        &sum_keys.frameworks,
        &sum_keys.indicators,
        &sum_keys.periods,
        &sum_keys.dimensions,
        &sum_keys.keys,
        &amounts,
        &span_frameworks as &[&str],
        &firsts,
        &lasts,
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut changed = rows;
    changed.sort();
    Ok(changed)
}

/// Announces the changed rows (maybe none) on [`TALLY_CHANNEL`], delivered at commit, in parts of
/// less than [`NOTIFY_CHUNK`] bytes, each prefixed with the transaction's id (in one
/// statement: one round trip whatever the number of parts).
pub async fn notify(tx: &mut PgConnection, rows: &[RowChange]) -> Result<(), sqlx::Error> {
    // No row: one empty part, which still moves every listener's version.
    let mut chunks: Vec<Vec<RowChange>> = vec![];
    if rows.is_empty() {
        chunks.push(vec![]);
    }
    let mut size = 0;
    for row in rows {
        if chunks.is_empty() || size > NOTIFY_CHUNK {
            chunks.push(vec![]);
            size = 0;
        }
        size += 40 + row.framework.len() + row.indicator.len() + row.period.len() + row.dimension.len() + row.key.len();
        chunks.last_mut().expect("a chunk").push(row.clone());
    }
    let parts = chunks.len();
    let payloads: Vec<String> = chunks
        .into_iter()
        .enumerate()
        .map(|(part, rows)| serde_json::to_string(&Announcement::Rows { part, parts, rows }).expect("rows serialize"))
        .collect();
    send(tx, &payloads).await
}

/// Announces that every value must be read again, delivered at commit.
pub async fn notify_reload(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    send(tx, &[serde_json::to_string(&Announcement::Reload).expect("serializes")]).await
}

async fn send(tx: &mut PgConnection, payloads: &[String]) -> Result<(), sqlx::Error> {
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"select count(pg_notify($1, txid_current()::text || ' ' || payload)) as "sent!"
        from unnest($2::text[]) as parts(payload)"#,
        TALLY_CHANNEL,
        payloads
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(())
}

/// A notification read: the sending transaction's id and what it says.
pub fn parse(payload: &str) -> Option<(u64, Announcement)> {
    let (xid, json) = payload.split_once(' ')?;
    Some((xid.parse().ok()?, serde_json::from_str(json).ok()?))
}
