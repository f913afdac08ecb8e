//! Parquet feature files (issue 14): `host run --format parquet` writes `features.parquet`,
//! typed from the contract, which an independent reader (pyarrow, from the venv `make test`
//! makes) reads back with the values `features.jsonl` holds for the same run; `run.json`
//! lists it with the real size and sha256 and the same content digest as the JSONL file;
//! replay compares across sinks and writes Parquet for a Parquet run; memory stays bounded
//! over 1 000 000 records.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_dir, guest, root};
use hookhost::contract::{ColumnType, Contract};
use hookhost::embed::{Batch, BatchOptions, Hookhost, Record, Snapshot, SnapshotHook};
use hookhost::provenance::RunRecord;
use hookhost::sink::parquet::DEFAULT_ROW_GROUP_ROWS;
use hookhost::sink::{Features, ParquetOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The venv's interpreter, with pyarrow (pinned in `sdk/python/requirements-dev.txt`).
fn python() -> PathBuf {
    let python = root().join("target/python-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the Parquet tests read files back with pyarrow from the Python venv, \
         which `make test` makes (its `python` target; or `make -C sdk/python venv`)",
        python.display()
    );
    python
}

/// What pyarrow makes of a Parquet file: schema, row groups and (with `rows`) every row, as
/// `tests/read_parquet.py` prints them.
fn pyarrow_read(path: &Path, rows: bool) -> Value {
    let mut command = Command::new(python());
    command.arg(root().join("tests/read_parquet.py")).arg(path);
    if !rows {
        command.arg("--no-rows");
    }
    let output = command.output().expect("running the venv's python");
    assert!(
        output.status.success(),
        "pyarrow could not read {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("read_parquet.py prints JSON")
}

/// The `host` binary with a registry root of its own.
struct Cli {
    temp: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    fn host(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_host"))
            .env("HOOKHOST_HOME", self.path("registry"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `host run HOOK --input INPUT --out <name> ARGS…`, which must succeed; the run record.
    fn run(&self, hook: &Path, input: &Path, name: &str, args: &[&str]) -> RunRecord {
        let out = self.path(name);
        let mut all = vec![
            "run",
            hook.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let output = self.host(&all);
        assert!(
            output.status.success(),
            "host {all:?}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        read_record(&out)
    }
}

fn read_record(dir: &Path) -> RunRecord {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

fn contract_of(hook: &Path) -> Contract {
    common::host().load_file(hook).unwrap().contract().clone()
}

/// A `features.jsonl` value as pyarrow's reading of the same Parquet value looks through
/// `read_parquet.py`: timestamps in UTC with microseconds, the rest as they are.
fn normalised(ty: ColumnType, value: &Value) -> Value {
    match (ty, value) {
        (ColumnType::Timestamp, Value::String(text)) => {
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .unwrap()
                    .to_offset(time::UtcOffset::UTC);
            let micros = at.microsecond();
            json!(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            ))
        }
        _ => value.clone(),
    }
}

/// The rows pyarrow should find in `features.parquet`, from `features.jsonl` of a run of the
/// same hook over the same input: `record_id`, `run_id` (the Parquet run's), `ordinal`, then
/// the features.
fn expected_rows(jsonl_dir: &Path, contract: &Contract, run_id: &str) -> Vec<Value> {
    let mut ordinals: HashMap<String, i64> = HashMap::new();
    std::fs::read_to_string(jsonl_dir.join("features.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            let id = line["id"].as_str().unwrap().to_owned();
            let ordinal = ordinals.entry(id.clone()).or_default();
            let mut row = serde_json::Map::new();
            row.insert("record_id".into(), json!(id));
            row.insert("run_id".into(), json!(run_id));
            row.insert("ordinal".into(), json!(*ordinal));
            *ordinal += 1;
            for column in &contract.columns {
                let value = &line["features"][&column.name];
                row.insert(column.name.clone(), normalised(column.ty, value));
            }
            Value::Object(row)
        })
        .collect()
}

/// The type pyarrow gives each contract column type.
fn pyarrow_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "string",
        ColumnType::Integer => "int64",
        ColumnType::Number => "double",
        ColumnType::Boolean => "bool",
        ColumnType::Timestamp => "timestamp[us, tz=UTC]",
        ColumnType::Date => "date32[day]",
        ColumnType::Uuid => "extension<arrow.uuid>",
        ColumnType::Json => "extension<arrow.json>",
        ColumnType::FloatVector => "list<item: double not null>",
    }
}

/// The Parquet logical type pyarrow reports for each contract column type's leaf.
fn parquet_logical(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "String",
        ColumnType::Integer
        | ColumnType::Number
        | ColumnType::Boolean
        | ColumnType::FloatVector => "None",
        ColumnType::Timestamp => {
            "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds, is_from_converted_type=false, force_set_converted_type=false)"
        }
        ColumnType::Date => "Date",
        ColumnType::Uuid => "UUID",
        ColumnType::Json => "JSON",
    }
}

/// Checks the file pyarrow read against the contract: columns, types, nullability, logical
/// types, zstd in every row group, each row group within the bound.
fn assert_schema(read: &Value, contract: &Contract) {
    let mut expected = vec![
        json!({"name": "record_id", "type": "string", "nullable": false, "logical": "String"}),
        json!({"name": "run_id", "type": "string", "nullable": false, "logical": "String"}),
        json!({"name": "ordinal", "type": "int32", "nullable": false, "logical": "None"}),
    ];
    for column in &contract.columns {
        expected.push(json!({
            "name": column.name,
            "type": pyarrow_type(column.ty),
            "nullable": column.nullable,
            "logical": parquet_logical(column.ty),
        }));
    }
    let columns: Vec<Value> = read["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({"name": c["name"], "type": c["type"], "nullable": c["nullable"],
                   "logical": c["logical"]})
        })
        .collect();
    assert_eq!(columns, expected);
    for group in read["row_groups"].as_array().unwrap() {
        assert_eq!(group["compression"], json!(["ZSTD"]), "{group}");
        assert!(
            group["rows"].as_u64().unwrap() <= DEFAULT_ROW_GROUP_ROWS as u64,
            "{group}"
        );
    }
}

/// `run.json` lists `features.parquet` with the size and sha256 of the bytes on disk, its
/// row count, and the content digest of the JSONL run of the same rows.
fn assert_listed(parquet_dir: &Path, parquet: &RunRecord, jsonl: &RunRecord) {
    let bytes = std::fs::read(parquet_dir.join("features.parquet")).unwrap();
    let listed = &parquet.outputs["features.parquet"];
    assert_eq!(listed.bytes, bytes.len() as u64);
    assert_eq!(
        listed.sha256,
        hookhost::digest::hex(&Sha256::digest(&bytes))
    );
    let jsonl_listed = &jsonl.outputs["features.jsonl"];
    assert_eq!(listed.rows, jsonl_listed.rows);
    assert_eq!(listed.content_sha256, jsonl_listed.content_sha256);
    assert!(!parquet.outputs.contains_key("features.jsonl"));
    assert!(!parquet_dir.join("features.jsonl").exists());
    // Rejections, errors and logs are where they always are, with the same content.
    for name in ["rejections.jsonl", "errors.jsonl", "logs.txt"] {
        assert_eq!(
            parquet.outputs[name].content_sha256, jsonl.outputs[name].content_sha256,
            "{name}"
        );
    }
    assert_eq!(parquet.records, jsonl.records);
}

/// Runs `hook` over `input` twice, into JSONL and into Parquet, and checks that pyarrow reads
/// the JSONL run's values from the Parquet file. Returns how many rows it compared.
fn same_values_in_both(cli: &Cli, hook: &Path, input: &Path, name: &str, args: &[&str]) -> usize {
    let jsonl = cli.run(hook, input, &format!("{name}-jsonl"), args);
    let mut parquet_args = args.to_vec();
    parquet_args.extend_from_slice(&["--format", "parquet"]);
    let parquet_dir = cli.path(&format!("{name}-parquet"));
    let parquet = cli.run(hook, input, &format!("{name}-parquet"), &parquet_args);
    assert_listed(&parquet_dir, &parquet, &jsonl);

    let contract = contract_of(hook);
    let read = pyarrow_read(&parquet_dir.join("features.parquet"), true);
    assert_schema(&read, &contract);
    let expected = expected_rows(
        &cli.path(&format!("{name}-jsonl")),
        &contract,
        &parquet.run_id,
    );
    assert_eq!(read["rows"].as_array().unwrap(), &expected, "{name}");
    assert_eq!(read["num_rows"], expected.len());
    expected.len()
}

#[test]
fn every_example_hook_gives_the_jsonl_values_in_parquet() {
    let cli = Cli::new();
    let samples = root().join("example-hooks/samples");
    let config = format!("@{}", samples.join("require-config.json").display());
    let files = samples.join("files");
    let cases: [(&str, &str, Vec<&str>); 4] = [
        ("text_stats", "text.jsonl", vec![]),
        (
            "file_profile",
            "files.jsonl",
            vec!["--files", files.to_str().unwrap()],
        ),
        ("require_fields", "require.jsonl", vec!["--config", &config]),
        ("memory_hungry", "memory.jsonl", vec!["--memory", "32MiB"]),
    ];
    for (hook, input, args) in &cases {
        let rows = same_values_in_both(&cli, &guest(hook), &samples.join(input), hook, args);
        assert!(rows > 0, "{hook}: the sample must give rows to compare");
    }
    // The Python examples (built by `make test` into target/python-hooks/) too.
    for (hook, input, args) in &cases[..2] {
        let component = root().join(format!("target/python-hooks/{hook}.wasm"));
        assert!(
            component.exists(),
            "{} is missing: `make test` builds the Python examples",
            component.display()
        );
        let name = format!("python-{hook}");
        let rows = same_values_in_both(&cli, &component, &samples.join(input), &name, args);
        assert!(rows > 0, "{name}");
    }
}

#[test]
fn every_column_type_reads_back_typed_with_nulls_offsets_normalised_and_json() {
    let cli = Cli::new();
    let input = cli.path("all.jsonl");
    let records = [
        json!({"id": "full", "metadata": {"rows": [
            {"label": "utc", "n": -9_007_199_254_740_993_i64, "x": 0.1, "flag": true,
             "at": "2024-05-01T10:00:00Z", "day": "2024-05-01",
             "key": "67E55044-10B1-426F-9247-BB680E5FE0C8",
             "doc": {"nested": {"list": [1, "two", null]}}, "embedding": [0.5, -1.0, 1e-300]},
            {"label": "plus two", "n": 0, "x": -2.5e10, "flag": false,
             "at": "2024-05-01T12:00:00.123456+02:00", "day": "1969-12-31",
             "key": "00000000-0000-0000-0000-000000000000", "doc": [1, 2, 3], "embedding": []},
            {"label": "minus four and a half", "at": "2024-05-01T05:30:00.5-04:30",
             "doc": "just a string"}
        ]}}),
        json!({"id": "nulls", "metadata": {"rows": [{"label": "only the label"}]}}),
        json!({"id": "no-rows", "metadata": {"rows": []}}),
        json!({"id": "before-1970", "metadata": {"rows": [
            {"label": "early", "at": "1969-07-20T20:17:40.000001-05:00", "day": "1900-02-28",
             "doc": 42, "embedding": [3.0]}
        ]}}),
        json!({"id": "rejected", "metadata": {"reject": true}}),
    ];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let rows = same_values_in_both(&cli, &guest("all_types"), &input, "all", &[]);
    assert_eq!(rows, 5, "3 + 1 + 0 + 1 rows; the rejected record has none");

    // The values themselves, as a data user sees them: offsets normalised to UTC, a UUID in
    // lowercase, JSON as documents, vectors as lists, nulls as nulls.
    let read = pyarrow_read(&cli.path("all-parquet/features.parquet"), true);
    let rows = read["rows"].as_array().unwrap();
    let utc_instant = "2024-05-01T10:00:00.000000Z";
    assert_eq!(rows[0]["at"], utc_instant);
    assert_eq!(rows[1]["at"], "2024-05-01T10:00:00.123456Z");
    assert_eq!(rows[2]["at"], "2024-05-01T10:00:00.500000Z");
    assert_eq!(rows[4]["at"], "1969-07-21T01:17:40.000001Z");
    assert_eq!(rows[0]["key"], "67e55044-10b1-426f-9247-bb680e5fe0c8");
    assert_eq!(
        rows[0]["n"], -9_007_199_254_740_993_i64,
        "int64, not a double"
    );
    assert_eq!(
        rows[0]["doc"],
        json!({"nested": {"list": [1, "two", null]}})
    );
    assert_eq!(rows[2]["doc"], "just a string");
    assert_eq!(rows[1]["embedding"], json!([]));
    assert_eq!(rows[1]["day"], "1969-12-31");
    assert_eq!(rows[4]["day"], "1900-02-28");
    assert_eq!(rows[4]["doc"], 42);
    assert_eq!(
        (
            &rows[2]["record_id"],
            &rows[2]["ordinal"],
            &rows[3]["record_id"],
            &rows[3]["ordinal"]
        ),
        (&json!("full"), &json!(2), &json!("nulls"), &json!(0))
    );
    let nulls = &rows[3];
    for column in ["n", "x", "flag", "at", "day", "key", "doc", "embedding"] {
        assert_eq!(nulls[column], Value::Null, "{column}");
    }
}

#[test]
fn the_run_flag_teaches_and_refuses_unknown_formats() {
    let cli = Cli::new();
    let help = cli.host(&["run", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--format <FORMAT>") && help.contains("features.parquet"),
        "{help}"
    );
    assert!(help.contains("parquet") && help.contains("jsonl"), "{help}");
    let input = root().join("example-hooks/samples/text.jsonl");
    let out = cli.path("csv");
    let refused = cli.host(&[
        "run",
        guest("text_stats").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("csv") && stderr.contains("parquet"),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn several_hooks_write_a_parquet_file_each() {
    let cli = Cli::new();
    let samples = root().join("example-hooks/samples");
    let out = cli.path("batch");
    let config = format!(
        "require_fields=@{}",
        samples.join("require-config.json").display()
    );
    let output = cli.host(&[
        "run",
        guest("text_stats").to_str().unwrap(),
        guest("require_fields").to_str().unwrap(),
        "--input",
        samples
            .join("inbox/2026-11-22-0001.jsonl")
            .to_str()
            .unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        &config,
        "--format",
        "parquet",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for hook in ["text_stats", "require_fields"] {
        let dir = out.join(hook);
        let record = read_record(&dir);
        let read = pyarrow_read(&dir.join("features.parquet"), true);
        assert_schema(&read, &contract_of(&guest(hook)));
        assert_eq!(read["num_rows"], record.outputs["features.parquet"].rows);
        assert_eq!(
            record.records.passed,
            record.outputs["features.parquet"].rows
        );
        assert!(record.records.passed > 0, "{hook}");
        for row in read["rows"].as_array().unwrap() {
            assert_eq!(row["run_id"], record.run_id.as_str());
        }
    }
    assert!(out.join("passed.jsonl").exists());
}

fn replay(cli: &Cli, run_id: &str, input: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec![
        "replay",
        run_id,
        "--input",
        input.to_str().unwrap(),
        "--json",
    ];
    all.extend_from_slice(args);
    let output = cli.host(&all);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&output.stderr));
    });
    (output.status.code(), report)
}

#[test]
fn a_parquet_run_replays_into_parquet_and_compares_by_content() {
    let cli = Cli::new();
    let samples = root().join("example-hooks/samples");
    let input = samples.join("text.jsonl");
    let original = cli.run(
        &guest("text_stats"),
        &input,
        "original",
        &["--format", "parquet"],
    );

    let kept = cli.path("replayed");
    let (code, report) = replay(
        &cli,
        &original.run_id,
        &input,
        &["--out", kept.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["identical"], true);
    assert_eq!(report["differences"], json!([]));
    let replayed = read_record(&kept);
    assert_eq!(
        replayed.replay_of.as_deref(),
        Some(original.run_id.as_str())
    );
    assert!(
        kept.join("features.parquet").exists(),
        "a Parquet run replays into Parquet"
    );
    assert!(!replayed.outputs.contains_key("features.jsonl"));
    let (was, now) = (
        &original.outputs["features.parquet"],
        &replayed.outputs["features.parquet"],
    );
    assert_eq!(was.content_sha256, now.content_sha256);
    assert_ne!(
        was.sha256, now.sha256,
        "the bytes differ: each row names its own run"
    );

    // A files run whose files changed since: the Parquet content differs, and says so.
    let files = cli.path("files");
    copy_dir(&samples.join("files"), &files);
    let files_input = samples.join("files.jsonl");
    let profiled = cli.run(
        &guest("file_profile"),
        &files_input,
        "profiled",
        &["--files", files.to_str().unwrap(), "--format", "parquet"],
    );
    std::fs::write(files.join("doc-1/a.txt"), b"other bytes, other hash\n").unwrap();
    let (code, report) = replay(
        &cli,
        &profiled.run_id,
        &files_input,
        &["--files", files.to_str().unwrap()],
    );
    assert_eq!(code, Some(3), "{report:#}");
    let differences = report["differences"].as_array().unwrap();
    assert_eq!(differences.len(), 1, "{report:#}");
    assert_eq!(differences[0]["what"], "features.parquet");
    assert_ne!(differences[0]["original"], differences[0]["replay"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedding_api_writes_parquet_into_a_directory_and_refuses_it_without_one() {
    let snapshot = Snapshot::new(vec![SnapshotHook::new(
        "text_stats",
        common::load("text_stats"),
    )])
    .unwrap();
    let hookhost = Hookhost::new(common::host().clone(), None, 2);
    let records = || {
        (0..40).map(|i| Record::new(format!("r{i}"), json!({"text": format!("words {i} here")})))
    };
    let parquet = Features::Parquet(ParquetOptions::default());
    let refused = hookhost
        .begin(
            &snapshot,
            Batch::from_records(records().collect::<Vec<_>>()),
            BatchOptions::default().with_features(parquet.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, hookhost::Error::ParquetNeedsDirectory),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("output directory"),
        "{refused}"
    );

    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    let handle = hookhost
        .begin(
            &snapshot,
            Batch::from_records(records().collect::<Vec<_>>()),
            BatchOptions::default()
                .with_out(&out)
                .with_features(parquet),
        )
        .await
        .unwrap();
    let result = handle.await.unwrap();
    let run = &result.hooks[0].run;
    assert_eq!(run.records.passed, 40);
    let dir = out.join("text_stats");
    let read =
        tokio::task::spawn_blocking(move || pyarrow_read(&dir.join("features.parquet"), true))
            .await
            .unwrap();
    assert_eq!(read["num_rows"], 40);
    assert_eq!(read["rows"][39]["record_id"], "r39");
    assert_eq!(read["rows"][39]["word_count"], 3);
    assert_eq!(run.outputs["features.parquet"].rows, 40);
}

/// Peak resident memory of `host run` over 1 000 000 records into Parquet must stay under
/// this. What it is made of, at most: the host and its engine (~40 MiB), the id table that
/// refuses duplicates (≤ 80 bytes a record, `tests/streaming.rs`: 80 MB), `jobs + 1` chunks in
/// flight, and the Parquet sink's own share ([`SINK_SHARE_BOUND`]).
const PEAK_RSS_BOUND: u64 = 192 * 1024 * 1024;

/// How much more the same run may peak at into Parquet than into JSONL: one Arrow batch of
/// rows (`DEFAULT_BATCH_BYTES`, 8 MiB), one row group being encoded (compressed pages, under
/// 2 MiB for these rows) and the writer's buffers. A writer that kept the file's rows until
/// the end would need their Arrow arrays on top: about +75 MiB for these rows, measured.
const SINK_SHARE_BOUND: u64 = 32 * 1024 * 1024;

/// Runs the `host` binary over `input` into `out` with `args`, and returns its peak resident
/// memory as the kernel measured it for the child alone: a Python parent runs it as its only
/// child and reports `getrusage(RUSAGE_CHILDREN).ru_maxrss`.
fn peak_rss_of_run(cli: &Cli, input: &Path, out: &Path, args: &[&str]) -> u64 {
    let measure = "import resource, subprocess, sys\n\
                   code = subprocess.run(sys.argv[1:]).returncode\n\
                   print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                   sys.exit(code)";
    let output = Command::new(python())
        .args(["-c", measure])
        .arg(env!("CARGO_BIN_EXE_host"))
        .args(["run", guest("text_stats").to_str().unwrap()])
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--chunk-size", "1000"])
        .args(args)
        .env("HOOKHOST_HOME", cli.path("registry"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let kib: u64 = stdout.lines().last().unwrap().trim().parse().unwrap();
    kib * 1024
}

#[test]
fn a_million_records_into_parquet_in_bounded_memory() {
    const RECORDS: usize = 1_000_000;
    const MIB: u64 = 1024 * 1024;
    let cli = Cli::new();
    let input = cli.path("million.jsonl");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..RECORDS {
            writeln!(
                file,
                "{{\"id\":\"r{i:07}\",\"metadata\":{{\"text\":\"w{} x\"}}}}",
                i % 97
            )
            .unwrap();
        }
        file.flush().unwrap();
    }
    let jsonl_peak = peak_rss_of_run(&cli, &input, &cli.path("million-jsonl"), &[]);
    let out = cli.path("million");
    let peak = peak_rss_of_run(&cli, &input, &out, &["--format", "parquet"]);

    let record = read_record(&out);
    let listed = &record.outputs["features.parquet"];
    assert_eq!(record.records.passed, RECORDS as u64);
    assert_eq!(listed.rows, RECORDS as u64);
    let jsonl = read_record(&cli.path("million-jsonl"));
    assert_eq!(
        listed.content_sha256,
        jsonl.outputs["features.jsonl"].content_sha256
    );
    let read = pyarrow_read(&out.join("features.parquet"), false);
    assert_eq!(read["num_rows"], RECORDS);
    let groups: Vec<u64> = read["row_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(groups.iter().sum::<u64>(), RECORDS as u64);
    assert!(
        groups
            .iter()
            .all(|&rows| rows <= DEFAULT_ROW_GROUP_ROWS as u64),
        "row groups over {DEFAULT_ROW_GROUP_ROWS} rows: {groups:?}"
    );
    assert_eq!(
        groups.len(),
        RECORDS.div_ceil(DEFAULT_ROW_GROUP_ROWS),
        "{groups:?}"
    );
    eprintln!(
        "1 000 000 records: peak RSS into Parquet {} MiB (bound {} MiB), into JSONL {} MiB \
         (the sink's share bound {} MiB); {} row groups, features.parquet {} bytes \
         (features.jsonl {} bytes)",
        peak / MIB,
        PEAK_RSS_BOUND / MIB,
        jsonl_peak / MIB,
        SINK_SHARE_BOUND / MIB,
        groups.len(),
        listed.bytes,
        jsonl.outputs["features.jsonl"].bytes
    );
    assert!(
        peak < PEAK_RSS_BOUND,
        "peak RSS {peak} bytes, over the bound of {PEAK_RSS_BOUND}"
    );
    assert!(
        peak < jsonl_peak + SINK_SHARE_BOUND,
        "into Parquet the run peaked at {peak} bytes, {} more than into JSONL ({jsonl_peak}): \
         over the sink's bound of {SINK_SHARE_BOUND}",
        peak.saturating_sub(jsonl_peak)
    );
}
