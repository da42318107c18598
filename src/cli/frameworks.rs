//! `frameworks load|list|show|remove`: the indicator definitions in the database.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::app::migrate;
use crate::config::Settings;
use crate::framework::{DEFAULT_ID, Framework, document};
use crate::store::{self, frameworks, recompute};

/// Reads and checks a framework document; the error names the file.
fn read(file: &Path) -> anyhow::Result<(Framework, String)> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?;
    let framework = document::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((framework, text))
}

/// Checks `file` and, unless `check_only`, stores it as its framework's next version and
/// rebuilds that framework's tallies.
pub async fn load(settings: &Settings, file: &Path, check_only: bool) -> anyhow::Result<()> {
    let (framework, text) = read(file)?;
    let (id, indicators) = (framework.id.clone(), framework.indicators.len());
    if check_only {
        println!("{}: framework {id}, {indicators} indicator(s): valid.", file.display());
        return Ok(());
    }
    let pool = migrate(settings).await?;
    let loaded = recompute::load(&pool, framework, &text).await?;
    println!(
        "Loaded framework {} version {} ({} indicator(s)); its tallies were rebuilt from {} current record(s).",
        loaded.id, loaded.version, loaded.indicators, loaded.records
    );
    Ok(())
}

/// Prints each framework loaded, at its current version, as JSON Lines.
pub async fn list(settings: &Settings) -> anyhow::Result<()> {
    let pool = migrate(settings).await?;
    let current = frameworks::read(&pool).await?;
    for loaded in &current.loaded {
        let framework = &loaded.framework;
        let line = json!({
            "id": framework.id,
            "title": framework.title,
            "years": [framework.years.0, framework.years.1],
            "default": framework.id == DEFAULT_ID,
            "version": loaded.version,
            "loaded_at": loaded.loaded_at,
            "sha256": loaded.sha256,
            "indicators": framework.indicators.iter().map(|i| i.code.as_str()).collect::<Vec<_>>(),
        });
        println!("{line}");
    }
    Ok(())
}

/// Prints a framework's document (its current version, or `version`) exactly as loaded,
/// and lists its versions on standard error; for the current version, also the `when`s
/// that fail on current records.
pub async fn show(settings: &Settings, id: &str, version: Option<i32>) -> anyhow::Result<()> {
    let pool = migrate(settings).await?;
    let text = frameworks::document_text(&pool, id, version).await?.ok_or_else(|| match version {
        Some(version) => anyhow::anyhow!("framework {id} has no version {version}"),
        None => anyhow::anyhow!("no framework {id} is loaded"),
    })?;
    print!("{text}");
    let mut current_version = None;
    for row in frameworks::versions(&pool, Some(id)).await? {
        let current = if row.current { " (current)" } else { "" };
        if row.current {
            current_version = Some(row.version);
        }
        eprintln!("version {}{current}: loaded {}, sha256 {}", row.version, row.loaded_at.to_rfc3339(), row.sha256);
    }
    if version.is_some() && version != current_version {
        return Ok(());
    }
    let loaded = frameworks::read(&pool).await?;
    let Some(loaded) = loaded.get(id) else { return Ok(()) };
    let failures = frameworks::when_failures(&pool, &loaded.framework).await?;
    if failures.is_empty() {
        eprintln!("when: no condition fails on a current record");
    }
    for f in failures {
        eprintln!(
            "when: indicator {}: the condition fails on {} current record(s), which it does not count; first {}: {}",
            f.indicator, f.records, f.first_key, f.first_error
        );
    }
    Ok(())
}

/// Removes a framework and its tallies; its versions are kept.
pub async fn remove(settings: &Settings, id: &str) -> anyhow::Result<()> {
    anyhow::ensure!(id != DEFAULT_ID, "{DEFAULT_ID} is the default framework and cannot be removed");
    let pool = migrate(settings).await?;
    let mut tx = pool.begin().await?;
    store::lock(&mut tx).await?;
    let removed = frameworks::remove(&mut tx, id).await?;
    tx.commit().await?;
    anyhow::ensure!(removed, "no framework {id} is loaded");
    println!("Removed framework {id} and its values; its versions are kept (frameworks show {id} --version N).");
    Ok(())
}
