//! The indicator catalogue (`config/indicators.toml`, built into the binary, or a file
//! that replaces it): titles and optional yearly targets.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::Code;

/// One indicator's description.
#[derive(Clone, Debug, Deserialize)]
pub struct Entry {
    pub code: Code,
    pub objective: String,
    pub title_fr: String,
    pub title_en: String,
    /// Target per period (`"2021"` or `"all"`), when one was set.
    #[serde(default)]
    pub targets: BTreeMap<String, i64>,
}

/// All 13 entries, in the order of docs/indicators.md.
#[derive(Clone, Debug)]
pub struct Catalogue {
    entries: Vec<Entry>,
}

#[derive(Deserialize)]
struct File {
    indicator: Vec<Entry>,
}

/// The catalogue built into the binary.
const BUILT_IN: &str = include_str!("../../config/indicators.toml");

impl Catalogue {
    /// Reads and checks the catalogue (the file at `path`, or the built-in one): every code
    /// exactly once, with its objective.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Self::parse(BUILT_IN) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the indicator catalogue {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("the indicator catalogue {} is invalid: {e}", path.display()))
    }

    /// Parses and checks a catalogue's text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: File = toml::from_str(text)?;
        let mut entries = Vec::with_capacity(Code::ALL.len());
        for &code in Code::ALL {
            let mut found = file.indicator.iter().filter(|e| e.code == code);
            let entry =
                found.next().ok_or_else(|| anyhow::anyhow!("the catalogue has no entry for {}", code.as_str()))?;
            anyhow::ensure!(found.next().is_none(), "the catalogue has {} twice", code.as_str());
            anyhow::ensure!(
                entry.objective == code.objective(),
                "{} belongs to objective {}, not {}",
                code.as_str(),
                code.objective(),
                entry.objective
            );
            entries.push(entry.clone());
        }
        Ok(Catalogue { entries })
    }

    /// The entries in the order of docs/indicators.md.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// One indicator's entry.
    pub fn get(&self, code: Code) -> &Entry {
        self.entries.iter().find(|e| e.code == code).expect("the catalogue has every code")
    }
}
