//! The `frameworks`, `framework_versions` and `framework_generation` tables: every
//! framework document loaded, each version kept, and which version of each is current.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};

use futures::TryStreamExt;

use crate::framework::{self, Framework, Frameworks, Loaded, WhenFailures, document};
use crate::records::Record;

/// Why the frameworks could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored document that this version of the service refuses.
    #[error("the framework {id} (version {version}) stored in the database cannot be read: {detail}")]
    Unreadable { id: String, version: i32, detail: String },
}

/// The frameworks to count by. Read under the apply lock, so that no batch counts by a
/// version older than one whose rebuild has committed; read again from the database only
/// when something was loaded or removed since they were last read.
pub async fn current(tx: &mut PgConnection) -> Result<Arc<Frameworks>, ReadError> {
    let generation = sqlx::query_scalar!("select generation from framework_generation").fetch_one(&mut *tx).await?;
    if let Some(frameworks) = framework::cached(generation) {
        return Ok(frameworks);
    }
    let rows = sqlx::query!(
        r#"select f.id, v.version, v.loaded_at, v.sha256, v.document
        from frameworks f join framework_versions v on v.framework = f.id and v.version = f.version
        order by f.id"#
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut loaded = Vec::with_capacity(rows.len());
    for row in rows {
        let framework = document::parse(&row.document).map_err(|e| ReadError::Unreadable {
            id: row.id.clone(),
            version: row.version,
            detail: e.to_string(),
        })?;
        loaded.push(Loaded { framework, version: row.version, loaded_at: row.loaded_at, sha256: row.sha256 });
    }
    let frameworks = Arc::new(Frameworks { generation, loaded });
    framework::remember(Arc::clone(&frameworks));
    Ok(frameworks)
}

/// The frameworks as loaded now, for reading (without the apply lock).
pub async fn read(pool: &PgPool) -> Result<Arc<Frameworks>, ReadError> {
    let mut connection = pool.acquire().await?;
    current(&mut connection).await
}

/// The SHA-256 of a document's bytes, in hexadecimal.
pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Stores `text` (which reads as `framework`) as the framework's next version and makes
/// it current; returns the version. The caller holds the apply lock.
pub async fn store(tx: &mut PgConnection, framework: &Framework, text: &str) -> Result<i32, sqlx::Error> {
    let version = sqlx::query_scalar!(
        r#"insert into framework_versions (framework, version, sha256, document)
        select $1, coalesce(max(version), 0) + 1, $2, $3 from framework_versions where framework = $1
        returning version"#,
        framework.id,
        sha256(text),
        text
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "insert into frameworks (id, version) values ($1, $2) on conflict (id) do update set version = excluded.version",
        framework.id,
        version
    )
    .execute(&mut *tx)
    .await?;
    changed(tx).await?;
    Ok(version)
}

/// Removes a framework and its tallies (its versions are kept); false if it was not
/// loaded. The caller holds the apply lock.
pub async fn remove(tx: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query!("delete from frameworks where id = $1", id).execute(&mut *tx).await?.rows_affected();
    if removed == 0 {
        return Ok(false);
    }
    sqlx::query!("delete from tally_items where framework = $1", id).execute(&mut *tx).await?;
    sqlx::query!("delete from tallies where framework = $1", id).execute(&mut *tx).await?;
    changed(tx).await?;
    Ok(true)
}

/// Tells every worker that the frameworks changed: the next batch reads them again, and
/// every API reads the frameworks and their values again once this commits.
async fn changed(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("update framework_generation set generation = txid_current()").execute(&mut *tx).await?;
    super::tallies::notify_reload(tx).await
}

/// Whether any framework is loaded.
pub async fn any(executor: impl sqlx::PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select exists (select from frameworks) as "any!""#).fetch_one(executor).await
}

/// One stored version of a framework, without its text.
#[derive(Debug)]
pub struct VersionRow {
    pub framework: String,
    pub version: i32,
    pub loaded_at: DateTime<Utc>,
    pub sha256: String,
    /// Whether it is the framework's current version.
    pub current: bool,
}

/// Every stored version of `id` (of every framework for `None`), oldest first.
pub async fn versions(pool: &PgPool, id: Option<&str>) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as!(
        VersionRow,
        r#"select v.framework, v.version, v.loaded_at, v.sha256, (f.version is not null) as "current!"
        from framework_versions v left join frameworks f on f.id = v.framework and f.version = v.version
        where $1::text is null or v.framework = $1
        order by v.framework, v.version"#,
        id
    )
    .fetch_all(pool)
    .await
}

/// The text of a framework's version (its current one for `None`), exactly as loaded.
pub async fn document_text(pool: &PgPool, id: &str, version: Option<i32>) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select v.document from framework_versions v
        where v.framework = $1 and v.version = coalesce($2, (select version from frameworks where id = $1))"#,
        id,
        version
    )
    .fetch_optional(pool)
    .await
}

/// The indicators of `framework` whose `when` fails on current records (which they do not
/// count), read record by record.
pub async fn when_failures(pool: &PgPool, framework: &Framework) -> anyhow::Result<Vec<WhenFailures>> {
    let types: Vec<String> = framework.types_with_when().iter().map(|t| t.as_str().to_owned()).collect();
    let mut rows = sqlx::query!(
        r#"select record_type || ' ' || record_key as "record_key!", record::text as "record!" from records
        where record is not null and record_type = any($1)"#,
        &types
    )
    .fetch(pool);
    let mut failures = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let record: Record = serde_json::from_str(&row.record)
            .map_err(|e| anyhow::anyhow!("the stored record {} cannot be read: {e}", row.record_key))?;
        framework.check_when(&row.record_key, &record, &mut failures);
    }
    failures.sort_by_key(|f| framework.indicators.iter().position(|i| i.code == f.indicator));
    Ok(failures)
}
