//! Writes `examples/un-submissions.xlsx`, the example register of UN and regional
//! submissions (not a test): `cargo run --example registers`. Its cells are as a
//! spreadsheet holds them: a date cell, a date typed as a plain number (an Excel serial), a
//! date as text, booleans as a cell and as words, lists separated by `;`. Import it with
//! `ecpat-indicators import examples/un-submissions.xlsx --type un_submission`.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

fn main() -> Result<(), XlsxError> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/un-submissions.xlsx");
    let mut workbook = Workbook::new();
    // A fixed creation date, so that writing it again gives the same file.
    let created = ExcelDateTime::from_ymd(2026, 12, 1)?;
    workbook.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = workbook.add_worksheet();
    sheet.set_name("Soumissions")?;
    let header =
        ["submission_id", "mechanism", "country", "submitted_on", "cycle", "in_alliance", "members", "document"];
    for (column, name) in (0..).zip(header) {
        sheet.write_string(0, column, name)?;
        sheet.set_column_width(column, 22)?;
    }
    let date = Format::new().set_num_format("dd/mm/yyyy");
    sheet.write_string(1, 0, "sub-upr-fra-2018")?;
    sheet.write_string(1, 1, "upr")?;
    sheet.write_string(1, 2, "fr")?;
    sheet.write_datetime_with_format(1, 3, ExcelDateTime::from_ymd(2018, 1, 15)?, &date)?;
    sheet.write_string(1, 4, "UPR-3")?;
    sheet.write_boolean(1, 5, true)?;
    sheet.write_string(1, 6, "ecpat-france")?;
    sheet.write_string(1, 7, "A/HRC/WG.6/29/FRA/3")?;
    sheet.write_string(2, 0, "sub-crc-fra-2020")?;
    sheet.write_string(2, 1, "crc")?;
    sheet.write_string(2, 2, "FR")?;
    // 2020-03-10, pasted as a number.
    sheet.write_number(2, 3, 43900)?;
    sheet.write_string(2, 4, "CRC/C/FRA/6-7")?;
    sheet.write_string(2, 5, "non")?;
    sheet.write_string(2, 6, "ecpat-france;ecpat-belgique")?;
    sheet.write_string(3, 0, "sub-coe-bel-2020")?;
    sheet.write_string(3, 1, "council_of_europe")?;
    sheet.write_string(3, 2, "be")?;
    sheet.write_string(3, 3, "2020-11-05")?;
    sheet.write_string(3, 5, "oui")?;
    sheet.write_string(3, 6, "ecpat-belgique")?;
    workbook.save(path)?;
    println!("wrote {path}");
    Ok(())
}
