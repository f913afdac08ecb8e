//! The registry's database rules, with synthetic releases (no components needed): versions,
//! idempotence, contract evolution, the live pointer, append-only runs, schema versions.

use std::path::Path;

use super::db::{Db, NewRelease, SCHEMA_VERSION};
use super::*;
use crate::contract::{Cardinality, Column, ColumnType, sha256_digest, test_column as column};
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
