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
