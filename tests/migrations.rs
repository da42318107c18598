//! Migrations keep the public SQL interface: the `indicator_values` view keeps its shape
//! and the privileges granted on it when a migration has to recreate it.

mod common;

use sqlx::{Connection, PgConnection};

/// The migration files, in order.
fn migrations() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

async fn run(connection: &mut PgConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(connection).await.unwrap();
}

#[tokio::test]
async fn a_migration_that_recreates_the_view_keeps_its_columns_and_its_grants() {
    let name = format!("ecpat_migrations_{}", std::process::id());
    let role = format!("ecpat_dashboards_{}", std::process::id());
    let mut admin = PgConnection::connect(&format!("{}/postgres", common::database_base())).await.expect("PostgreSQL");
    run(&mut admin, format!("drop database if exists {name}")).await;
    run(&mut admin, format!("create database {name}")).await;
    run(&mut admin, format!("drop role if exists {role}")).await;
    run(&mut admin, format!("create role {role}")).await;
    let mut db = PgConnection::connect(&format!("{}/{name}", common::database_base())).await.unwrap();

    // Up to the last migration before the view is recreated, then a BI role is granted it.
    let files = migrations();
    let recreating =
        files.iter().position(|f| f.to_string_lossy().contains("byte_order_keys")).expect("migration 0007");
    for file in &files[..recreating] {
        run(&mut db, std::fs::read_to_string(file).unwrap()).await;
    }
    run(&mut db, format!("grant select on indicator_values to {role}")).await;
    let columns = "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum)
        from pg_attribute where attrelid = 'indicator_values'::regclass and attnum > 0";
    let before: String = sqlx::query_scalar(columns).fetch_one(&mut db).await.unwrap();

    for file in &files[recreating..] {
        run(&mut db, std::fs::read_to_string(file).unwrap()).await;
    }

    let after: String = sqlx::query_scalar(columns).fetch_one(&mut db).await.unwrap();
    assert_eq!(after, before);
    let privilege = format!("select has_table_privilege('{role}', 'indicator_values', 'select')");
    let can_select: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(privilege)).fetch_one(&mut db).await.unwrap();
    assert!(can_select, "the grant on indicator_values was lost");
    let tallies = format!("select has_table_privilege('{role}', 'tallies', 'select')");
    let can_read_tallies: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(tallies)).fetch_one(&mut db).await.unwrap();
    assert!(!can_read_tallies, "the role was given more than it had");

    db.close().await.unwrap();
    run(&mut admin, format!("drop database {name} with (force)")).await;
    run(&mut admin, format!("drop role {role}")).await;
}

#[tokio::test]
async fn distinct_items_under_all_and_the_span_are_counted_from_their_years_then_kept_under_years_only() {
    let name = format!("ecpat_migrations_items_{}", std::process::id());
    let mut admin = PgConnection::connect(&format!("{}/postgres", common::database_base())).await.expect("PostgreSQL");
    run(&mut admin, format!("drop database if exists {name}")).await;
    run(&mut admin, format!("create database {name}")).await;
    let mut db = PgConnection::connect(&format!("{}/{name}", common::database_base())).await.unwrap();

    let files = migrations();
    let converting = files.iter().position(|f| f.to_string_lossy().contains("items_by_year")).expect("the migration");
    for file in &files[..converting] {
        run(&mut db, std::fs::read_to_string(file).unwrap()).await;
    }
    // Before: each item's count is the number of records naming it, under its year, `all`
    // and the span alike. `ana` counts in 2019 (2 records), 2020 and 2025, and counted in
    // 2017 once; `ben` counts in 2024 only; `cleo` counted in 2020 only, no longer.
    run(
        &mut db,
        "insert into tally_items (framework, indicator, period, dimension, key, item, refs, last_delta) values
            ('f', 'AP2', '2017', '', '', 'ana', 0, -1),
            ('f', 'AP2', '2019', '', '', 'ana', 2, 1),
            ('f', 'AP2', '2020', '', '', 'ana', 1, 1),
            ('f', 'AP2', '2025', '', '', 'ana', 1, 1),
            ('f', 'AP2', 'all', '', '', 'ana', 4, 1),
            ('f', 'AP2', '2018-2021', '', '', 'ana', 3, 1),
            ('f', 'AP2', '2024', '', '', 'ben', 1, 1),
            ('f', 'AP2', 'all', '', '', 'ben', 1, 1),
            ('f', 'AP2', '2020', '', '', 'cleo', 0, -1),
            ('f', 'AP2', 'all', '', '', 'cleo', 0, -1),
            ('f', 'AP2', '2018-2021', '', '', 'cleo', 0, -1);
        insert into tallies (framework, indicator, period, dimension, key, value) values
            ('f', 'AP2', '2018-2021', '', '', 1), ('f', 'AP2', 'all', '', '', 2)"
            .to_owned(),
    )
    .await;

    run(&mut db, std::fs::read_to_string(&files[converting]).unwrap()).await;

    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("select item, period, refs from tally_items where period !~ '^[0-9]{4}$' order by item, period")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let expected = [("ana", "2018-2021", 2), ("ana", "all", 3), ("ben", "all", 1)];
    let expected: Vec<(String, String, i64)> =
        expected.iter().map(|&(item, period, refs)| (item.to_owned(), period.to_owned(), refs)).collect();
    assert_eq!(rows, expected);
    let years: i64 = sqlx::query_scalar("select count(*) from tally_items where period ~ '^[0-9]{4}$'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(years, 6, "the years' counts are kept");

    // The next migration drops them again: they follow from the years.
    run(&mut db, std::fs::read_to_string(&files[converting + 1]).unwrap()).await;
    let periods: Vec<(String, String, i64)> =
        sqlx::query_as("select item, period, refs from tally_items order by item, period")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let expected = [
        ("ana", "2017", 0),
        ("ana", "2019", 2),
        ("ana", "2020", 1),
        ("ana", "2025", 1),
        ("ben", "2024", 1),
        ("cleo", "2020", 0),
    ];
    let expected: Vec<(String, String, i64)> =
        expected.iter().map(|&(item, period, refs)| (item.to_owned(), period.to_owned(), refs)).collect();
    assert_eq!(periods, expected, "only the years' counts are kept");

    db.close().await.unwrap();
    run(&mut admin, format!("drop database {name} with (force)")).await;
}
