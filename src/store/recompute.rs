//! Rebuilding every tally from the current records, under the same lock as batches: on
//! demand (`recompute`), or once after a migration that changed stored records asked for
//! it in `pending_recompute`.

use sqlx::PgPool;

use super::APPLY_LOCK;
use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::tallies::{self, TotalChange, notify};
use crate::indicators::tally::Delta;
use crate::records::Record;

/// Replaces every tally with the values computed from the stored current records.
/// Returns the number of records counted.
pub async fn recompute(pool: &PgPool) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", APPLY_LOCK).execute(&mut *tx).await?;
    let counted = rebuild(&mut tx).await?;
    tx.commit().await?;
    Ok(counted)
}

/// Rebuilds every tally if a migration asked for it; returns the number of records counted
/// if it did. Run by `migrate`, before any batch of the new version is applied.
pub async fn if_pending(pool: &PgPool) -> Result<Option<usize>, sqlx::Error> {
    // Looked up first without the lock: nearly always there is nothing to do, and every
    // command starts with a migrate.
    if !sqlx::query_scalar!(r#"select exists (select from pending_recompute) as "pending!""#).fetch_one(pool).await? {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    sqlx::query!("select pg_advisory_xact_lock($1)", APPLY_LOCK).execute(&mut *tx).await?;
    let reasons =
        sqlx::query_scalar!("select reason from pending_recompute order by reason").fetch_all(&mut *tx).await?;
    if reasons.is_empty() {
        // Another process rebuilt them meanwhile.
        return Ok(None);
    }
    tracing::info!(reasons = reasons.join("; "), "Rebuilding every tally from the current records after a migration.");
    let counted = rebuild(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(records = counted, "Tallies rebuilt.");
    Ok(Some(counted))
}

/// Under the apply lock: replaces every tally with the values computed from the current
/// records, and tells dashboards of every total that changed. Any rebuild satisfies what a
/// migration asked for.
async fn rebuild(tx: &mut PgConnection) -> Result<usize, sqlx::Error> {
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
    let before = totals(&mut *tx).await?;
    sqlx::query!("delete from tally_items").execute(&mut *tx).await?;
    sqlx::query!("delete from tallies").execute(&mut *tx).await?;
    tallies::apply(&mut *tx, delta).await?;
    // Dashboards hear of every total that recompute changed (a vanished total is now 0).
    let after = totals(&mut *tx).await?;
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
    notify(&mut *tx, &changed).await?;
    sqlx::query!("delete from pending_recompute").execute(&mut *tx).await?;
    Ok(rows.len())
}

/// Every stored total, by (indicator, period).
async fn totals(tx: &mut PgConnection) -> Result<BTreeMap<(String, String), i64>, sqlx::Error> {
    let rows =
        sqlx::query!("select indicator, period, value from tallies where dimension = ''").fetch_all(&mut *tx).await?;
    Ok(rows.into_iter().map(|r| ((r.indicator, r.period), r.value)).collect())
}
