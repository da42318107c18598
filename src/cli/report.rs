//! `report`: the report for donors written to a file, as HTML, XLSX or PDF (PDF is the HTML
//! page printed by headless Chromium).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

use crate::app::migrate;
use crate::config::Settings;
use crate::framework::DEFAULT_ID;
use crate::indicators::Period;
use crate::report::{self, Lang, html, xlsx};
use crate::store::frameworks;

/// The formats `report` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Xlsx,
    Pdf,
}

/// How long Chromium may take to print the page.
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

/// Writes the report of `framework` (the default one unless given) for `period` to `out`.
pub async fn report(
    settings: &Settings,
    framework: Option<&str>,
    period: &str,
    lang: &str,
    format: Format,
    out: &Path,
) -> anyhow::Result<()> {
    let lang = Lang::parse(lang).ok_or_else(|| anyhow::anyhow!("--lang must be fr or en, not {lang:?}"))?;
    let chromium = if format == Format::Pdf { Some(chromium()?) } else { None };
    let pool = migrate(settings).await?;
    let loaded = frameworks::read(&pool).await?;
    let id = framework.unwrap_or(DEFAULT_ID);
    let loaded = loaded.get(id).ok_or_else(|| anyhow::anyhow!("no framework {id} is loaded"))?;
    let framework = &loaded.framework;
    let period = Period::parse(period, framework.years).ok_or_else(|| {
        let (first, last) = framework.years;
        anyhow::anyhow!("--period must be all, a year from 1990 to 2100 or the span {first}-{last}, not {period:?}")
    })?;
    let report = report::gather(&pool, framework, &period, lang)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the report: {e}"))?;
    match format {
        Format::Html => write(out, html::render(&report, None).as_bytes())?,
        Format::Xlsx => write(out, &xlsx::render(&report).context("cannot write the workbook")?)?,
        Format::Pdf => print(&chromium.expect("found above"), &html::render(&report, None), out).await?,
    }
    println!("Wrote the report of {} for {} to {}.", framework.id, period.as_str(), out.display());
    Ok(())
}

fn write(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(out, bytes).with_context(|| format!("cannot write {}", out.display()))
}

/// Chromium: `ECPAT_CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` on
/// the PATH.
fn chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ECPAT_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    anyhow::bail!(
        "a PDF is printed by Chromium, which is not installed (set ECPAT_CHROMIUM to its path), \
         or write --format html and print it from a browser"
    )
}

/// Prints `page` to the PDF `out` with headless Chromium.
async fn print(chromium: &Path, page: &str, out: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
    let html = dir.path().join("report.html");
    std::fs::write(&html, page).context("cannot write the page to print")?;
    let out = std::path::absolute(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut command = tokio::process::Command::new(chromium);
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().with_context(|| format!("cannot start {}", chromium.display()))?;
    let output = tokio::time::timeout(PRINT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("Chromium did not print the report within {} s", PRINT_TIMEOUT.as_secs()))??;
    anyhow::ensure!(
        output.status.success() && out.is_file(),
        "Chromium could not print the report: {}",
        String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("no message")
    );
    Ok(())
}
