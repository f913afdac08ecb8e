//! Feature tables in PostgreSQL (issue 14): `host run --sink` writes one typed table per hook
//! in the registry's own database, every row's `run_id` a foreign key to its run, rows and run
//! records in one transaction.
//!
//! The server is the throwaway cluster of `common/postgres.rs` (or `HOOKHOST_TEST_POSTGRES`);
//! each test has a database of its own. Without PostgreSQL these tests fail: they never skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::postgres::{fresh_database, query, scalar, try_execute};
use common::{guest, jsonl, ok};
use serde_json::{Value, json};

/// `host --registry URL --root ROOT ARGS` (no registry flag for a local one).
fn host(registry: Option<&str>, root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    if let Some(url) = registry {
        command.arg("--registry").arg(url);
    }
    command
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("HOOKHOST_REGISTRY")
        .env_remove("HOOKHOST_HOME");
    command
}

/// The stderr of a command that must fail.
fn refused(output: Output) -> String {
    assert!(
        !output.status.success(),
        "expected a refusal, got:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).unwrap()
}

/// `component` copied as `<dir>/<name>.wasm`: a file hook's table is named after its file.
fn as_file(component: &Path, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::copy(component, &path).unwrap();
    path
}

fn run_json(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

/// `host run HOOK --input INPUT --out OUT --sink URL`, for a registry at `url`.
fn run_sink(url: &str, root: &Path, hook: &str, input: &Path, out: &Path) -> Output {
    host(
        Some(url),
        root,
        &[
            "run",
            hook,
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sink",
            url,
        ],
    )
    .output()
    .unwrap()
}

/// The rows of `sql` with the session in UTC (timestamps print the same wherever it runs).
fn utc_query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    query(url, &format!("SET TimeZone = 'UTC'; {sql}"))
}

fn text(value: &str) -> Option<String> {
    Some(value.to_owned())
}

#[test]
fn every_column_type_round_trips_with_its_run_and_the_jsonl_content_digest() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            (
                "full",
                json!({"rows": [
                    {"label": "first", "n": -9_007_199_254_740_993i64, "x": 0.25, "flag": true,
                     "at": "2024-05-01T12:00:00.123456+02:00", "day": "2024-02-29",
                     "key": "67e55044-10b1-426f-9247-bb680e5fe0c8",
                     "doc": {"b": [1, 2, {"c": null}], "a": "ü"},
                     "embedding": [0.5, -1.0, 1e-300]},
                    {"label": "second", "embedding": [], "doc": [true, "x"]}
                ]}),
            ),
            ("nulls", json!({"rows": [{"label": "only"}]})),
            ("refused", json!({"reject": true})),
            ("none", json!({"rows": []})),
        ]),
    )
    .unwrap();
    let hook = as_file(&guest("all_types"), temp.path(), "all_types");
    let out = temp.path().join("out");
    let stdout = ok(run_sink(
        &url,
        &temp.path().join("root"),
        hook.to_str().unwrap(),
        &input,
        &out,
    ));
    assert!(
        stdout.contains("(3 feature rows)") && stdout.contains("hookhost_features.all_types"),
        "{stdout}"
    );

    // run.json names the table; no features.jsonl; rejections stay in the run directory.
    let record = run_json(&out);
    let run_id = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["features_table"]["schema"], "hookhost_features");
    assert_eq!(record["features_table"]["table"], "all_types");
    assert_eq!(record["features_table"]["rows"], 3);
    assert!(!out.join("features.jsonl").exists());
    assert!(record["outputs"].get("features.jsonl").is_none());
    let rejections = std::fs::read_to_string(out.join("rejections.jsonl")).unwrap();
    assert!(rejections.contains("\"refused\""), "{rejections}");

    // The SQL types, from the catalogue.
    let types = query(
        &url,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns
         WHERE table_schema = 'hookhost_features' AND table_name = 'all_types'
         ORDER BY ordinal_position",
    );
    let expected = [
        ("run_id", "uuid", "NO"),
        ("record_id", "text", "NO"),
        ("ordinal", "integer", "NO"),
        ("label", "text", "NO"),
        ("n", "bigint", "YES"),
        ("x", "double precision", "YES"),
        ("flag", "boolean", "YES"),
        ("at", "timestamp with time zone", "YES"),
        ("day", "date", "YES"),
        ("key", "uuid", "YES"),
        ("doc", "jsonb", "YES"),
        ("embedding", "ARRAY", "YES"),
    ];
    let got: Vec<(String, String, String)> = types
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].clone().unwrap(),
                r[2].clone().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
    let element = query(
        &url,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'hookhost_features.all_types'::regclass AND attname = 'embedding'",
    );
    assert_eq!(element[0][0].as_deref(), Some("double precision[]"));
    let comment = query(
        &url,
        "SELECT col_description('hookhost_features.all_types'::regclass, 4)",
    );
    assert_eq!(
        comment[0][0].as_deref(),
        Some("What the row is called (the record's id by default)")
    );

    // Every value, as PostgreSQL renders it: the timestamp normalised to UTC with its
    // microseconds, json as jsonb (keys sorted, spacing its own), the vector as an array.
    let rows = utc_query(
        &url,
        "SELECT record_id, ordinal, label, n, x, flag, at, day, key, doc, embedding,
                run_id::text
         FROM hookhost_features.all_types ORDER BY record_id, ordinal",
    );
    let run = text(&run_id);
    assert_eq!(
        rows,
        vec![
            vec![
                text("full"),
                text("0"),
                text("first"),
                text("-9007199254740993"),
                text("0.25"),
                text("t"),
                text("2024-05-01 10:00:00.123456+00"),
                text("2024-02-29"),
                text("67e55044-10b1-426f-9247-bb680e5fe0c8"),
                text(r#"{"a": "ü", "b": [1, 2, {"c": null}]}"#),
                text("{0.5,-1,1e-300}"),
                run.clone(),
            ],
            vec![
                text("full"),
                text("1"),
                text("second"),
                None,
                None,
                None,
                None,
                None,
                None,
                text(r#"[true, "x"]"#),
                text("{}"),
                run.clone(),
            ],
            vec![
                text("nulls"),
                text("0"),
                text("only"),
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                run.clone(),
            ],
        ]
    );
    // jsonb, not text: it can be queried as JSON.
    assert_eq!(
        scalar(
            &url,
            "SELECT (doc -> 'b' ->> 1)::bigint FROM hookhost_features.all_types
             WHERE label = 'first'"
        ),
        2
    );

    // The content digest is what a JSONL run of the same rows has.
    let jsonl_out = temp.path().join("jsonl");
    ok(host(
        None,
        &temp.path().join("local"),
        &[
            "run",
            hook.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            jsonl_out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    let jsonl_record = run_json(&jsonl_out);
    assert_eq!(
        record["features_table"]["content_sha256"],
        jsonl_record["outputs"]["features.jsonl"]["content_sha256"]
    );
    assert_eq!(jsonl_record["outputs"]["features.jsonl"]["rows"], 3);

    // The README's query: each row joined to its run and (for a release) its release.
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let start = readme
        .find("```sql\n-- feature rows with their runs")
        .expect("the README's feature-table query");
    let sql = &readme[start + "```sql\n".len()..];
    let sql = &sql[..sql.find("```").unwrap()].replace("text_stats", "all_types");
    let joined = query(&url, sql);
    assert_eq!(joined.len(), 3, "{joined:?}");
    assert!(
        joined
            .iter()
            .all(|row| row.contains(&run) && row.contains(&text("succeeded"))),
        "{joined:?}"
    );
}

#[test]
fn an_additive_release_grows_the_table_and_a_destructive_contract_is_refused() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    let input = temp.path().join("in.jsonl");
    std::fs::write(
        &input,
        jsonl(&[
            ("a", json!({"text": "one two"})),
            ("b", json!({"text": ""})),
        ]),
    )
    .unwrap();
    let publish = |fixture: &str| {
        ok(host(
            Some(&url),
            &root,
            &[
                "publish",
                guest(fixture).to_str().unwrap(),
                "--name",
                "evolve",
            ],
        )
        .output()
        .unwrap())
    };
    let columns = || {
        query(
            &url,
            "SELECT column_name, is_nullable FROM information_schema.columns
             WHERE table_schema = 'hookhost_features' AND table_name = 'evolve'
             ORDER BY ordinal_position",
        )
        .into_iter()
        .map(|r| format!("{} {}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap()))
        .collect::<Vec<_>>()
    };
    let base = [
        "run_id NO",
        "record_id NO",
        "ordinal NO",
        "length NO",
        "label YES",
    ];

    publish("evolve_base");
    ok(run_sink(
        &url,
        &root,
        "evolve",
        &input,
        &temp.path().join("v1"),
    ));
    assert_eq!(columns(), base);

    publish("evolve_grown");
    ok(run_sink(
        &url,
        &root,
        "evolve",
        &input,
        &temp.path().join("v2"),
    ));
    let mut grown = base.to_vec();
    grown.push("words YES");
    assert_eq!(
        columns(),
        grown,
        "the additive release added its column, nullable"
    );
    let words = query(
        &url,
        "SELECT r.version, f.record_id, f.words FROM hookhost_features.evolve f
         JOIN runs r ON r.run_uuid = f.run_id ORDER BY r.version, f.record_id",
    );
    assert_eq!(
        words,
        vec![
            vec![text("1"), text("a"), None],
            vec![text("1"), text("b"), None],
            vec![text("2"), text("a"), text("2")],
            vec![text("2"), text("b"), text("0")],
        ]
    );

    // A rollback: v1's contract lacks `words`, which its rows leave null.
    ok(host(Some(&url), &root, &["live", "evolve", "1"])
        .output()
        .unwrap());
    ok(run_sink(
        &url,
        &root,
        "evolve",
        &input,
        &temp.path().join("v1-again"),
    ));
    assert_eq!(
        scalar(
            &url,
            "SELECT count(*) FROM hookhost_features.evolve WHERE words IS NULL"
        ),
        4
    );

    // A component file whose contract breaks the table's is refused before anything runs,
    // naming every change.
    let runs_before = scalar(&url, "SELECT count(*) FROM runs");
    let retyped = as_file(&guest("evolve_retyped"), temp.path(), "evolve");
    let out = temp.path().join("retyped");
    let error = refused(run_sink(
        &url,
        &root,
        retyped.to_str().unwrap(),
        &input,
        &out,
    ));
    assert!(
        error.contains("feature table")
            && error.contains("hookhost_features.evolve")
            && error.contains("column `length` retyped from integer to number")
            && error.contains("required column `checksum` (integer) added")
            && !error.contains("`words`"),
        "{error}"
    );
    assert!(!out.exists(), "nothing ran, so no output directory");
    assert_eq!(scalar(&url, "SELECT count(*) FROM runs"), runs_before);
    assert_eq!(columns(), grown, "the table is untouched");
}

#[test]
fn a_hook_set_writes_its_tables_through_one_transaction() {
    // Enough records that each hook's sink sends several COPYs, interleaved on the one
    // connection.
    const RECORDS: usize = 25_000;
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    write_lines(&input, RECORDS, |i| {
        format!("{{\"id\":\"r{i}\",\"metadata\":{{\"n\":{i},\"text\":\"a b c\"}}}}")
    });
    let all_types = as_file(&guest("all_types"), temp.path(), "all_types");
    let evolve = as_file(&guest("evolve_base"), temp.path(), "evolve");
    let out = temp.path().join("out");
    let stdout = ok(host(
        Some(&url),
        &temp.path().join("root"),
        &[
            "run",
            all_types.to_str().unwrap(),
            evolve.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sink",
            &url,
            "--sink-schema",
            "features_of_tests",
        ],
    )
    .output()
    .unwrap());
    assert!(stdout.contains("25000 passed every hook"), "{stdout}");
    for (hook, table) in [("all_types", "all_types"), ("evolve", "evolve")] {
        let record = run_json(&out.join(hook));
        assert_eq!(record["features_table"]["schema"], "features_of_tests");
        assert_eq!(record["features_table"]["rows"], RECORDS as u64);
        assert!(!out.join(hook).join("features.jsonl").exists());
        let run_id = record["run_id"].as_str().unwrap();
        assert_eq!(
            scalar(
                &url,
                &format!(
                    "SELECT count(*) FROM features_of_tests.{table} f
                     JOIN runs r ON r.run_uuid = f.run_id
                     WHERE r.run_id = '{run_id}' AND r.status = 'succeeded'"
                )
            ),
            RECORDS as i64
        );
    }
    assert_eq!(scalar(&url, "SELECT count(*) FROM runs"), 2);
    assert_eq!(
        scalar(&url, "SELECT sum(length) FROM features_of_tests.evolve"),
        5 * RECORDS as i64
    );
}

#[test]
fn the_foreign_key_refuses_a_row_whose_run_is_not_recorded() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, jsonl(&[("a", json!({}))])).unwrap();
    let hook = as_file(&guest("all_types"), temp.path(), "all_types");
    ok(run_sink(
        &url,
        &temp.path().join("root"),
        hook.to_str().unwrap(),
        &input,
        &temp.path().join("out"),
    ));
    let error = try_execute(
        &url,
        &format!(
            "INSERT INTO hookhost_features.all_types (run_id, record_id, ordinal, label)
             VALUES ('{}', 'x', 0, 'orphan')",
            uuid::Uuid::now_v7()
        ),
    )
    .unwrap_err();
    // 23503: foreign_key_violation (checked at commit: the constraint is deferred).
    assert!(error.starts_with("23503"), "{error}");
    // A row of the recorded run goes in (under a new record id).
    let run_id = run_json(&temp.path().join("out"))["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    try_execute(
        &url,
        &format!(
            "INSERT INTO hookhost_features.all_types (run_id, record_id, ordinal, label)
             VALUES ('{run_id}', 'added by hand', 0, 'ok')"
        ),
    )
    .unwrap();
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM hookhost_features.all_types"),
        2
    );
    let constraint = query(
        &url,
        "SELECT condeferrable, condeferred FROM pg_constraint
         WHERE conrelid = 'hookhost_features.all_types'::regclass AND contype = 'f'",
    );
    assert_eq!(constraint, vec![vec![text("t"), text("t")]]);
}

#[test]
fn a_killed_run_leaves_no_rows_and_no_run() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..400_000 {
            writeln!(file, "{{\"id\":\"r{i}\",\"metadata\":{{\"n\":{i}}}}}").unwrap();
        }
    }
    let hook = as_file(&guest("all_types"), temp.path(), "all_types");
    let out = temp.path().join("out");
    let mut child = host(
        Some(&url),
        &temp.path().join("root"),
        &[
            "run",
            hook.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sink",
            &url,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Rows are in the batch's transaction once the table's DDL has committed (the table is
    // visible) and a backend of this database holds a transaction id (it wrote): the batch's
    // transaction is then the only one that writes.
    let writing = "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_xid IS NOT NULL
           AND to_regclass('hookhost_features.all_types') IS NOT NULL";
    let started = Instant::now();
    while scalar(&url, writing) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no rows were written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before it was killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server notices the connection is gone and rolls its transaction back.
    let started = Instant::now();
    let any_writer = "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_xid IS NOT NULL";
    while scalar(&url, any_writer) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the transaction lives on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM hookhost_features.all_types"),
        0
    );
    assert_eq!(scalar(&url, "SELECT count(*) FROM runs"), 0);
    assert!(!out.exists());
}

#[test]
fn a_batch_begun_again_under_its_key_inserts_nothing_twice() {
    use hookhost::embed::{Batch, BatchOptions, BatchState, EmbedConfig, Hookhost, Record};
    use hookhost::exec::{BatchRequest, Layout, Plan, execute};
    use hookhost::registry::{BatchRecorded, DEFAULT_FEATURE_SCHEMA, Registry, RegistryLocation};
    use hookhost::sink::Features;

    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    ok(host(
        Some(&url),
        &root,
        &[
            "publish",
            guest("all_types").to_str().unwrap(),
            "--name",
            "all_types",
        ],
    )
    .output()
    .unwrap());
    let records = || (0..50).map(|n| Record::new(format!("r{n}"), json!({"n": n})));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (snapshot, first) = runtime.block_on(async {
        let hookhost = Hookhost::open(
            &root,
            EmbedConfig {
                registry: RegistryLocation::Postgres(url.clone()),
                ..EmbedConfig::default()
            },
        )
        .await
        .unwrap();
        let snapshot = hookhost.snapshot(&["all_types"]).await.unwrap();
        let options = || {
            BatchOptions::default()
                .with_idempotency_key("batch-7")
                .with_feature_tables(DEFAULT_FEATURE_SCHEMA)
        };
        let first = hookhost
            .begin(&snapshot, Batch::from_records(records()), options())
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(first.state, BatchState::Succeeded);
        // Begun again under its key: the earlier batch, nothing run.
        let handle = hookhost
            .begin(&snapshot, Batch::from_records(records()), options())
            .await
            .unwrap();
        assert!(handle.is_reused());
        let again = handle.await.unwrap();
        assert_eq!(again.batch_id, first.batch_id);
        (snapshot, first)
    });
    assert_eq!(first.hooks[0].run.features_table.as_ref().unwrap().rows, 50);
    assert!(
        first.hooks[0]
            .outcomes
            .as_ref()
            .unwrap()
            .features
            .is_empty()
    );
    let count = "SELECT count(*) FROM hookhost_features.all_types";
    assert_eq!(scalar(&url, count), 50);

    // A worker that ran the batch anyway (it raced the first) finds the key recorded at the
    // end: its rows are rolled back with its runs.
    let registry = std::sync::Arc::new(Registry::connect(&url, &root).unwrap());
    let hook = &snapshot.hooks()[0];
    let plan = Plan::new(
        "all_types",
        hook.component.clone(),
        Some(("all_types".into(), 1)),
        None,
        &hook.limits,
        None,
    )
    .unwrap();
    let mut request = BatchRequest::new(vec![plan], Layout::Memory);
    request.idempotency_key = Some("batch-7".into());
    request.snapshot_digest = snapshot.digest().to_owned();
    request.features = Features::Tables(registry.feature_tables(DEFAULT_FEATURE_SCHEMA).unwrap());
    request.recorder = Some(registry.clone());
    let mut source = hookhost::input::ValuesSource::new(records(), None);
    let executed = execute(request, &mut source, &mut |_| {}).unwrap();
    assert_eq!(executed.result.hooks[0].run.records.passed, 50, "it ran");
    match executed.recorded {
        Some(BatchRecorded::Existing(existing)) => assert_eq!(existing.batch_id, first.batch_id),
        other => panic!("expected the existing batch, got {other:?}"),
    }
    assert_eq!(scalar(&url, count), 50, "no row of the second batch stayed");
    assert_eq!(scalar(&url, "SELECT count(*) FROM runs"), 1);
}

#[test]
fn a_sqlite_registry_and_another_database_are_refused_before_anything_runs() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, jsonl(&[("a", json!({}))])).unwrap();
    let hook = as_file(&guest("all_types"), temp.path(), "all_types");
    let url = fresh_database();
    let run = |registry: Option<&str>, sink: &str, out: &Path| {
        host(
            registry,
            &temp.path().join("root"),
            &[
                "run",
                hook.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--sink",
                sink,
            ],
        )
        .output()
        .unwrap()
    };

    let out = temp.path().join("sqlite");
    let error = refused(run(None, &url, &out));
    assert!(
        error.contains("the registry is SQLite")
            && error.contains("registry.db")
            && error.contains("foreign key to the registry's runs"),
        "{error}"
    );
    assert!(!out.exists());

    let other = fresh_database();
    let out = temp.path().join("other");
    let error = refused(run(Some(&url), &other, &out));
    let name = |u: &str| {
        u.split('/')
            .nth(3)
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        error.contains("is not the registry's own database")
            && error.contains(&name(&other))
            && error.contains(&name(&url))
            && error.contains("holds no hookhost registry"),
        "{error}"
    );
    assert!(!out.exists());
    assert_eq!(scalar(&url, "SELECT count(*) FROM runs"), 0);
    let tables = "SELECT count(*) FROM pg_namespace WHERE nspname = 'hookhost_features'";
    assert_eq!(scalar(&other, tables), 0);
    assert_eq!(scalar(&url, tables), 0);

    // The same database by another spelling of its URL is the registry's own.
    let out = temp.path().join("same");
    let respelled = format!("{url}&application_name=feature_sink");
    ok(run(Some(&url), &respelled, &out));
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM hookhost_features.all_types"),
        1
    );
}

