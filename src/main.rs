//! The `ecpat-indicators` binary: parses the command line, starts logging, dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ecpat_indicators::config::Settings;
use ecpat_indicators::store::read::REJECTIONS_LIMIT;
use ecpat_indicators::{app, cli, collector, telemetry};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

#[derive(Parser)]
#[command(version, about = "Counts ECPAT France's strategic indicators from RabbitMQ events into PostgreSQL.")]
struct Cli {
    /// Folder holding default.toml (and optionally local.toml).
    #[arg(long, env = "ECPAT_CONFIG_DIR", default_value = "config")]
    config_dir: PathBuf,
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
    /// Rebuild every tally from the stored records.
    Recompute,
    /// List or replay rejected messages.
    Rejections {
        #[command(subcommand)]
        action: RejectionAction,
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
        /// unknown_type or invalid_data.
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config_dir)?;
    telemetry::init(&settings.log.format);
    match cli.command {
        Command::Run => app::run(settings, shutdown_signal()?).await?,
        Command::Migrate => {
            app::migrate(&settings).await?;
        }
        Command::Publish { file, batch } => {
            cli::publish(&settings, &file, batch).await?;
        }
        Command::Recompute => {
            cli::recompute(&settings).await?;
        }
        Command::Rejections { action: RejectionAction::List { limit } } => {
            cli::list_rejections(&settings, limit).await?
        }
        Command::Rejections { action: RejectionAction::Replay { reason, id, dry_run: false } } => {
            cli::replay_rejections(&settings, reason.as_deref(), id).await?;
        }
        Command::Rejections { action: RejectionAction::Replay { reason, id, dry_run: true } } => {
            cli::preview_replay(&settings, reason.as_deref(), id).await?;
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
