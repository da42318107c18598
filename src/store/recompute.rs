//! Rebuilding tallies from the current records, under the same lock as batches: every
//! framework's on demand (`recompute`) or once after a migration that changed stored
//! records asked for it in `pending_recompute`; one framework's when it is loaded.

use anyhow::Context;
use sqlx::{PgConnection, PgPool};

use super::frameworks;
use super::tallies;
use crate::framework::{Framework, Frameworks, Loaded, document};
use crate::indicators::tally::{Delta, Tally};
use crate::records::Record;

/// Records decoded and counted at a time: the rebuild holds one such slice of records, and
/// the tallies, in memory.
const SLICE: usize = 10_000;

/// Replaces every framework's tallies with the values computed from the stored current
/// records. Returns the number of records counted.
pub async fn recompute(pool: &PgPool) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    super::lock(&mut tx).await?;
    let frameworks = frameworks::current(&mut tx).await?;
    let counted = rebuild(&mut tx, &frameworks).await?;
    // Whatever a migration asked for is done.
    sqlx::query!("delete from pending_recompute").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(counted)
}

/// Rebuilds every tally if a migration asked for it; returns the number of records counted
/// if it did. Run by `migrate`, before any batch of the new version is applied.
pub async fn if_pending(pool: &PgPool) -> anyhow::Result<Option<usize>> {
    // Looked up first without the lock: nearly always there is nothing to do, and every
    // command starts with a migrate.
    if !sqlx::query_scalar!(r#"select exists (select from pending_recompute) as "pending!""#).fetch_one(pool).await? {
        return Ok(None);
    }
    let mut tx = pool.begin().await?;
    super::lock(&mut tx).await?;
    let reasons =
        sqlx::query_scalar!("select reason from pending_recompute order by reason").fetch_all(&mut *tx).await?;
    if reasons.is_empty() {
        // Another process rebuilt them meanwhile.
        return Ok(None);
    }
    tracing::info!(reasons = reasons.join("; "), "Rebuilding every tally from the current records after a migration.");
    let frameworks = frameworks::current(&mut tx).await?;
    let counted = rebuild(&mut tx, &frameworks).await?;
    sqlx::query!("delete from pending_recompute").execute(&mut *tx).await?;
    tx.commit().await?;
    tracing::info!(records = counted, "Tallies rebuilt.");
    Ok(Some(counted))
}

/// What loading a framework did.
#[derive(Debug)]
pub struct Loading {
    pub id: String,
    pub version: i32,
    pub indicators: usize,
    pub records: usize,
}

/// Stores `text`, a framework document already read as `framework`, as the framework's
/// next version, and rebuilds its tallies, in one transaction under the apply lock: the
/// batches before it counted by the old version, the batches after it by the new one.
pub async fn load(pool: &PgPool, framework: Framework, text: &str) -> anyhow::Result<Loading> {
    let mut tx = pool.begin().await?;
    super::lock(&mut tx).await?;
    let loading = load_locked(&mut tx, framework, text).await?;
    tx.commit().await?;
    Ok(loading)
}

/// [`load`], in a transaction that holds the apply lock.
async fn load_locked(tx: &mut PgConnection, framework: Framework, text: &str) -> anyhow::Result<Loading> {
    let version = frameworks::store(&mut *tx, &framework, text).await?;
    let indicators = framework.indicators.len();
    let id = framework.id.clone();
    let only = Frameworks {
        generation: 0,
        loaded: vec![Loaded { framework, version, loaded_at: chrono::Utc::now(), sha256: String::new() }],
    };
    let records = rebuild(&mut *tx, &only).await?;
    Ok(Loading { id, version, indicators, records })
}

/// Loads the shipped default framework if no framework is loaded (a new database, or one
/// from before frameworks were kept in the database).
pub async fn load_default_if_none(pool: &PgPool) -> anyhow::Result<Option<Loading>> {
    if frameworks::any(pool).await? {
        return Ok(None);
    }
    let framework = document::parse(crate::framework::DEFAULT_TEXT).context("the shipped framework")?;
    let mut tx = pool.begin().await?;
    super::lock(&mut tx).await?;
    if frameworks::any(&mut *tx).await? {
        // Another process loaded it meanwhile.
        return Ok(None);
    }
    let loading = load_locked(&mut tx, framework, crate::framework::DEFAULT_TEXT).await?;
    tx.commit().await?;
    Ok(Some(loading))
}

/// Under the apply lock: replaces the tallies of `frameworks` with the values computed
/// from the current records, and tells every process to read the values again. Returns
/// the number of records counted.
pub async fn rebuild(tx: &mut PgConnection, frameworks: &Frameworks) -> anyhow::Result<usize> {
    let ids: Vec<String> = frameworks.loaded.iter().map(|l| l.framework.id.clone()).collect();
    let rows = sqlx::query_scalar!(r#"select record::text as "record!" from records where record is not null"#)
        .fetch_all(&mut *tx)
        .await?;
    let mut delta = Delta::default();
    for slice in rows.chunks(SLICE) {
        let records = slice
            .iter()
            .map(|text| serde_json::from_str::<Record>(text))
            .collect::<Result<Vec<Record>, _>>()
            .context("a stored record cannot be read")?;
        let mut tally = Tally::new(frameworks);
        for record in &records {
            tally.add(record, 1);
        }
        delta.merge(tally.into_delta());
    }
    delta.prune();
    sqlx::query!("delete from tally_items where framework = any($1)", &ids).execute(&mut *tx).await?;
    sqlx::query!("delete from tallies where framework = any($1)", &ids).execute(&mut *tx).await?;
    tallies::apply(&mut *tx, delta, frameworks).await?;
    // Every process reads every value again once this commits (the streams hear of every
    // total that changed).
    tallies::notify_reload(&mut *tx).await?;
    Ok(rows.len())
}
