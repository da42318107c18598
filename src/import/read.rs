//! A register file to rows of cells: CSV (any of `,` `;` tab `|`, UTF-8 with or without a
//! byte order mark, or Windows-1252 as French Excel writes it) or an `.xlsx` workbook (its
//! first sheet). Cells are kept as typed as the file has them; what they mean is decided
//! by [`rows`](super::rows).

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;

/// What Excel and Notepad put at the start of a UTF-8 file.
const BYTE_ORDER_MARK: &str = "\u{feff}";
/// How every `.xlsx` (a zip archive) starts.
const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
/// How an Excel 97-2003 `.xls` (an OLE compound file) starts.
const OLE_MAGIC: &[u8] = b"\xD0\xCF\x11\xE0";
/// The delimiters a CSV file may use, in the order that breaks a tie.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// One cell, as the file gives it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Nothing, or only white space.
    Empty,
    /// Text, trimmed.
    Text(String),
    /// A number of a workbook cell.
    Number(f64),
    /// A boolean of a workbook cell.
    Bool(bool),
    /// A workbook cell formatted as a date.
    Date(NaiveDate),
}

/// One row under the header.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its number as the spreadsheet shows it: the header is row 1.
    pub number: usize,
    pub cells: Vec<Cell>,
}

/// A register: the header's column names (trimmed) and the rows that are not blank.
#[derive(Clone, Debug, PartialEq)]
pub struct Sheet {
    pub header: Vec<String>,
    pub rows: Vec<Row>,
}

/// A file that cannot be read as a register.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is not a readable CSV file: {source}")]
    Csv { path: String, source: csv::Error },
    #[error("{path} is not a readable .xlsx workbook: {source}")]
    Xlsx { path: String, source: calamine::XlsxError },
    #[error("{path} is an Excel 97-2003 .xls file: save it as .xlsx or CSV")]
    OldExcel { path: String },
    #[error("{path} has no header row: its first row must name the fields")]
    NoHeader { path: String },
}

/// Reads a register: an `.xlsx` workbook when the file is one (whatever its name), else CSV.
pub fn read(path: &Path) -> Result<Sheet, ReadError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ReadError::Io { path: name.clone(), source })?;
    let sheet = if bytes.starts_with(ZIP_MAGIC) {
        read_xlsx(bytes).map_err(|source| ReadError::Xlsx { path: name.clone(), source })?
    } else if bytes.starts_with(OLE_MAGIC) {
        return Err(ReadError::OldExcel { path: name });
    } else {
        read_csv(&decode_text(&bytes)).map_err(|source| ReadError::Csv { path: name.clone(), source })?
    };
    if sheet.header.iter().all(String::is_empty) {
        return Err(ReadError::NoHeader { path: name });
    }
    Ok(sheet)
}

/// The text of a CSV file: UTF-8 without its byte order mark, or, when the bytes are not
/// UTF-8, Windows-1252 (what French Excel writes for "CSV (séparateur: point-virgule)").
pub fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text)),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0,
    }
}

/// The delimiter of a CSV text: the candidate found most often in its first line, outside
/// quotes (`,` when none is).
pub fn sniff_delimiter(text: &str) -> u8 {
    let first_line = text.lines().next().unwrap_or("");
    let mut counts = [0usize; DELIMITERS.len()];
    let mut quoted = false;
    for byte in first_line.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = DELIMITERS.iter().position(|&d| d == byte) {
            counts[i] += 1;
        }
    }
    // The first of the most frequent: `max_by_key` would keep the last.
    let best = counts.iter().enumerate().fold(0, |best, (i, &n)| if n > counts[best] { i } else { best });
    DELIMITERS[best]
}

fn read_csv(text: &str) -> Result<Sheet, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(text))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records().enumerate();
    let header = match records.next() {
        Some((_, record)) => record?.iter().map(|name| name.trim().to_owned()).collect(),
        None => vec![],
    };
    let mut rows = vec![];
    for (index, record) in records {
        let cells: Vec<Cell> = record?.iter().map(text_cell).collect();
        push_unless_blank(&mut rows, index + 1, cells);
    }
    Ok(Sheet { header, rows })
}

