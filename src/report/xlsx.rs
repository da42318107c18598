//! The report as a workbook: one sheet of indicators (value, baseline, target, progress),
//! one of breakdowns, one of years and one of evidence, each a plain table that a
//! spreadsheet can filter.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{Lang, Report, counted_text};

/// The workbook's bytes.
pub fn render(report: &Report) -> Result<Vec<u8>, XlsxError> {
    let fr = report.lang == Lang::Fr;
    let label = |fr_text: &'static str, en_text: &'static str| if fr { fr_text } else { en_text };
    let bold = Format::new().set_bold();
    let mut workbook = Workbook::new();

    let sheet = workbook.add_worksheet().set_name(label("Indicateurs", "Indicators"))?;
    let as_of = report.as_of.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    sheet.write_string(0, 0, format!("{} — {} {}", report.title, label("période", "period"), report.period))?;
    sheet.write_string(1, 0, format!("{} {as_of}", label("Données au", "Data as of")))?;
    let headers = [
        label("objectif", "objective"),
        "code",
        label("indicateur", "indicator"),
        label("période", "period"),
        label("valeur", "value"),
        label("référence", "baseline"),
        label("cible", "target"),
        label("progrès (%)", "progress (%)"),
    ];
    header(sheet, 3, &headers, &bold)?;
    let mut row = 4;
    for objective in &report.objectives {
        for indicator in &objective.indicators {
            sheet.write_string(row, 0, &objective.title)?;
            sheet.write_string(row, 1, &indicator.code)?;
            sheet.write_string(row, 2, &indicator.title)?;
            sheet.write_string(row, 3, &report.period)?;
            sheet.write_number(row, 4, indicator.value as f64)?;
            optional(sheet, row, 5, indicator.baseline)?;
            optional(sheet, row, 6, indicator.target)?;
            optional(sheet, row, 7, indicator.progress())?;
            row += 1;
        }
    }
    sheet.autofit();

    let indicators = || report.objectives.iter().flat_map(|o| &o.indicators);
    let sheet = workbook.add_worksheet().set_name(label("Ventilations", "Breakdowns"))?;
    header(sheet, 0, &["code", label("dimension", "dimension"), label("clé", "key"), label("valeur", "value")], &bold)?;
    let mut row = 1;
    for indicator in indicators() {
        for (dimension, keys) in &indicator.breakdowns {
            for (key, value) in keys {
                sheet.write_string(row, 0, &indicator.code)?;
                sheet.write_string(row, 1, dimension)?;
                sheet.write_string(row, 2, key)?;
                sheet.write_number(row, 3, *value as f64)?;
                row += 1;
            }
        }
    }
    sheet.autofit();

    let sheet = workbook.add_worksheet().set_name(label("Années", "Years"))?;
    header(sheet, 0, &["code", label("année", "year"), label("valeur", "value"), label("cible", "target")], &bold)?;
    let mut row = 1;
    for indicator in indicators() {
        for year in &indicator.years {
            sheet.write_string(row, 0, &indicator.code)?;
            sheet.write_string(row, 1, &year.year)?;
            sheet.write_number(row, 2, year.value as f64)?;
            optional(sheet, row, 3, year.target)?;
            row += 1;
        }
    }
    sheet.autofit();

    let sheet = workbook.add_worksheet().set_name(label("Preuves", "Evidence"))?;
    let headers = [
        "code",
        label("type", "record type"),
        label("clé", "key"),
        label("compte pour", "counts for"),
        "source",
        "id",
        label("courant", "current"),
    ];
    header(sheet, 0, &headers, &bold)?;
    let mut row = 1;
    for indicator in indicators() {
        for record in &indicator.evidence {
            for event in &record.events {
                sheet.write_string(row, 0, &indicator.code)?;
                sheet.write_string(row, 1, record.record_type.as_str())?;
                sheet.write_string(row, 2, record.key.to_string())?;
                sheet.write_string(row, 3, counted_text(&record.counted))?;
                sheet.write_string(row, 4, &event.source)?;
                sheet.write_string(row, 5, &event.id)?;
                sheet.write_boolean(row, 6, event.current)?;
                row += 1;
            }
        }
    }
    sheet.autofit();
    workbook.save_to_buffer()
}

fn header(sheet: &mut Worksheet, row: u32, names: &[&str], bold: &Format) -> Result<(), XlsxError> {
    for (column, name) in names.iter().enumerate() {
        sheet.write_string_with_format(row, column as u16, *name, bold)?;
    }
    Ok(())
}

fn optional(sheet: &mut Worksheet, row: u32, column: u16, value: Option<i64>) -> Result<(), XlsxError> {
    if let Some(value) = value {
        sheet.write_number(row, column, value as f64)?;
    }
    Ok(())
}