/// The peak resident memory of `host run --sink` over 1 000 000 records must stay under this.
/// What grows with the batch is the duplicate-id table (20 bytes per id plus the hash table's
/// slack: about 50 MiB at a million ids); the COPY buffer is bounded ([`COPY_FLUSH_ROWS`] rows,
/// a few MiB) and the rest — the engine, the sandboxes, a chunk of records — is fixed. Keeping
/// the rows until the end (about 400 bytes each as values) would take over 350 MiB.
///
/// [`COPY_FLUSH_ROWS`]: hookhost::registry::tables::COPY_FLUSH_ROWS
const MILLION_PEAK_BOUND_BYTES: u64 = 160 << 20;

#[test]
fn a_million_records_go_into_postgresql_in_bounded_memory() {
    const RECORDS: usize = 1_000_000;
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    write_lines(&input, RECORDS, |i| {
        format!("{{\"id\":\"record-{i:08}\",\"metadata\":{{\"n\":{i}}}}}")
    });
    let hook = as_file(&guest("all_types"), temp.path(), "all_types");
    let out = temp.path().join("out");
    let started = Instant::now();
    // Waited for by `wait4` (which gives this child's own peak memory), not by `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let child = host(
        Some(&url),
        &temp.path().join("root"),
        &[
            "run",
            hook.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--sink",
            &url,
            "--chunk-size",
            "256",
        ],
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(temp.path().join("stderr")).unwrap())
    .spawn()
    .unwrap();
    let (status, peak) = wait_with_peak_rss(child.id());
    let stderr = std::fs::read_to_string(temp.path().join("stderr")).unwrap();
    let elapsed = started.elapsed();
    assert!(status, "host run failed:\n{stderr}");
    eprintln!(
        "1 000 000 records into PostgreSQL in {elapsed:?}, peak RSS {} MiB (bound {} MiB)",
        peak >> 20,
        MILLION_PEAK_BOUND_BYTES >> 20
    );
    let record = run_json(&out);
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["features_table"]["rows"], RECORDS as u64);
    assert_eq!(
        scalar(&url, "SELECT count(*) FROM hookhost_features.all_types"),
        RECORDS as i64
    );
    assert_eq!(
        scalar(
            &url,
            "SELECT sum(n) FROM hookhost_features.all_types WHERE label = record_id"
        ),
        (RECORDS as i64 - 1) * RECORDS as i64 / 2
    );
    assert!(
        peak < MILLION_PEAK_BOUND_BYTES,
        "peak RSS {peak} bytes, over the bound of {MILLION_PEAK_BOUND_BYTES}"
    );
}

