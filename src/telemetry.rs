//! Logging: `tracing` with structured fields, as text for people or JSON for collectors;
//! errors as one line.

use std::error::Error;
use std::io::IsTerminal;

use sqlx::migrate::MigrateError;
use tracing_subscriber::EnvFilter;

/// The levels unless `RUST_LOG` says otherwise. The sqlx pool's own ERROR, a new connection
/// refused by `store::primary::refuse_standby`, is expected while a list of hosts is
/// followed: `store::primary` logs what an operator needs.
const LEVELS: &str = "info,sqlx=warn,sqlx_core::pool::inner=off,lapin=off";

/// Installs the global subscriber once; `RUST_LOG` overrides the default `info` level.
/// Colours only on a terminal: a log file or a pipe gets plain text.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(LEVELS));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// An error and its causes on one line, joined by `: `. A cause whose text the line already
/// ends with is left out: many errors repeat their source in their own message.
pub fn one_line(error: &(dyn Error + 'static)) -> String {
    let mut line = String::new();
    let mut next = Some(error);
    while let Some(error) = next {
        // PostgreSQL's errors end with the line of the server's source code that raised them
        // (`role "x" does not exist at line 768`), which means nothing to whoever reads the
        // message; their source is that same error again.
        // A failed migration's message holds its database error, source line included.
        let (text, source) = match (error.downcast_ref::<sqlx::Error>(), error.downcast_ref::<MigrateError>()) {
            (Some(sqlx::Error::Database(db)), _) => (format!("error returned from database: {}", db.message()), None),
            (_, Some(MigrateError::Execute(e))) => ("while executing migrations".to_owned(), Some(e as &dyn Error)),
            (_, Some(MigrateError::ExecuteMigration(e, version))) => {
                (format!("while executing migration {version}"), Some(e as &dyn Error))
            }
            _ => (error.to_string(), error.source()),
        };
        if line.is_empty() {
            line = text;
        } else if !text.is_empty() && !line.ends_with(&text) {
            line = format!("{line}: {text}");
        }
        next = source;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_cause_repeated_by_its_error_is_written_once() {
        let io = std::io::Error::other("connection refused");
        let error = anyhow::Error::new(io).context("IO error: connection refused").context("cannot connect to X");
        assert_eq!(one_line(error.as_ref()), "cannot connect to X: IO error: connection refused");
    }
}