fn text_cell(text: &str) -> Cell {
    let text = text.trim();
    if text.is_empty() { Cell::Empty } else { Cell::Text(text.to_owned()) }
}

fn push_unless_blank(rows: &mut Vec<Row>, number: usize, cells: Vec<Cell>) {
    if cells.iter().any(|cell| *cell != Cell::Empty) {
        rows.push(Row { number, cells });
    }
}

fn read_xlsx(bytes: Vec<u8>) -> Result<Sheet, calamine::XlsxError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes))?;
    let Some(range) = workbook.worksheet_range_at(0).transpose()? else {
        return Ok(Sheet { header: vec![], rows: vec![] });
    };
    // Rows are numbered as the spreadsheet shows them, wherever the data starts.
    let first = range.start().map_or(0, |(row, _)| row as usize);
    let mut lines = range.rows().enumerate();
    let header = match lines.next() {
        Some((_, cells)) => cells.iter().map(|cell| cell.to_string().trim().to_owned()).collect(),
        None => vec![],
    };
    let mut rows = vec![];
    for (index, cells) in lines {
        push_unless_blank(&mut rows, first + index + 1, cells.iter().map(workbook_cell).collect());
    }
    Ok(Sheet { header, rows })
}

fn workbook_cell(data: &Data) -> Cell {
    match data {
        Data::Empty => Cell::Empty,
        Data::Int(n) => Cell::Number(*n as f64),
        Data::Float(n) => Cell::Number(*n),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(date) => match date.as_datetime() {
            Some(moment) if !date.is_duration() => Cell::Date(moment.date()),
            _ => Cell::Number(date.as_f64()),
        },
        Data::String(text) | Data::DateTimeIso(text) | Data::DurationIso(text) => text_cell(text),
        Data::Error(error) => Cell::Text(error.to_string()),
    }
}

/// The date of an Excel date serial (days since 1899-12-30, as in every 1900-system
/// workbook since 1900-03-01); `None` unless it is a whole number of a plausible date.
pub fn excel_serial_date(serial: f64) -> Option<NaiveDate> {
    if serial.fract() != 0.0 || !(1.0..=2_958_465.0).contains(&serial) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(serial as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_one_the_header_line_uses_most() {
        assert_eq!(sniff_delimiter("training_id;title;held_on\nt1;a,b;2019-01-01"), b';');
        assert_eq!(sniff_delimiter("training_id,title\n"), b',');
        assert_eq!(sniff_delimiter("a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter("a|b"), b'|');
        assert_eq!(sniff_delimiter("\"a;b\",c"), b',', "quoted delimiters do not count");
        assert_eq!(sniff_delimiter("title"), b',');
    }

    #[test]
    fn text_is_utf8_without_its_byte_order_mark_or_else_windows_1252() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFtitle\n"), "title\n");
        assert_eq!(decode_text("Séminaire".as_bytes()), "Séminaire");
        assert_eq!(decode_text(b"S\xE9minaire \xE0 Lyon \x80"), "Séminaire à Lyon €");
    }

    #[test]
    fn csv_rows_are_numbered_as_the_spreadsheet_shows_them_and_blank_ones_are_left_out() {
        let sheet = read_csv(" Title ;held_on\n\"a;b\";2019-01-01\n;\n\"two\nlines\";\nx\n").unwrap();

        assert_eq!(sheet.header, ["Title", "held_on"]);
        let numbers: Vec<usize> = sheet.rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [2, 4, 5]);
        assert_eq!(sheet.rows[0].cells, [Cell::Text("a;b".into()), Cell::Text("2019-01-01".into())]);
        assert_eq!(sheet.rows[1].cells, [Cell::Text("two\nlines".into()), Cell::Empty]);
    }

    #[test]
    fn excel_serials_are_days_since_the_end_of_1899() {
        assert_eq!(excel_serial_date(43466.0), NaiveDate::from_ymd_opt(2019, 1, 1));
        assert_eq!(excel_serial_date(43466.5), None);
        assert_eq!(excel_serial_date(-3.0), None);
    }
}
