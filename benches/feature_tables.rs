//! Feature rows into PostgreSQL (issue 14): the library's table sink, which sends rows with
//! `COPY … FROM STDIN (FORMAT binary)` (`feature_tables/copy`), against one `INSERT` per row on
//! the same rows, the same table and the same value encoding (`feature_tables/insert_per_row`).
//!
//! Each iteration writes [`ROWS`] rows in one transaction and rolls it back, so both sides pay
//! for sending, parsing and inserting the rows (indexes included) and neither for its commit
//! (the same for both: one fsync and the deferred foreign-key checks). The server is a
//! throwaway cluster started the way the tests start theirs (`tests/common/postgres.rs`), or
//! the one `HOOKHOST_TEST_POSTGRES` names.
//!
//! Run with `make -C benches bench` (see `benches/README.md`).

#[allow(dead_code, clippy::all)]
#[path = "../tests/common/postgres.rs"]
mod postgres;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookhost::contract::{Cardinality, CheckedRows, Column, ColumnType, Contract};
use hookhost::registry::tables::PgValue;
use hookhost::registry::{DEFAULT_FEATURE_SCHEMA, Registry};
use hookhost::sink::TableHook;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;

/// Rows per iteration.
const ROWS: u64 = 20_000;

fn contract() -> Contract {
    let column = |name: &str, ty, nullable| Column {
        name: name.into(),
        ty,
        nullable,
        description: None,
    };
    Contract {
        feature: "bench".into(),
        cardinality: Cardinality::One,
        columns: vec![
            column("label", ColumnType::Text, false),
            column("n", ColumnType::Integer, false),
            column("x", ColumnType::Number, true),
            column("at", ColumnType::Timestamp, true),
            column("doc", ColumnType::Json, true),
            column("embedding", ColumnType::FloatVector, true),
        ],
    }
}

/// Record `i`'s one row, as the contract checks render it.
fn row(i: u64) -> Vec<Value> {
    vec![
        json!(format!("label {i}")),
        json!(i),
        json!(i as f64 / 7.0),
        json!("2024-05-01T12:00:00.250+02:00"),
        json!({"i": i, "tags": ["a", "b"]}),
        json!((0..8).map(|k| (i + k) as f64 / 3.0).collect::<Vec<_>>()),
    ]
}

fn feature_tables(c: &mut Criterion) {
    let url = postgres::fresh_database();
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::connect(&url, root.path()).unwrap();
    let tables = registry.feature_tables(DEFAULT_FEATURE_SCHEMA).unwrap();
    let contract = contract();
    let hooks = [TableHook {
        name: "bench",
        contract: &contract,
    }];
    // Checked and rendered, as a worker hands them to the sink.
    let rows: Vec<(String, CheckedRows)> = (0..ROWS)
        .map(|i| {
            let rows = CheckedRows::from_values(&contract, vec![row(i)]);
            (format!("r{i}"), rows)
        })
        .collect();
    // The table, created once (later begins find it identical).
    drop(tables.begin(&hooks).unwrap());

    let mut group = c.benchmark_group("feature_tables");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("copy", |b| {
        b.iter(|| {
            let mut batch = tables.begin(&hooks).unwrap();
            let run_id = uuid::Uuid::now_v7().to_string();
            let mut sink = batch.sink(0, &run_id);
            for (id, row) in &rows {
                sink.write(id, &run_id, row).unwrap();
            }
            sink.finish().unwrap();
            drop(batch); // rolled back
        })
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    });
    let insert = format!(
        "INSERT INTO {DEFAULT_FEATURE_SCHEMA}.bench (run_id, record_id, ordinal, label, n, x, \
         at, doc, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    );
    group.bench_function("insert_per_row", |b| {
        b.iter(|| {
            runtime.block_on(async {
                client.batch_execute("BEGIN").await.unwrap();
                let statement = client.prepare(&insert).await.unwrap();
                let run_id = PgValue::Uuid(uuid::Uuid::now_v7());
                for (id, row) in &rows {
                    let mut values = vec![
                        run_id.clone(),
                        PgValue::Text(id.clone()),
                        PgValue::Ordinal(0),
                    ];
                    for (column, value) in contract.columns.iter().zip(&row.rows[0]) {
                        values.push(PgValue::from_json(column.ty, value).unwrap());
                    }
                    let params: Vec<&(dyn ToSql + Sync)> =
                        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                    client.execute(&statement, &params).await.unwrap();
                }
                client.batch_execute("ROLLBACK").await.unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, feature_tables);
criterion_main!(benches);
