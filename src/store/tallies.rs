//! The `tallies` and `tally_items` tables: every indicator value, by period and breakdown,
//! moved by each batch's delta; and the announcement of changed totals to dashboards.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgConnection;

use crate::indicators::rules::TallyKey;
use crate::indicators::tally::Delta;

/// The PostgreSQL channel on which changed totals are announced.
pub const TALLY_CHANNEL: &str = "ecpat_tallies";
/// NOTIFY payloads must stay under 8000 bytes.
const NOTIFY_CHUNK: usize = 7000;

/// A total that changed, as announced to dashboards.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TotalChange {
    pub framework: String,
    pub code: String,
    pub period: String,
    pub value: i64,
}

/// A distinct item's tally and name, as text: (framework, indicator, period, dimension,
/// key, item).
type ItemId<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str);

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
    fn push(&mut self, key: &TallyKey) {
        self.frameworks.push(key.framework.clone());
        self.indicators.push(key.indicator.clone());
        self.periods.push(key.period.clone());
        self.dimensions.push(key.dimension.clone());
        self.keys.push(key.key.clone());
    }
}

/// Moves the distinct items' reference counts, turns the items that started or stopped
/// counting into sums, and adds the sums to the tallies. Returns the changed totals.
pub async fn apply(tx: &mut PgConnection, delta: Delta) -> Result<Vec<TotalChange>, sqlx::Error> {
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
            r#"insert into tally_items (framework, indicator, period, dimension, key, item, refs)
            select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[])
            on conflict (framework, indicator, period, dimension, key, item)
                do update set refs = tally_items.refs + excluded.refs
            returning framework, indicator, period, dimension, key, item, refs"#,
            &columns.frameworks,
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
            .map(|k| {
                (
                    (
                        k.0.framework.as_str(),
                        k.0.indicator.as_str(),
                        k.0.period.as_str(),
                        k.0.dimension.as_str(),
                        k.0.key.as_str(),
                        k.1.as_str(),
                    ),
                    k,
                )
            })
            .collect();
        for row in &rows {
            let id = (
                row.framework.as_str(),
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
        r#"insert into tallies (framework, indicator, period, dimension, key, value)
        select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[])
        on conflict (framework, indicator, period, dimension, key) do update
            set value = tallies.value + excluded.value, updated_at = now()
        returning framework, indicator, period, dimension, value"#,
        &columns.frameworks,
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
        .map(|r| TotalChange { framework: r.framework, code: r.indicator, period: r.period, value: r.value })
        .collect();
    totals.sort();
    Ok(totals)
}

/// Announces the changed totals on [`TALLY_CHANNEL`], delivered at commit.
pub async fn notify(tx: &mut PgConnection, totals: &[TotalChange]) -> Result<(), sqlx::Error> {
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
