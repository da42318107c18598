//! `import` through the real binary, against the real RabbitMQ and PostgreSQL with a worker
//! running: registers in CSV (UTF-8, with a byte order mark, Windows-1252) and `.xlsx`
//! become records; a bad row stops the import; the same file twice counts once; a
//! corrected file corrects; `--dry-run` and `--skip-invalid`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{TestEnv, plain_publication};

const WAIT: Duration = Duration::from_secs(30);

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name).display().to_string()
}

/// Writes `bytes` to a file of this test's own.
fn register(env: &TestEnv, name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", env.name));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Imports `file` as `record_type` with `extra` arguments.
async fn import(env: &TestEnv, file: &str, record_type: &str, extra: &[&str]) -> Output {
    let mut args = vec!["import", file, "--type", record_type];
    args.extend_from_slice(extra);
    env.cli(&args).await
}

/// A stored record's field (`None` when there is no such current record).
async fn stored(env: &TestEnv, record_type: &str, key: &str, field: &str) -> Option<String> {
    sqlx::query_scalar("select record ->> $3 from records where record_type = $1 and record_key = $2")
        .bind(record_type)
        .bind(key)
        .bind(field)
        .fetch_optional(&env.pool)
        .await
        .unwrap()
        .flatten()
}

/// Current records of a type.
async fn records(env: &TestEnv, record_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from records where record_type = $1 and record is not null")
        .bind(record_type)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// Waits until the worker has counted `expected` duplicate events.
async fn wait_for_duplicates(env: &mut TestEnv, worker: usize, expected: f64) {
    let start = Instant::now();
    loop {
        let seen = env.worker(worker).metric("ecpat_events_duplicate_total").await.unwrap_or(0.0);
        if seen == expected {
            return;
        }
        assert!(seen < expected, "more duplicates than expected: {seen} > {expected}");
        assert!(start.elapsed() < WAIT, "timed out: {seen} duplicates, expected {expected}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Proves that nothing else was published before: a sentinel event published now is
/// consumed after anything that was, and it alone is stored.
async fn assert_nothing_published(env: &TestEnv) {
    env.publish(&[plain_publication("sentinel")]).await;
    env.wait_for_counts(1, 0, WAIT).await;
    assert_eq!(records(env, "capacity_training").await, 0);
}

#[tokio::test]
async fn a_register_imported_twice_counts_once_and_a_corrected_one_corrects_its_row() {
    let mut env = TestEnv::new("import_again").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let trainings = example("trainings.csv");

    let first = import(&env, &trainings, "capacity_training", &[]).await;

    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("imported 3 rows as events; 0 invalid"), "{}", stderr(&first));
    env.wait_for_counts(3, 0, WAIT).await;
    let before = env.values().await;
    assert_eq!(env.value("ND2", "all", "", "").await, 4, "ecpat-france, -belgique, -uk and -germany");
    assert_eq!(env.value("ND2", "2019", "", "").await, 2);
    assert_eq!(env.value("ND2", "2020", "", "").await, 3, "15/10/2020 is read as a French date");

    let again = import(&env, &trainings, "capacity_training", &[]).await;

    assert!(again.status.success(), "{}", stderr(&again));
    wait_for_duplicates(&mut env, w, 3.0).await;
    env.wait_for_counts(3, 0, WAIT).await;
    assert_eq!(env.values().await, before, "the same rows are the same events: duplicates");

    let text = std::fs::read_to_string(&trainings).unwrap();
    let corrected = text.replace("2019-06-20;ecpat-france", "2019-06-20;\"ecpat-france;ecpat-luxembourg\"");
    assert_ne!(corrected, text);
    let file = register(&env, "trainings.csv", corrected.as_bytes());

    let correction = import(&env, file.to_str().unwrap(), "capacity_training", &[]).await;

    assert!(correction.status.success(), "{}", stderr(&correction));
    env.wait_for_counts(4, 0, WAIT).await;
    assert_eq!(env.value("ND2", "all", "", "").await, 5, "the corrected row is the current version");
    assert_eq!(env.value("ND2", "2019", "", "").await, 3);
    assert_eq!(records(&env, "capacity_training").await, 3, "a correction is no new record");
    std::fs::remove_file(file).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn csv_with_a_byte_order_mark_or_in_windows_1252_keeps_its_text() {
    let mut env = TestEnv::new("import_encodings").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    // Commas, a byte order mark, capitalised column names, oui/non and a list in one cell.
    let utf8 = "\u{feff}Publication_ID,Title,Scope,Countries,Contributed,Published_On\r\n\
                pub-fr,Panorama national : la France,national,fr;be,oui,2019-05-02\r\n\
                pub-global,Étude mondiale,global,,non,2020-01-10\r\n";
    // What French Excel writes: Windows-1252 and semicolons.
    let latin = "training_id;Title;held_on;beneficiaries\r\nt-lyon;Séminaire à Lyon;2019-03-15;ecpat-france\r\n";
    let cp1252: Vec<u8> = latin.chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    assert!(std::str::from_utf8(&cp1252).is_err(), "the file is not UTF-8");
    let utf8_file = register(&env, "publications.csv", utf8.as_bytes());
    let latin_file = register(&env, "trainings.csv", &cp1252);

    let publications = import(&env, utf8_file.to_str().unwrap(), "publication", &[]).await;
    let trainings = import(&env, latin_file.to_str().unwrap(), "capacity_training", &[]).await;

    assert!(publications.status.success(), "{}", stderr(&publications));
    assert!(trainings.status.success(), "{}", stderr(&trainings));
    env.wait_for_counts(3, 0, WAIT).await;
    assert_eq!(stored(&env, "capacity_training", r#"["t-lyon"]"#, "title").await.as_deref(), Some("Séminaire à Lyon"));
    assert_eq!(stored(&env, "publication", r#"["pub-global"]"#, "title").await.as_deref(), Some("Étude mondiale"));
    assert_eq!(env.value("KE2", "all", "country", "BE").await, 1);
    assert_eq!(env.value("KE2", "2019", "", "").await, 1);
    assert_eq!(env.value("KE1", "all", "", "").await, 0, "contributed: non");
    assert_eq!(env.value("ND2", "2019", "", "").await, 1);
    std::fs::remove_file(utf8_file).unwrap();
    std::fs::remove_file(latin_file).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn an_xlsx_register_reads_date_cells_serials_and_text_dates() {
    let mut env = TestEnv::new("import_xlsx").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    let output = import(&env, &example("un-submissions.xlsx"), "un_submission", &[]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("imported 3 rows as events; 0 invalid"), "{}", stderr(&output));
    env.wait_for_counts(3, 0, WAIT).await;
    let submitted = |key: &'static str| stored(&env, "un_submission", key, "submitted_on");
    assert_eq!(submitted(r#"["sub-upr-fra-2018"]"#).await.as_deref(), Some("2018-01-15"), "a date cell");
    assert_eq!(submitted(r#"["sub-crc-fra-2020"]"#).await.as_deref(), Some("2020-03-10"), "a serial");
    assert_eq!(submitted(r#"["sub-coe-bel-2020"]"#).await.as_deref(), Some("2020-11-05"), "text");
    assert_eq!(stored(&env, "un_submission", r#"["sub-upr-fra-2018"]"#, "in_alliance").await.as_deref(), Some("true"));
    assert_eq!(env.value("ND1", "all", "", "").await, 2);
    assert_eq!(env.value("ND1", "2020", "level", "regional").await, 1);
    assert_eq!(env.value("ND1", "2018", "", "").await, 1);
    env.cleanup().await;
}

#[tokio::test]
async fn a_bad_row_is_reported_with_its_row_and_field_and_nothing_is_published() {
    let mut env = TestEnv::new("import_bad_row").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let file = register(
        &env,
        "trainings.csv",
        b"training_id;title;held_on;beneficiaries\n\
          t-1;Atelier;2019-03-15;ecpat-france\n\
          t-2;Atelier;2019-02-30;ecpat-france\n\
          t-3;Atelier;2019-03-15;ECPAT France\n\
          t-1;Atelier bis;2019-03-16;ecpat-france\n",
    );

    let output = import(&env, file.to_str().unwrap(), "capacity_training", &[]).await;

    let report = stderr(&output);
    assert!(!output.status.success(), "{report}");
    assert!(report.contains("row 3: field held_on: \"2019-02-30\" is not a calendar date YYYY-MM-DD"), "{report}");
    assert!(report.contains("row 4: field beneficiaries[0]: \"ECPAT France\" is not a member code"), "{report}");
    assert!(report.contains("row 5: field training_id: the same record as row 2"), "{report}");
    assert!(report.contains("imported 0 rows as events; 3 invalid"), "{report}");
    assert!(report.contains("error: nothing was published: 3 invalid row(s)"), "{report}");
    assert_nothing_published(&env).await;
    std::fs::remove_file(file).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn a_dry_run_lists_each_rows_event_and_publishes_nothing() {
    let mut env = TestEnv::new("import_dry_run").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;

    let output = import(&env, &example("trainings.csv"), "capacity_training", &["--dry-run"]).await;

    assert!(output.status.success(), "{}", stderr(&output));
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    let rows: Vec<&str> = listed.lines().map(|line| line.split(':').next().unwrap()).collect();
    assert_eq!(rows, ["row 2", "row 3", "row 4"], "{listed}");
    assert!(listed.contains(r#"["tr-2019-02"]"#), "{listed}");
    assert!(stderr(&output).contains("would import 3 rows as events; 0 invalid"), "{}", stderr(&output));
    assert_nothing_published(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn skip_invalid_publishes_the_valid_rows_and_still_reports_the_others() {
    let mut env = TestEnv::new("import_skip").await;
    let w = env.spawn_worker();
    env.worker(w).wait_ready(WAIT).await;
    let file = register(
        &env,
        "trainings.tsv",
        b"training_id\ttitle\theld_on\tbeneficiaries\n\
          t-1\tAtelier\t2019-03-15\tecpat-france\n\
          t-2\tAtelier\t\tecpat-france\n\
          t-3\tAtelier\t2020-03-15\tecpat-uk;ecpat-france\n",
    );

    let output = import(&env, file.to_str().unwrap(), "capacity_training", &["--skip-invalid"]).await;

    let report = stderr(&output);
    assert!(!output.status.success(), "an invalid row still makes the exit code non-zero: {report}");
    assert!(report.contains("row 3: field held_on: is required"), "{report}");
    assert!(report.contains("imported 2 rows as events; 1 invalid"), "{report}");
    env.wait_for_counts(2, 0, WAIT).await;
    assert_eq!(env.value("ND2", "all", "", "").await, 2);
    assert_eq!(stored(&env, "capacity_training", r#"["t-2"]"#, "title").await, None);
    std::fs::remove_file(file).unwrap();
    env.cleanup().await;
}

#[tokio::test]
async fn an_unknown_column_or_an_unreadable_file_is_a_one_line_error() {
    let env = TestEnv::new("import_errors").await;
    let unknown = register(&env, "unknown.csv", b"training_id;lieu\nt-1;Lyon\n");
    let old_excel = register(&env, "old.xls", b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 rest");
    let missing = std::env::temp_dir().join(format!("{}-missing.csv", env.name));

    for (file, record_type, error) in [
        (&unknown, "capacity_training", "column \"lieu\" is not a field of capacity_training (the fields are: "),
        (&old_excel, "capacity_training", "is an Excel 97-2003 .xls file: save it as .xlsx or CSV"),
        (&missing, "capacity_training", "cannot read "),
        (&unknown, "social_post", "not a record type that can be imported"),
    ] {
        let output = import(&env, file.to_str().unwrap(), record_type, &[]).await;
        let report = stderr(&output);
        assert!(!output.status.success(), "{file:?}: {report}");
        if record_type != "social_post" {
            assert_eq!(report.lines().count(), 1, "one line: {report}");
        }
        assert!(report.lines().next().unwrap().contains(error), "{file:?}: {report}");
    }
    std::fs::remove_file(unknown).unwrap();
    std::fs::remove_file(old_excel).unwrap();
    env.cleanup().await;
}
