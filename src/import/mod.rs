//! Registers (CSV or `.xlsx` spreadsheets that M&E staff keep) to events: [`read`] turns a
//! file into rows of cells, [`rows`] turns each row into a checked event of one record type.
//! Pure: publishing is the `import` command's (`cli/import.rs`).

pub mod read;
pub mod rows;
