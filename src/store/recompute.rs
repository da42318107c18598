//! Rebuilding every tally from the current records, under the same lock as batches.

use sqlx::PgPool;

use super::APPLY_LOCK;
use super::batch::apply_delta_in;
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
    sqlx::query!("delete from tally_items").execute(&mut *tx).await?;
    sqlx::query!("delete from tallies").execute(&mut *tx).await?;
    apply_delta_in(&mut tx, delta).await?;
    tx.commit().await?;
    Ok(rows.len())
}
