//! The registry's database rules, with synthetic releases (no components needed): versions,
//! idempotence, contract evolution, the live pointer, append-only runs, schema versions.

use std::path::Path;

use super::db::{Db, NewRelease, SCHEMA_VERSION};
use super::*;
use crate::contract::{Cardinality, Column, ColumnType, test_column as column};
use crate::digest::sha256_digest;
use crate::evolution::ContractChange;
use crate::provenance::sample_record;

fn contract(columns: Vec<Column>) -> Contract {
    Contract {
        feature: "stats".into(),
        cardinality: Cardinality::One,
        columns,
    }
}

fn base_contract() -> Contract {
    contract(vec![
        column("words", ColumnType::Integer, false),
        column("label", ColumnType::Text, true),
    ])
}

fn new_release(hook: &str, bytes: &str, contract: Contract) -> NewRelease {
    NewRelease {
        hook: hook.into(),
        origin: format!("{bytes}.wasm"),
        digest: sha256_digest(bytes.as_bytes()),
        size: bytes.len() as u64,
        contract,
        config: "{}".into(),
        limits: ReleaseLimits::default(),
        source_ref: None,
        built_by: None,
    }
}

fn open(root: &Path) -> Db {
    Db::open(&root.join(DB_FILE)).unwrap()
}

fn run_record(run_id: &str, hook: Option<(&str, u32)>) -> RunRecord {
    let mut record = sample_record(run_id);
    record.hook.name = hook.map(|(name, _)| name.to_owned());
    record.hook.version = hook.map(|(_, version)| version);
    record
}

#[test]
fn versions_count_up_and_the_same_digest_returns_the_existing_release() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    let first = db
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    assert!(first.created);
    assert_eq!(first.release.version, 1);
    assert!(first.release.live);
    assert_eq!(first.previous_live, None);

    let second = db
        .record_release(new_release("stats", "b", base_contract()))
        .unwrap();
    assert_eq!((second.release.version, second.previous_live), (2, Some(1)));

    // Re-publishing `a` returns v1 untouched and leaves the pointer on v2.
    let again = db
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.release.version, 1);
    assert!(!again.release.live);
    assert_eq!(db.versions("stats").unwrap(), Some((2, 2)));
    assert_eq!(db.live_moves("stats").unwrap().len(), 2);
}

#[test]
fn the_same_digest_with_other_settings_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    db.record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    let mut other_config = new_release("stats", "a", base_contract());
    other_config.config = r#"{"x":1}"#.into();
    let error = db.record_release(other_config).unwrap_err();
    assert!(
        matches!(
            error,
            Error::ReleaseConflict {
                version: 1,
                what: "config",
                ..
            }
        ),
        "{error:?}"
    );
    let mut other_limits = new_release("stats", "a", base_contract());
    other_limits.limits.fuel_per_record = 5;
    let error = db.record_release(other_limits).unwrap_err();
    assert!(
        matches!(error, Error::ReleaseConflict { what: "limits", .. }),
        "{error:?}"
    );
    // Another hook may release the same bytes.
    let elsewhere = db
        .record_release(new_release("other", "a", base_contract()))
        .unwrap();
    assert_eq!(
        (elsewhere.release.hook.as_str(), elsewhere.release.version),
        ("other", 1)
    );
}

