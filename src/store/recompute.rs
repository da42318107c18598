//! Rebuilding every tally from the current records, under the same lock as batches.

use sqlx::PgPool;

use super::APPLY_LOCK;
use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::batch::{TotalChange, apply_delta_in, notify};
use crate::indicators::tally::Delta;
use crate::records::Record;

/// Replaces every tally with the values computed from the stored current records.
/// Returns the number of records counted.
pub async fn recompute(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", APPLY_LOCK).execute(&mut *tx).await?;
    let rows = sqlx::query_scalar!(r#"select record::text as "record!" from records where record is not null"#)
        .fetch_all(&mut *tx)
        .await?;
    let mut delta = Delta::default();
    for text in &rows {
        let record: Record = serde_json::from_str(text)
            .map_err(|e| sqlx::Error::Protocol(format!("stored record cannot be read: {e}")))?;
        delta.add(&record, 1);
    }
    delta.prune();
    let before = totals(&mut tx).await?;
    sqlx::query!("delete from tally_items").execute(&mut *tx).await?;
    sqlx::query!("delete from tallies").execute(&mut *tx).await?;
    apply_delta_in(&mut tx, delta).await?;
    // Dashboards hear of every total that recompute changed (a vanished total is now 0).
    let after = totals(&mut tx).await?;
    let changed: Vec<TotalChange> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k).copied().unwrap_or(0) != after.get(*k).copied().unwrap_or(0))
        .map(|(code, period)| TotalChange {
            code: code.clone(),
            period: period.clone(),
            value: after.get(&(code.clone(), period.clone())).copied().unwrap_or(0),
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    notify(&mut tx, &changed).await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Every stored total, by (indicator, period).
async fn totals(tx: &mut PgConnection) -> Result<BTreeMap<(String, String), i64>, sqlx::Error> {
    let rows =
        sqlx::query!("select indicator, period, value from tallies where dimension = ''").fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().map(|r| ((r.indicator, r.period), r.value)).collect())
}
