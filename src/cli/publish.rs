//! `publish`: a JSON Lines file, or standard input, to the events exchange with publisher
//! confirms. A line that is not UTF-8 or not JSON is reported and skipped; the others go.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::broker::{self, LazyPublisher, routing_key_of};
use crate::config::Settings;

/// Messages published per confirm window.
const WINDOW: usize = 1000;
/// The most events in one CloudEvents batch (docs/events.md).
const MAX_BATCH: usize = 1000;
/// What Excel and Notepad put at the start of a UTF-8 file.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// Publishes a JSON Lines file (or standard input, `-`): one message per non-empty line,
/// or with `batch` > 1, lines that are JSON objects grouped into CloudEvents batches of up
/// to `batch` events (a JSON array per message; much faster to drain for a large backlog).
/// Persistent, with publisher confirms. A UTF-8 byte order mark at the start of a line is
/// dropped. Lines are not judged beyond that here (the worker rejects and keeps what is
/// invalid), except that a line that is not UTF-8 or not JSON is reported with its number
/// and skipped. Prints `published N, skipped M`; returns the number of lines published,
/// or an error when a line was skipped.
pub async fn publish(settings: &Settings, file: &Path, batch: usize) -> anyhow::Result<usize> {
    anyhow::ensure!((1..=MAX_BATCH).contains(&batch), "--batch must be between 1 and {MAX_BATCH}");
    let (input, length): (Box<dyn Read>, Option<u64>) = if file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let length = opened.metadata().ok().map(|m| m.len());
        (Box::new(opened), length)
    };
    let publisher = LazyPublisher::patient(settings, "ecpat-indicators publish");
    publisher.connect().await?;
    let mut outbox = Outbox { publisher, batch, window: vec![], grouped: vec![], published: 0, skipped: 0 };
    let progress = Progress::new(length);
    let sent = send(BufReader::new(input), &mut outbox, &progress).await;
    progress.bar.finish_and_clear();
    eprintln!("published {}, skipped {}", outbox.published, outbox.skipped);
    sent?;
    outbox.publisher.close().await;
    let skipped = outbox.skipped;
    let source = if file == Path::new("-") { "standard input".to_owned() } else { file.display().to_string() };
    anyhow::ensure!(skipped == 0, "{skipped} line(s) of {source} were skipped (reported above)");
    Ok(outbox.published)
}

/// Reads every line into `outbox` and publishes them all.
async fn send(mut input: impl BufRead, outbox: &mut Outbox, progress: &Progress) -> anyhow::Result<()> {
    let mut buffer = Vec::new();
    for number in 1.. {
        buffer.clear();
        let read = input.read_until(b'\n', &mut buffer).with_context(|| format!("cannot read line {number}"))?;
        if read == 0 {
            break;
        }
        progress.bar.inc(if progress.bytes { read as u64 } else { 1 });
        match parse_line(&buffer) {
            Line::Blank => {}
            Line::Bad(reason) => {
                outbox.skipped += 1;
                progress.bar.suspend(|| eprintln!("line {number}: {reason}; skipped"));
            }
            Line::Good(text, value) => outbox.push(text, value).await.with_context(|| {
                format!("publishing stopped at line {number}, after {} confirmed line(s)", outbox.published)
            })?,
        }
    }
    outbox
        .flush(true)
        .await
        .with_context(|| format!("publishing stopped at the end, after {} confirmed line(s)", outbox.published))
}

/// One line of the input, judged.
#[derive(Debug, PartialEq)]
enum Line {
    /// Empty or only white space: not a message.
    Blank,
    /// Not UTF-8 or not JSON: why.
    Bad(String),
    /// Its text (without the line end and byte order mark) and its JSON.
    Good(String, Value),
}

