//! Parquet write throughput against JSONL on the same rows (issue 14): the two feature sinks,
//! `sink::parquet::ParquetFile` and `sink::jsonl::JsonlFile`, each given the same checked rows
//! in the same order and finished (flushed, fsynced, hashed) into a fresh file.
//!
//! - `sinks/{jsonl,parquet}/text_stats`: 100 000 rows shaped like `text_stats`'s (two
//!   integers, a number, a nullable text), one per record.
//! - `sinks/{jsonl,parquet}/all_types`: 20 000 rows of every column type, a 64-dimension
//!   float vector (an embedding) and JSON among them.
//!
//! Guest code is not involved: what is timed is what a run spends in its feature sink.
//! Run with `make -C benches bench` (see `benches/README.md`).

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookhost::contract::{Cardinality, CheckedRows, Column, ColumnType, Contract};
use hookhost::sink::jsonl::JsonlFile;
use hookhost::sink::parquet::ParquetFile;
use hookhost::sink::{FeatureSink, ParquetOptions};
use serde_json::{Value, json};

/// Records with their rows, as a run hands them to its sink: checked and rendered (on the
/// worker that ran the call, in a run).
type Records = Vec<(String, CheckedRows)>;

const RUN_ID: &str = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

fn column(name: &str, ty: ColumnType, nullable: bool) -> Column {
    Column {
        name: name.into(),
        ty,
        nullable,
        description: None,
    }
}

fn text_stats() -> (Contract, Records) {
    let contract = Contract {
        feature: "text_stats".into(),
        cardinality: Cardinality::One,
        columns: vec![
            column("word_count", ColumnType::Integer, false),
            column("char_count", ColumnType::Integer, false),
            column("mean_word_length", ColumnType::Number, false),
            column("longest_word", ColumnType::Text, true),
        ],
    };
    let records = (0..100_000)
        .map(|i| {
            let words = 5 + i % 200;
            let row = vec![
                json!(words),
                json!(words * 6 - 1),
                json!(5.0 + (i % 17) as f64 / 7.0),
                if i % 50 == 0 {
                    Value::Null
                } else {
                    json!(format!("extraordinary{}", i % 1000))
                },
            ];
            let rows = CheckedRows::from_values(&contract, vec![row]);
            (format!("doc-{i:08}"), rows)
        })
        .collect();
    (contract, records)
}

fn all_types() -> (Contract, Records) {
    let contract = Contract {
        feature: "all_types".into(),
        cardinality: Cardinality::One,
        columns: vec![
            column("label", ColumnType::Text, false),
            column("count", ColumnType::Integer, true),
            column("score", ColumnType::Number, true),
            column("flag", ColumnType::Boolean, true),
            column("seen_at", ColumnType::Timestamp, true),
            column("day", ColumnType::Date, true),
            column("key", ColumnType::Uuid, true),
            column("extra", ColumnType::Json, true),
            column("embedding", ColumnType::FloatVector, true),
        ],
    };
    let records = (0..20_000)
        .map(|i| {
            let row = vec![
                json!(format!("label {i}")),
                json!(i * 31),
                json!(i as f64 * 0.25),
                json!(i % 3 == 0),
                json!(format!(
                    "2026-11-{:02}T{:02}:30:00.25+02:00",
                    1 + i % 28,
                    i % 24
                )),
                json!(format!("2026-11-{:02}", 1 + i % 28)),
                json!(format!("67e55044-10b1-426f-9247-{i:012x}")),
                json!({"tags": ["a", "b"], "n": i}),
                json!(
                    (0..64)
                        .map(|d| ((i * 64 + d) % 1000) as f64 / 1000.0)
                        .collect::<Vec<_>>()
                ),
            ];
            let rows = CheckedRows::from_values(&contract, vec![row]);
            (format!("doc-{i:08}"), rows)
        })
        .collect();
    (contract, records)
}

fn write_all(mut sink: Box<dyn FeatureSink>, records: &Records) {
    for (id, rows) in records {
        sink.write(id, RUN_ID, rows).unwrap();
    }
    sink.finish().unwrap();
}

fn sinks(c: &mut Criterion) {
    let mut group = c.benchmark_group("sinks");
    group.sample_size(10);
    for (name, (contract, records)) in [("text_stats", text_stats()), ("all_types", all_types())] {
        group.throughput(Throughput::Elements(records.len() as u64));
        let temp = || tempfile::tempdir().unwrap();
        group.bench_function(BenchmarkId::new("jsonl", name), |b| {
            b.iter_batched(
                temp,
                |dir| {
                    let sink = JsonlFile::create(&dir.path().join("features.jsonl")).unwrap();
                    write_all(Box::new(sink), &records);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function(BenchmarkId::new("parquet", name), |b| {
            b.iter_batched(
                temp,
                |dir| {
                    let path = dir.path().join("features.parquet");
                    let sink =
                        ParquetFile::create(&path, &contract, &ParquetOptions::default()).unwrap();
                    write_all(Box::new(sink), &records);
                    dir
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(parquet, sinks);
criterion_main!(parquet);
