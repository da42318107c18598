//! The one-shot subcommands: `publish`, `import`, `recompute`, `rejections list|replay`,
//! `frameworks load|list|show|remove`, `report`.

pub mod frameworks;
mod import;
mod publish;
mod rejections;
pub mod report;

use tracing::info;

pub use import::{ImportOptions, import, importable_type};
pub use publish::publish;
pub use rejections::{known_reason, list_rejections, preview_replay, replay_rejections};

use crate::app::migrate;
use crate::config::Settings;
use crate::store::recompute;

/// Rebuilds every tally from the stored records.
pub async fn recompute(settings: &Settings) -> anyhow::Result<usize> {
    let pool = migrate(settings).await?;
    let records = recompute::recompute(&pool).await?;
    info!(records, "Recomputed every tally.");
    Ok(records)
}