fn parse_line(bytes: &[u8]) -> Line {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    let bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
    if bytes.trim_ascii().is_empty() {
        return Line::Blank;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Line::Bad(format!("not UTF-8 (invalid byte at column {})", e.valid_up_to() + 1)),
    };
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Line::Good(text.to_owned(), value),
        // serde_json counts lines within the line (always line 1): keep only its column.
        Err(e) => {
            let message = e.to_string();
            let what = message.split(" at line ").next().unwrap_or(&message);
            Line::Bad(format!("not JSON ({what} at column {})", e.column()))
        }
    }
}

/// Messages on their way: grouped into batches if asked, published a window at a time.
struct Outbox {
    publisher: LazyPublisher,
    batch: usize,
    /// Routing key, body, and the number of lines it carries.
    window: Vec<(String, Vec<u8>, usize)>,
    grouped: Vec<String>,
    /// Lines the broker has confirmed.
    published: usize,
    /// Lines that were not UTF-8 or not JSON.
    skipped: usize,
}

impl Outbox {
    async fn push(&mut self, text: String, value: Value) -> Result<(), broker::BrokerError> {
        if self.batch > 1 && value.is_object() {
            self.grouped.push(text);
            if self.grouped.len() == self.batch {
                self.group();
            }
        } else {
            self.window.push((routing_key_of(&value), text.into_bytes(), 1));
        }
        self.flush(false).await
    }

    /// One message of the grouped lines: a JSON array of them (a lone line stays as it is).
    fn group(&mut self) {
        let lines = std::mem::take(&mut self.grouped);
        let count = lines.len();
        let body =
            if count == 1 { lines.into_iter().next().expect("one line") } else { format!("[{}]", lines.join(",")) };
        self.window.push((broker::routing_key_for(&body), body.into_bytes(), count));
    }

    /// Publishes the window when it is full, or with `all` whatever is left.
    async fn flush(&mut self, all: bool) -> Result<(), broker::BrokerError> {
        if all && !self.grouped.is_empty() {
            self.group();
        }
        let due = self.window.len() >= WINDOW || (all && !self.window.is_empty());
        if !due {
            return Ok(());
        }
        let messages: Vec<(String, Vec<u8>)> = self.window.iter().map(|(k, b, _)| (k.clone(), b.clone())).collect();
        self.publisher.publish(&messages).await?;
        self.published += self.window.iter().map(|(_, _, lines)| lines).sum::<usize>();
        self.window.clear();
        Ok(())
    }
}

/// A progress bar on standard error when it is a terminal (in bytes of a file, or lines of
/// standard input); hidden otherwise.
struct Progress {
    bar: ProgressBar,
    bytes: bool,
}

impl Progress {
    fn new(length: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: ProgressBar::hidden(), bytes: false };
        }
        let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
        bar.set_style(Self::style(length.is_some()));
        Progress { bar, bytes: length.is_some() }
    }

    /// Bytes of a file, with the time left; lines of standard input, whose end is unknown.
    fn style(bytes: bool) -> ProgressStyle {
        let template = if bytes { "{bar:40} {bytes}/{total_bytes} ({eta} left)" } else { "{spinner} {pos} lines read" };
        ProgressStyle::with_template(template).expect("a valid template")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_progress_styles_are_valid_templates() {
        Progress::style(true);
        Progress::style(false);
    }

    #[test]
    fn a_line_is_read_without_its_byte_order_mark_and_line_end() {
        let line = parse_line(b"\xEF\xBB\xBF{\"a\": 1}\r\n");

        assert_eq!(line, Line::Good("{\"a\": 1}".into(), serde_json::json!({"a": 1})));
    }

    #[test]
    fn a_line_that_is_not_utf8_or_not_json_says_why_and_where() {
        assert_eq!(
            parse_line(b"{\"title\": \"caf\xE9\"}\n"),
            Line::Bad("not UTF-8 (invalid byte at column 15)".into())
        );
        assert_eq!(parse_line(b"{\"a\": oops}"), Line::Bad("not JSON (expected value at column 7)".into()));
        assert_eq!(parse_line(b" \t\r\n"), Line::Blank);
        assert_eq!(parse_line(b"\xEF\xBB\xBF\n"), Line::Blank);
    }
}
