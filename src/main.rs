//! The `ecpat-indicators` binary: parses the command line, starts logging, dispatches.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ecpat_indicators::config::Settings;
use ecpat_indicators::records::RecordType;
use ecpat_indicators::store::read::REJECTIONS_LIMIT;
use ecpat_indicators::{app, cli, collector, telemetry};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The configuration folder when none is given; unlike a given one, it need not exist.
const CONFIG_DIR: &str = "config";

#[derive(Parser)]
#[command(version, about = "Counts ECPAT France's strategic indicators from RabbitMQ events into PostgreSQL.")]
struct Cli {
    /// Folder holding local.toml (and optionally default.toml), which override the built-in
    /// defaults; relative paths in the settings are relative to it [default: ./config].
    #[arg(long, env = "ECPAT_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// On an error, show each cause on its own line, and a backtrace.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, declare the topology, consume and serve the HTTP API.
    Run,
    /// Apply pending migrations (creating the database if needed).
    Migrate,
    /// Publish a JSON Lines file of CloudEvents (`-` for standard input), with confirms.
    /// Lines that are not UTF-8 or not JSON are reported and skipped (exit code 1).
    Publish {
        file: PathBuf,
        /// Events per message: above 1, JSON objects are sent as CloudEvents batches of up
        /// to this many (up to 1000; faster to drain for a large backlog).
        #[arg(long, default_value_t = 1)]
        batch: usize,
    },
    /// Import a register (CSV or .xlsx, one record per row, columns named after the
    /// record's fields) as events of one record type, with confirms. Every row is checked
    /// first: any invalid row is reported and nothing is published (exit code 1).
    Import {
        file: PathBuf,
        /// The record type of every row: publication, un_submission, capacity_training, ...
        #[arg(long = "type", value_name = "TYPE", value_parser = cli::importable_type)]
        record_type: RecordType,
        /// Check every row and print the id each row's event would have; publish nothing.
        #[arg(long)]
        dry_run: bool,
        /// Publish the valid rows even when some are invalid (still reported, exit code 1).
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Rebuild every framework's tallies from the stored records.
    Recompute,
    /// Load, list, show or remove the frameworks that define the indicators.
    Frameworks {
        #[command(subcommand)]
        action: FrameworkAction,
    },
    /// List or replay rejected messages.
    Rejections {
        #[command(subcommand)]
        action: RejectionAction,
    },
    /// Write the report of a framework for a period (HTML, XLSX, or PDF with Chromium).
    Report {
        /// The framework's id (default: the default framework).
        #[arg(long)]
        framework: Option<String>,
        /// `all`, a year, or the framework's span (e.g. 2018-2021).
        #[arg(long, default_value = "all")]
        period: String,
        /// `fr` or `en`.
        #[arg(long, default_value = "fr")]
        lang: String,
        #[arg(long, value_enum)]
        format: cli::report::Format,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Poll the social platforms for the tracked posts and publish metric snapshots.
    Collect,
    /// Register, list or stop tracking social posts for the collector.
    Track {
        #[command(subcommand)]
        action: TrackAction,
    },
}

#[derive(Subcommand)]
enum FrameworkAction {
    /// Check a framework document (TOML) and store it as its framework's next version; the
    /// framework's values are rebuilt at once, and every worker counts by it from its next
    /// batch.
    Load {
        file: PathBuf,
        /// Only check the document: say what is wrong, or that it is valid; store nothing.
        #[arg(long)]
        check: bool,
    },
    /// Print the frameworks loaded, one JSON object per line.
    List,
    /// Print a framework's document exactly as loaded (and its versions on standard error).
    Show {
        id: String,
        /// This version instead of the current one.
        #[arg(long)]
        version: Option<i32>,
    },
    /// Remove a framework and its values (its versions are kept).
    Remove { id: String },
}

#[derive(Subcommand)]
enum TrackAction {
    /// Track a post (again, if it was removed or gone); it is polled at once.
    Add(collector::track::AddArgs),
    /// Print the tracked posts as JSON Lines.
    List {
        /// Only posts with this status: active, gone, withdrawn or removed.
        #[arg(long, value_parser = collector::track::known_status)]
        status: Option<String>,
    },
    /// Stop polling a post; the values already counted stay.
    Remove { platform: String, post_id: String },
}

#[derive(Subcommand)]
enum RejectionAction {
    /// Print the newest rejections as JSON Lines.
    List {
        /// How many, from 1 to 1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(REJECTIONS_LIMIT))]
        limit: i64,
    },
    /// Publish rejected messages again, each once (all not yet replayed, or filtered).
    Replay {
        /// Only rejections with this reason: too_large, not_json, invalid_envelope,
        /// unknown_type, invalid_data or unauthorized.
        #[arg(long, value_parser = cli::known_reason)]
        reason: Option<String>,
        /// Only this rejection.
        #[arg(long)]
        id: Option<i64>,
        /// Print the rejections that would be replayed, and publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs the subcommand; an error is printed as one line (every cause, each once) and the
/// exit code is 1.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let detailed = cli.verbose || std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
    if cli.verbose {
        // SAFETY: no other thread runs yet (the runtime starts below), so nothing reads the
        // environment meanwhile. Errors capture a backtrace from now on.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "1") };
    }
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(dispatch(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if detailed => {
            eprintln!("error: {e:?}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", telemetry::one_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Loads the settings, starts logging and runs the subcommand.
async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let settings = match &cli.config_dir {
        Some(dir) if !dir.is_dir() => anyhow::bail!("the configuration folder {} does not exist", dir.display()),
        Some(dir) => Settings::load(dir)?,
        None => Settings::load(Path::new(CONFIG_DIR))?,
    };
    telemetry::init(&settings.log.format);
    match cli.command {
        Command::Run => app::run(settings, shutdown_signal()?).await?,
        Command::Migrate => {
            app::migrate(&settings).await?;
        }
        Command::Publish { file, batch } => {
            cli::publish(&settings, &file, batch).await?;
        }
        Command::Import { file, record_type, dry_run, skip_invalid } => {
            cli::import(&settings, &file, record_type, cli::ImportOptions { dry_run, skip_invalid }).await?;
        }
        Command::Recompute => {
            cli::recompute(&settings).await?;
        }
        Command::Frameworks { action } => match action {
            FrameworkAction::Load { file, check } => cli::frameworks::load(&settings, &file, check).await?,
            FrameworkAction::List => cli::frameworks::list(&settings).await?,
            FrameworkAction::Show { id, version } => cli::frameworks::show(&settings, &id, version).await?,
            FrameworkAction::Remove { id } => cli::frameworks::remove(&settings, &id).await?,
        },
        Command::Rejections { action: RejectionAction::List { limit } } => {
            cli::list_rejections(&settings, limit).await?
        }
        Command::Rejections { action: RejectionAction::Replay { reason, id, dry_run: false } } => {
            cli::replay_rejections(&settings, reason.as_deref(), id).await?;
        }
        Command::Rejections { action: RejectionAction::Replay { reason, id, dry_run: true } } => {
            cli::preview_replay(&settings, reason.as_deref(), id).await?;
        }
        Command::Report { framework, period, lang, format, out } => {
            cli::report::report(&settings, framework.as_deref(), &period, &lang, format, &out).await?;
        }
        Command::Collect => collector::run(settings, shutdown_signal()?).await?,
        Command::Track { action: TrackAction::Add(args) } => collector::track::add(&settings, &args).await?,
        Command::Track { action: TrackAction::List { status } } => {
            collector::track::list(&settings, status.as_deref()).await?;
        }
        Command::Track { action: TrackAction::Remove { platform, post_id } } => {
            collector::track::remove(&settings, &platform, &post_id).await?;
        }
    }
    Ok(())
}

/// Turns true on the first SIGTERM or SIGINT.
fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (sender, receiver) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("Shutdown requested; finishing the batch in hand.");
        let _ = sender.send(true);
    });
    Ok(receiver)
}