#[test]
fn versions_stay_gap_free_with_concurrent_connections() {
    let root = tempfile::tempdir().unwrap();
    open(root.path());
    // Eight writers, each its own connection, each publishing six digests; every digest is
    // published by two writers.
    let threads: Vec<_> = (0..8)
        .map(|writer| {
            let path = root.path().to_owned();
            std::thread::spawn(move || {
                let mut db = open(&path);
                for step in 0..6 {
                    let bytes = format!("digest-{}", (writer * 3 + step) % 24);
                    db.record_release(new_release("stats", &bytes, base_contract()))
                        .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let db = open(root.path());
    let releases = db.releases("stats").unwrap();
    let versions: Vec<u32> = releases.iter().map(|r| r.version).collect();
    assert_eq!(versions, (1..=24).collect::<Vec<_>>());
    let digests: std::collections::HashSet<_> = releases.iter().map(|r| &r.digest).collect();
    assert_eq!(digests.len(), 24);
    assert_eq!(db.live_moves("stats").unwrap().len(), 24);
}

#[test]
fn an_additive_contract_grows_the_hook_and_a_destructive_one_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    db.record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    let mut grown = base_contract();
    grown
        .columns
        .push(column("sentences", ColumnType::Integer, true));
    let recorded = db
        .record_release(new_release("stats", "b", grown.clone()))
        .unwrap();
    assert_eq!(
        recorded.evolution,
        Evolution::Additive {
            added: vec!["sentences".into()]
        }
    );
    assert_eq!(db.hook_contract("stats").unwrap(), Some(grown.clone()));

    // A release built from the old source now removes a column: destructive.
    let error = db
        .record_release(new_release("stats", "c", base_contract()))
        .unwrap_err();
    match error {
        Error::ContractChanged { hook, changes, .. } => {
            assert_eq!(hook, "stats");
            assert_eq!(
                changes,
                [ContractChange::ColumnRemoved {
                    column: "sentences".into()
                }]
            );
        }
        other => panic!("{other:?}"),
    }

    let mut broken = grown.clone();
    broken.cardinality = Cardinality::Many;
    broken.columns[0].ty = ColumnType::Number;
    broken
        .columns
        .push(column("needed", ColumnType::Date, false));
    let message = db
        .record_release(new_release("stats", "d", broken))
        .unwrap_err()
        .to_string();
    for expected in [
        "cardinality changed from `one` to `many`",
        "column `words` retyped from integer to number",
        "required column `needed` (date) added",
    ] {
        assert!(message.contains(expected), "{message}");
    }
    // Nothing was recorded by the refusals.
    assert_eq!(db.versions("stats").unwrap(), Some((2, 2)));
    assert_eq!(db.hook_contract("stats").unwrap(), Some(grown));
}

#[test]
fn moving_the_live_pointer_keeps_history() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    for bytes in ["a", "b", "c"] {
        db.record_release(new_release("stats", bytes, base_contract()))
            .unwrap();
    }
    let before = db.releases("stats").unwrap();
    assert_eq!(db.set_live("stats", 1).unwrap(), Some(3));
    assert_eq!(db.set_live("stats", 1).unwrap(), None, "already there");
    assert_eq!(db.versions("stats").unwrap(), Some((1, 3)));
    let after = db.releases("stats").unwrap();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(
            (&b.digest, &b.created_at, b.version),
            (&a.digest, &a.created_at, a.version)
        );
    }
    assert!(after[0].live && !after[2].live);
    let moves = db.live_moves("stats").unwrap();
    let summary: Vec<_> = moves
        .iter()
        .map(|m| (m.from_version, m.to_version, m.cause.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (None, 1, "publish"),
            (Some(1), 2, "publish"),
            (Some(2), 3, "publish"),
            (Some(3), 1, "live"),
        ]
    );
    assert!(matches!(
        db.set_live("stats", 4),
        Err(Error::ReleaseNotFound {
            version: 4,
            latest: 3,
            ..
        })
    ));
    assert!(matches!(
        db.set_live("missing", 1),
        Err(Error::HookNotFound { .. })
    ));
}

#[test]
fn runs_are_appended_read_back_and_never_changed() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    let first = run_record("0193aaaa-0000-7000-8000-000000000001", Some(("stats", 1)));
    let second = run_record("0193aaaa-0000-7000-8000-000000000002", None);
    db.record_run(&first, "{}", Some("/tmp/out")).unwrap();
    db.record_run(&second, r#"{"a":1}"#, None).unwrap();

    let all = db.runs(None, 10).unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.record.run_id.as_str()).collect();
    assert_eq!(
        ids,
        [second.run_id.as_str(), first.run_id.as_str()],
        "newest first"
    );
    assert_eq!(all[1].record, first, "every field of run.json comes back");
    assert_eq!(all[1].out_dir.as_deref(), Some("/tmp/out"));
    assert_eq!(db.runs(Some("stats"), 10).unwrap().len(), 1);
    assert_eq!(db.runs(None, 1).unwrap().len(), 1);

    assert_eq!(db.run(&second.run_id).unwrap().config, r#"{"a":1}"#);
    assert_eq!(
        db.run("0193aaaa-0000-7000-8000-000000000001")
            .unwrap()
            .record,
        first
    );
    assert!(matches!(
        db.run("0193aaaa"),
        Err(Error::RunNotFound { matches: 2, .. })
    ));
    assert!(matches!(
        db.run("ffff"),
        Err(Error::RunNotFound { matches: 0, .. })
    ));
    assert!(
        db.record_run(&first, "{}", None).is_err(),
        "a run id is recorded once"
    );

    // The database itself refuses to rewrite history (triggers fire per row, so give them
    // rows).
    db.record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    let conn = rusqlite::Connection::open(root.path().join(DB_FILE)).unwrap();
    for statement in [
        "UPDATE runs SET status = 'failed'",
        "DELETE FROM runs",
        "UPDATE releases SET digest = 'x'",
        "DELETE FROM releases",
        "DELETE FROM live_moves",
    ] {
        let error = conn.execute(statement, []).unwrap_err().to_string();
        assert!(
            error.contains("append-only") || error.contains("immutable") || error.contains("never"),
            "{statement}: {error}"
        );
    }
}

#[test]
fn a_registry_from_a_newer_host_is_refused() {
    let root = tempfile::tempdir().unwrap();
    open(root.path());
    let conn = rusqlite::Connection::open(root.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match Db::open(&root.path().join(DB_FILE)) {
        Err(Error::RegistryTooNew { found, known, .. }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reopening_keeps_everything_and_does_not_migrate_again() {
    let root = tempfile::tempdir().unwrap();
    let mut db = open(root.path());
    db.record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    drop(db);
    let db = open(root.path());
    assert_eq!(db.releases("stats").unwrap().len(), 1);
    let conn = rusqlite::Connection::open(root.path().join(DB_FILE)).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[test]
fn hook_names_and_references_are_checked() {
    for good in ["a", "text_stats", "h2", &"a".repeat(40)] {
        check_hook_name(good).unwrap();
    }
    for bad in [
        "",
        "Text",
        "2fa",
        "_x",
        "a-b",
        "a.b",
        "a/b",
        &"a".repeat(41),
    ] {
        assert!(
            matches!(check_hook_name(bad), Err(Error::InvalidHookName { .. })),
            "{bad:?}"
        );
    }
    assert_eq!(parse_reference("stats").unwrap(), ("stats", None));
    assert_eq!(parse_reference("stats@3").unwrap(), ("stats", Some(3)));
    assert_eq!(parse_reference("stats@v3").unwrap(), ("stats", Some(3)));
    for bad in ["stats@", "stats@0", "stats@x", "stats@+3", "Stats@1"] {
        assert!(parse_reference(bad).is_err(), "{bad}");
    }
}

#[test]
fn missing_hooks_and_releases_are_named() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    let error = registry.release("stats", None).unwrap_err();
    assert!(matches!(&error, Error::HookNotFound { name, .. } if name == "stats"));
    assert!(
        error
            .to_string()
            .contains(&root.path().display().to_string())
    );
    registry
        .db()
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    assert_eq!(registry.resolve("stats").unwrap().version, 1);
    assert!(matches!(
        registry.resolve("stats@2"),
        Err(Error::ReleaseNotFound {
            version: 2,
            latest: 1,
            ..
        })
    ));
    assert!(matches!(
        registry.releases("nothing"),
        Err(Error::HookNotFound { .. })
    ));
}

/// A registry with hooks `a` and `b`, two releases each, both live on v2.
fn two_hooks(root: &Path) -> Registry {
    let registry = Registry::open(root).unwrap();
    for hook in ["a", "b"] {
        for bytes in ["1", "2"] {
            registry
                .db()
                .record_release(new_release(
                    hook,
                    &format!("{hook}{bytes}"),
                    base_contract(),
                ))
                .unwrap();
        }
    }
    registry
}

fn count_rows(root: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(root.join(DB_FILE)).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })
    .unwrap()
}

fn run_id(n: u32) -> String {
    format!("0193bbbb-0000-7000-8000-{n:012}")
}

#[test]
fn resolve_all_answers_in_order_live_or_pinned() {
    let root = tempfile::tempdir().unwrap();
    let registry = two_hooks(root.path());
    let set = registry.resolve_all(&["b", "a@1"]).unwrap();
    let got: Vec<_> = set
        .iter()
        .map(|r| (r.hook.as_str(), r.version, r.live))
        .collect();
    assert_eq!(got, [("b", 2, true), ("a", 1, false)]);
    assert_eq!(set[1], registry.resolve("a@v1").unwrap());
    let set = registry.resolve_all(&["a", "b@v1"]).unwrap();
    let got: Vec<_> = set.iter().map(|r| (r.hook.as_str(), r.version)).collect();
    assert_eq!(got, [("a", 2), ("b", 1)]);
    assert!(registry.resolve_all(&[]).unwrap().is_empty());
}

#[test]
fn resolve_all_fails_as_resolve_does_and_refuses_a_hook_named_twice() {
    let root = tempfile::tempdir().unwrap();
    let registry = two_hooks(root.path());
    let error = registry.resolve_all(&["a", "missing"]).unwrap_err();
    assert!(matches!(&error, Error::HookNotFound { name, .. } if name == "missing"));
    assert_eq!(
        error.to_string(),
        registry.resolve("missing").unwrap_err().to_string()
    );
    assert!(matches!(
        registry.resolve_all(&["a", "b@3"]),
        Err(Error::ReleaseNotFound { name, version: 3, latest: 2 }) if name == "b"
    ));
    assert!(matches!(
        registry.resolve_all(&["a", "B"]),
        Err(Error::InvalidHookName { name, .. }) if name == "B"
    ));
    // The same hook twice, pinned or not, is refused by name before anything is read.
    for set in [
        &["a", "b", "a"][..],
        &["a@1", "a@2"],
        &["missing", "missing"],
    ] {
        match registry.resolve_all(set) {
            Err(Error::DuplicateHook { name }) => {
                assert_eq!(name, set[0].split('@').next().unwrap())
            }
            other => panic!("{set:?}: {other:?}"),
        }
    }
}

#[test]
fn resolve_all_is_one_snapshot_while_pointers_move_together() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let root = tempfile::tempdir().unwrap();
    let registry = two_hooks(root.path());
    let saw_both = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let path = root.path().to_owned();
        let (saw_both, done) = (saw_both.clone(), done.clone());
        std::thread::spawn(move || {
            // Its own connection, as another process would have; each step moves both
            // pointers in one transaction. At least 200 moves, then on until the reader has
            // seen both states (bounded, so a broken reader fails instead of hanging).
            let mut db = open(&path);
            let mut moves = 0;
            while moves < 200 || (!saw_both.load(Ordering::SeqCst) && moves < 20_000) {
                let version = 1 + moves % 2;
                db.set_live_together(&[("a", version), ("b", version)])
                    .unwrap();
                moves += 1;
            }
            done.store(true, Ordering::SeqCst);
            moves
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut reads = 0;
    while !done.load(Ordering::SeqCst) {
        let set = registry.resolve_all(&["a", "b"]).unwrap();
        assert_eq!(
            set[0].version, set[1].version,
            "a torn snapshot after {reads} reads"
        );
        assert!(set.iter().all(|r| r.live));
        seen.insert(set[0].version);
        if seen.len() == 2 {
            saw_both.store(true, Ordering::SeqCst);
        }
        reads += 1;
    }
    let moves = writer.join().unwrap();
    assert!(moves >= 200);
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [1, 2],
        "the reader saw the pointers move"
    );
    assert_eq!(
        registry.live_history("a").unwrap().len(),
        2 + moves as usize
    );
}

#[test]
fn a_batch_records_its_runs_and_itself_in_one_transaction() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    let records = [
        run_record(&run_id(1), Some(("a", 1))),
        run_record(&run_id(2), Some(("b", 3))),
    ];
    let runs = [
        RunEntry {
            record: &records[0],
            config: "{}",
            out_dir: Some("/out/a"),
        },
        RunEntry {
            record: &records[1],
            config: r#"{"x":1}"#,
            out_dir: None,
        },
    ];
    let summary = serde_json::json!({"records": 3, "passed": ["r1"]});
    let batch = NewBatch {
        batch_id: "batch-1",
        idempotency_key: Some("ingest-42"),
        snapshot_digest: "sha256:snap",
        runs: &runs,
        summary: &summary,
    };
    assert_eq!(
        registry.record_batch(batch).unwrap(),
        BatchRecorded::Recorded
    );

    let stored = registry
        .batch_by_key("ingest-42", "sha256:snap")
        .unwrap()
        .unwrap();
    assert_eq!(stored.batch_id, "batch-1");
    assert_eq!(stored.idempotency_key, "ingest-42");
    assert_eq!(stored.snapshot_digest, "sha256:snap");
    assert_eq!(stored.run_ids, [run_id(1), run_id(2)]);
    assert_eq!(stored.summary, summary);
    for (run, record) in runs.iter().zip(&records) {
        let kept = registry.run_record(&record.run_id).unwrap();
        assert_eq!(&kept.record, record);
        assert_eq!(
            (kept.config.as_str(), kept.out_dir.as_deref()),
            (run.config, run.out_dir)
        );
        assert_eq!(kept.recorded_at, stored.recorded_at, "one commit");
    }
    assert_eq!(
        registry.batch_by_key("ingest-42", "sha256:other").unwrap(),
        None
    );
    assert_eq!(registry.batch_by_key("other", "sha256:snap").unwrap(), None);

    // A batch one of whose runs cannot be recorded (its id is taken) records nothing at all.
    let fresh = run_record(&run_id(3), None);
    let clashing = [
        RunEntry {
            record: &fresh,
            config: "{}",
            out_dir: None,
        },
        runs[0],
    ];
    let error = registry
        .record_batch(NewBatch {
            batch_id: "batch-2",
            idempotency_key: Some("ingest-43"),
            runs: &clashing,
            ..batch
        })
        .unwrap_err();
    assert!(matches!(error, Error::Registry { .. }), "{error:?}");
    assert!(matches!(
        registry.run_record(&fresh.run_id),
        Err(Error::RunNotFound { matches: 0, .. })
    ));
    assert_eq!(
        registry.batch_by_key("ingest-43", "sha256:snap").unwrap(),
        None
    );
    assert_eq!(
        (
            count_rows(root.path(), "runs"),
            count_rows(root.path(), "batches")
        ),
        (2, 1)
    );
}

#[test]
fn the_same_key_and_snapshot_returns_the_earlier_batch_and_records_nothing() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    let summary = serde_json::json!({"n": 1});
    let batch = |batch_id, snapshot_digest, records: &[RunRecord]| {
        let runs: Vec<RunEntry<'_>> = records
            .iter()
            .map(|record| RunEntry {
                record,
                config: "{}",
                out_dir: None,
            })
            .collect();
        registry.record_batch(NewBatch {
            batch_id,
            idempotency_key: Some("key"),
            snapshot_digest,
            runs: &runs,
            summary: &summary,
        })
    };
    let first = [run_record(&run_id(1), None), run_record(&run_id(2), None)];
    assert_eq!(
        batch("first", "sha256:s1", &first).unwrap(),
        BatchRecorded::Recorded
    );
    let earlier = registry.batch_by_key("key", "sha256:s1").unwrap().unwrap();

    // Same key, same snapshot: the earlier batch comes back and neither these runs nor this
    // batch are recorded.
    let again = [run_record(&run_id(3), None), run_record(&run_id(4), None)];
    match batch("again", "sha256:s1", &again).unwrap() {
        BatchRecorded::Existing(existing) => {
            assert_eq!(existing, earlier);
            assert_eq!(existing.run_ids, [run_id(1), run_id(2)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(count_rows(root.path(), "runs"), 2);
    assert_eq!(count_rows(root.path(), "batches"), 1);
    assert!(registry.run_record(&run_id(3)).is_err());

    // Same key, another snapshot (a live pointer moved): a new batch.
    assert_eq!(
        batch("later", "sha256:s2", &again).unwrap(),
        BatchRecorded::Recorded
    );
    assert_eq!(
        registry
            .batch_by_key("key", "sha256:s2")
            .unwrap()
            .unwrap()
            .run_ids,
        [run_id(3), run_id(4)]
    );
    assert_eq!(count_rows(root.path(), "runs"), 4);
    assert_eq!(count_rows(root.path(), "batches"), 2);
}

#[test]
fn a_batch_without_a_key_records_its_runs_only() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    let record = run_record(&run_id(1), Some(("a", 1)));
    let runs = [RunEntry {
        record: &record,
        config: "{}",
        out_dir: None,
    }];
    let recorded = registry
        .record_batch(NewBatch {
            batch_id: "unkeyed",
            idempotency_key: None,
            snapshot_digest: "sha256:snap",
            runs: &runs,
            summary: &serde_json::json!({}),
        })
        .unwrap();
    assert_eq!(recorded, BatchRecorded::Recorded);
    assert_eq!(registry.run_record(&record.run_id).unwrap().record, record);
    assert_eq!(count_rows(root.path(), "batches"), 0);
}

#[test]
fn batches_are_never_changed() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    registry
        .record_batch(NewBatch {
            batch_id: "b",
            idempotency_key: Some("key"),
            snapshot_digest: "sha256:snap",
            runs: &[],
            summary: &serde_json::json!({}),
        })
        .unwrap();
    let conn = rusqlite::Connection::open(root.path().join(DB_FILE)).unwrap();
    for statement in [
        "UPDATE batches SET run_ids = '[]'",
        "UPDATE batches SET snapshot_digest = 'x'",
        "DELETE FROM batches",
    ] {
        let error = conn.execute(statement, []).unwrap_err().to_string();
        assert!(
            error.contains("batches are append-only"),
            "{statement}: {error}"
        );
    }
    assert_eq!(
        registry
            .batch_by_key("key", "sha256:snap")
            .unwrap()
            .unwrap()
            .batch_id,
        "b"
    );
}

#[test]
fn a_version_1_registry_upgrades_in_place_and_keeps_its_data() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(DB_FILE);
    let mut old = Db::create_at_version(&path, 1).unwrap();
    old.record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    let record = run_record(&run_id(1), Some(("stats", 1)));
    old.record_run(&record, "{}", Some("/out")).unwrap();
    drop(old);
    let tables = |conn: &rusqlite::Connection| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'batches'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(tables(&conn), 0, "a version 1 registry has no batches");
    drop(conn);

    let registry = Registry::open(root.path()).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!((version, SCHEMA_VERSION), (2, 2));
    assert_eq!(tables(&conn), 1);
    assert_eq!(registry.resolve("stats").unwrap().version, 1);
    let kept = registry.run_record(&record.run_id).unwrap();
    assert_eq!(
        (kept.record, kept.out_dir.as_deref()),
        (record, Some("/out"))
    );
    let runs = [];
    registry
        .record_batch(NewBatch {
            batch_id: "b",
            idempotency_key: Some("key"),
            snapshot_digest: "sha256:snap",
            runs: &runs,
            summary: &serde_json::json!({}),
        })
        .unwrap();
    assert!(
        registry
            .batch_by_key("key", "sha256:snap")
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_up_to_date_registry_opens_while_another_connection_holds_the_write_lock() {
    let root = tempfile::tempdir().unwrap();
    open(root.path());
    let writer = rusqlite::Connection::open(root.path().join(DB_FILE)).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Were the migration lock taken on every open, this would wait BUSY_TIMEOUT and fail.
    let registry = Registry::open(root.path()).unwrap();
    assert!(registry.hooks().unwrap().is_empty());
    writer.execute_batch("ROLLBACK").unwrap();
}
