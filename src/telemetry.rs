//! Logging: `tracing` with structured fields, as text for people or JSON for collectors;
//! errors as one line.

use std::error::Error;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; `RUST_LOG` overrides the default `info` level.
/// Colours only on a terminal: a log file or a pipe gets plain text.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=off"));
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
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let text = error.to_string();
        if !text.is_empty() && !line.ends_with(&text) {
            line = format!("{line}: {text}");
        }
        cause = error.source();
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