/// Waits for child `pid`; whether it succeeded, and its peak resident set in bytes, from the
/// kernel's own accounting of that one child (`wait4`), not of every child this process had.
#[allow(unsafe_code)]
fn wait_with_peak_rss(pid: u32) -> (bool, u64) {
    let mut status = 0;
    // SAFETY: `wait4` writes only into the two values we hand it; `rusage` is plain data.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(
        waited,
        pid as libc::pid_t,
        "wait4: {}",
        std::io::Error::last_os_error()
    );
    let succeeded = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // Linux reports ru_maxrss in KiB.
    (succeeded, usage.ru_maxrss as u64 * 1024)
}

#[test]
fn the_embedding_api_refuses_feature_tables_without_a_postgresql_registry() {
    use hookhost::embed::{Batch, BatchOptions, EmbedConfig, Hookhost, Record};
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    ok(host(
        None,
        &root,
        &[
            "publish",
            guest("all_types").to_str().unwrap(),
            "--name",
            "all_types",
        ],
    )
    .output()
    .unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let error = runtime.block_on(async {
        let hookhost = Hookhost::open(&root, EmbedConfig::default()).await.unwrap();
        let snapshot = hookhost.snapshot(&["all_types"]).await.unwrap();
        let batch = Batch::from_records([Record::new("a", json!({}))]);
        let options = BatchOptions::default().with_feature_tables("hookhost_features");
        hookhost.begin(&snapshot, batch, options).await.unwrap_err()
    });
    assert!(
        matches!(error, hookhost::Error::FeatureTables { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("the registry is SQLite") && message.contains("foreign key"),
        "{message}"
    );
    assert_eq!(
        hookhost::registry::Registry::open(&root)
            .unwrap()
            .runs(None, 10)
            .unwrap()
            .len(),
        0
    );
}

/// Writes `count` lines to `path`, line `i` made by `line(i)`: a long batch without holding it
/// in memory.
fn write_lines(path: &Path, count: usize, line: impl Fn(usize) -> String) {
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..count {
        writeln!(file, "{}", line(i)).unwrap();
    }
    file.flush().unwrap();
}
