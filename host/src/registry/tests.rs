//! The registry's promises, with synthetic releases (no components needed): versions,
//! idempotence, contract evolution, the live pointer, append-only runs, run-id prefixes,
//! snapshots and batches.
//!
//! Every promise test runs on each of [`backends`]: a store is only a store if these pass on
//! it. Tests of one backend's own machinery (SQLite's schema versions and locks) are beside it,
//! in `sqlite/tests.rs`.

use std::path::Path;

use super::*;
use crate::contract::{Cardinality, Column, ColumnType, test_column as column};
use crate::digest::sha256_digest;
use crate::evolution::ContractChange;
use crate::provenance::{RunStatus, sample_record};

/// A way to open a registry, and to reach under it into its database the way someone with
/// direct access could.
pub(super) struct Backend {
    /// For messages.
    pub name: &'static str,
    /// Opens the registry for `root`. Opening the same root again gives another handle, with
    /// its own connection, on the same registry (as another process would have).
    pub open: fn(&Path) -> Registry,
    /// How many rows a table (`runs`, `batches`, …) holds, read outside the registry.
    pub count_rows: fn(&Path, &str) -> u64,
    /// Runs one SQL statement outside the registry; its error's message if it fails.
    pub execute_raw: fn(&Path, &str) -> Result<(), String>,
    /// Creates the registry of `root` with the schema as it was before issue 26 (no actors,
    /// times as text in PostgreSQL), empty.
    pub create_previous: fn(&Path),
    /// How the database would run `select` (one line per plan row): SQLite's
    /// `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN` with sequential and bitmap scans ruled out
    /// where an index can serve (so a tiny test table shows which index would).
    pub explain: fn(&Path, &str) -> Vec<String>,
}

/// Every backend the promise tests run on: SQLite under the root, and PostgreSQL (a database
/// of its own per root, on the test server `postgres/tests.rs` starts or
/// `HOOKHOST_TEST_POSTGRES` names).
pub(super) fn backends() -> Vec<Backend> {
    vec![
        Backend {
            name: "sqlite",
            open: |root| Registry::open(root).unwrap(),
            count_rows: super::sqlite::tests::count_rows,
            execute_raw: super::sqlite::tests::execute_raw,
            create_previous: |root| {
                std::fs::create_dir_all(root).unwrap();
                SqliteStore::create_at_version(&root.join(DB_FILE), 2).unwrap();
            },
            explain: super::sqlite::tests::explain,
        },
        Backend {
            name: "postgres",
            open: super::postgres::tests::open,
            count_rows: super::postgres::tests::count_rows,
            execute_raw: super::postgres::tests::execute_raw,
            create_previous: super::postgres::tests::create_previous,
            explain: super::postgres::tests::explain,
        },
    ]
}

/// Runs `test` on each backend, each time with a fresh root.
fn on_every_backend(test: impl Fn(&Backend, &Path)) {
    for backend in backends() {
        // Captured output, shown with a failure: which backend failed.
        eprintln!("backend: {}", backend.name);
        let root = tempfile::tempdir().unwrap();
        test(&backend, root.path());
    }
}

fn contract(columns: Vec<Column>) -> Contract {
    Contract {
        feature: "stats".into(),
        cardinality: Cardinality::One,
        columns,
    }
}

pub(super) fn base_contract() -> Contract {
    contract(vec![
        column("words", ColumnType::Integer, false),
        column("label", ColumnType::Text, true),
    ])
}

pub(super) fn new_release(hook: &str, bytes: &str, contract: Contract) -> NewRelease {
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
        make_live: true,
        published_by: Actor::local(),
    }
}

/// Moves `hook`'s live pointer by this process's user, unconditionally.
pub(super) fn move_live(registry: &Registry, hook: &str, version: u32) -> Result<LiveMoved, Error> {
    registry.set_live(hook, version, LiveRequest::local())
}

pub(super) fn run_record(run_id: &str, hook: Option<(&str, u32)>) -> RunRecord {
    let mut record = sample_record(run_id);
    record.hook.name = hook.map(|(name, _)| name.to_owned());
    record.hook.version = hook.map(|(_, version)| version);
    record
}

pub(super) fn run_id(n: u32) -> String {
    format!("0193bbbb-0000-7000-8000-{n:012}")
}

/// The hook's live and latest versions, as the store has them, if it exists.
fn versions(registry: &Registry, hook: &str) -> Option<(u32, u32)> {
    let stored = registry.store.read().unwrap().hook(hook).unwrap();
    stored.map(|h| (h.live_version, h.latest_version))
}

/// The hook's contract, as the store has it, if it exists.
fn hook_contract(registry: &Registry, hook: &str) -> Option<Contract> {
    let stored = registry.store.read().unwrap().hook(hook).unwrap();
    stored.map(|h| h.contract)
}

fn record_run(registry: &Registry, record: &RunRecord, config: &str, out_dir: Option<&str>) {
    try_record_run(registry, record, config, out_dir).unwrap()
}

fn try_record_run(
    registry: &Registry,
    record: &RunRecord,
    config: &str,
    out_dir: Option<&str>,
) -> Result<(), Error> {
    registry.record_run(RunEntry {
        record,
        config,
        out_dir,
    })
}

#[test]
fn versions_count_up_and_the_same_digest_returns_the_existing_release() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let first = registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        assert!(first.created);
        assert_eq!(first.release.version, 1);
        assert!(first.release.live);
        assert_eq!(first.previous_live, None);

        let second = registry
            .record_release(new_release("stats", "b", base_contract()))
            .unwrap();
        assert_eq!((second.release.version, second.previous_live), (2, Some(1)));

        // Re-publishing `a` returns v1 untouched and leaves the pointer on v2.
        let again = registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.release.version, 1);
        assert!(!again.release.live);
        assert_eq!(versions(&registry, "stats"), Some((2, 2)));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 2);
        // What publishing returned is what the store keeps.
        assert_eq!(registry.releases("stats").unwrap()[0], again.release);
        assert_eq!(registry.release("stats", None).unwrap(), second.release);
    });
}

#[test]
fn the_next_version_follows_the_latest_not_the_live_one() {
    on_every_backend(|backend, root| {
        let registry = with_releases(backend, root, "stats", &["a", "b", "c"]);
        move_live(&registry, "stats", 1).unwrap();
        let next = registry
            .record_release(new_release("stats", "d", base_contract()))
            .unwrap();
        assert_eq!((next.release.version, next.previous_live), (4, Some(1)));
        assert_eq!(versions(&registry, "stats"), Some((4, 4)));
        // Re-publishing a release that is not live does not move the pointer back to it.
        let again = registry
            .record_release(new_release("stats", "b", base_contract()))
            .unwrap();
        assert_eq!((again.release.version, again.created), (2, false));
        assert_eq!(versions(&registry, "stats"), Some((4, 4)));
    });
}

#[test]
fn the_same_digest_with_other_settings_is_refused() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        let mut other_config = new_release("stats", "a", base_contract());
        other_config.config = r#"{"x":1}"#.into();
        let error = registry.record_release(other_config).unwrap_err();
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
        let error = registry.record_release(other_limits).unwrap_err();
        assert!(
            matches!(error, Error::ReleaseConflict { what: "limits", .. }),
            "{error:?}"
        );
        let mut both = new_release("stats", "a", base_contract());
        both.config = r#"{"x":1}"#.into();
        both.limits.timeout_ms = 1;
        let error = registry.record_release(both).unwrap_err();
        assert!(
            matches!(
                error,
                Error::ReleaseConflict {
                    what: "config and limits",
                    ..
                }
            ),
            "{error:?}"
        );
        // The refusals recorded nothing.
        assert_eq!(versions(&registry, "stats"), Some((1, 1)));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 1);
        // Another hook may release the same bytes.
        let elsewhere = registry
            .record_release(new_release("other", "a", base_contract()))
            .unwrap();
        assert_eq!(
            (elsewhere.release.hook.as_str(), elsewhere.release.version),
            ("other", 1)
        );
    });
}

#[test]
fn versions_stay_gap_free_with_concurrent_connections() {
    on_every_backend(|backend, root| {
        (backend.open)(root);
        // Eight writers, each its own connection, each publishing six digests; every digest
        // is published by two writers.
        let started = std::time::Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|writer| {
                let path = root.to_owned();
                let open = backend.open;
                std::thread::spawn(move || {
                    let registry = open(&path);
                    for step in 0..6 {
                        let bytes = format!("digest-{}", (writer * 3 + step) % 24);
                        registry
                            .record_release(new_release("stats", &bytes, base_contract()))
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // A figure for benches/README.md (with --nocapture), not a target.
        let elapsed = started.elapsed();
        eprintln!(
            "{}: 48 publishes by 8 concurrent writers in {elapsed:.2?}: {:.0}/s",
            backend.name,
            48.0 / elapsed.as_secs_f64()
        );
        let registry = (backend.open)(root);
        let releases = registry.releases("stats").unwrap();
        let versions: Vec<u32> = releases.iter().map(|r| r.version).collect();
        assert_eq!(versions, (1..=24).collect::<Vec<_>>());
        let digests: std::collections::HashSet<_> = releases.iter().map(|r| &r.digest).collect();
        assert_eq!(digests.len(), 24);
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 24);
    });
}

#[test]
fn an_additive_contract_grows_the_hook_and_a_destructive_one_is_refused() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        let mut grown = base_contract();
        grown
            .columns
            .push(column("sentences", ColumnType::Integer, true));
        let recorded = registry
            .record_release(new_release("stats", "b", grown.clone()))
            .unwrap();
        assert_eq!(
            recorded.evolution,
            Evolution::Additive {
                added: vec!["sentences".into()]
            }
        );
        assert_eq!(hook_contract(&registry, "stats"), Some(grown.clone()));

        // A release built from the old source now removes a column: destructive.
        let error = registry
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
        let message = registry
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
        assert_eq!(versions(&registry, "stats"), Some((2, 2)));
        assert_eq!(hook_contract(&registry, "stats"), Some(grown));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 2);
    });
}

#[test]
fn moving_the_live_pointer_keeps_history() {
    on_every_backend(|backend, root| {
        let registry = with_releases(backend, root, "stats", &["a", "b", "c"]);
        let before = registry.releases("stats").unwrap();
        let moved = move_live(&registry, "stats", 1).unwrap();
        assert_eq!((moved.from, moved.to, moved.moved), (3, 1, true));
        assert_eq!(moved.release, registry.release("stats", Some(1)).unwrap());
        let again = move_live(&registry, "stats", 1).unwrap();
        assert_eq!(
            (again.from, again.to, again.moved),
            (1, 1, false),
            "already there"
        );
        assert_eq!(versions(&registry, "stats"), Some((1, 3)));
        let after = registry.releases("stats").unwrap();
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(
                (&b.digest, &b.created_at, b.version),
                (&a.digest, &a.created_at, a.version)
            );
        }
        assert!(after[0].live && !after[2].live);
        let moves = registry.live_history("stats").unwrap();
        assert_eq!(moves.live_version, 1);
        let summary: Vec<_> = moves
            .moves
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
            ],
            "moving to where the pointer already is records nothing"
        );
        for version in [0, 4] {
            assert!(
                matches!(
                    move_live(&registry, "stats", version),
                    Err(Error::ReleaseNotFound { version: v, latest: 3, .. }) if v == version
                ),
                "v{version}"
            );
        }
        assert!(matches!(
            move_live(&registry, "missing", 1),
            Err(Error::HookNotFound { .. })
        ));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 4);
    });
}

#[test]
fn runs_are_appended_read_back_and_never_changed() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let first = run_record("0193aaaa-0000-7000-8000-000000000001", Some(("stats", 1)));
        let second = run_record("0193aaaa-0000-7000-8000-000000000002", None);
        record_run(&registry, &first, "{}", Some("/tmp/out"));
        record_run(&registry, &second, r#"{"a":1}"#, None);

        let all = registry.runs(None, 10).unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.record.run_id.as_str()).collect();
        assert_eq!(
            ids,
            [second.run_id.as_str(), first.run_id.as_str()],
            "newest first"
        );
        assert_eq!(all[1].record, first, "every field of run.json comes back");
        assert_eq!(all[1].out_dir.as_deref(), Some("/tmp/out"));
        assert_eq!(registry.runs(Some("stats"), 10).unwrap().len(), 1);
        assert_eq!(registry.runs(None, 1).unwrap().len(), 1);

        assert_eq!(
            registry.run_record(&second.run_id).unwrap().config,
            r#"{"a":1}"#
        );
        assert_eq!(
            registry
                .run_record("0193aaaa-0000-7000-8000-000000000001")
                .unwrap()
                .record,
            first
        );
        assert!(matches!(
            registry.run_record("0193aaaa"),
            Err(Error::RunNotFound { matches: 2, .. })
        ));
        assert!(matches!(
            registry.run_record("ffff"),
            Err(Error::RunNotFound { matches: 0, .. })
        ));
        let error = try_record_run(&registry, &first, "{}", None).unwrap_err();
        match &error {
            Error::Store {
                registry: which,
                operation,
                ..
            } => {
                assert_eq!(which, registry.store.describe());
                assert!(operation.contains(&first.run_id), "{operation}");
            }
            other => panic!("a run id is recorded once: {other:?}"),
        }
        assert!(
            error.to_string().contains(registry.store.describe()),
            "{error}"
        );

        // The database itself refuses to rewrite history (triggers fire per row, so give them
        // rows).
        registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        for statement in [
            "UPDATE runs SET status = 'failed'",
            "DELETE FROM runs",
            "UPDATE releases SET digest = 'x'",
            "DELETE FROM releases",
            "UPDATE live_moves SET to_version = 9",
            "DELETE FROM live_moves",
        ] {
            let error = (backend.execute_raw)(root, statement).unwrap_err();
            assert!(
                error.contains("append-only")
                    || error.contains("immutable")
                    || error.contains("never"),
                "{statement}: {error}"
            );
        }
        assert_eq!((backend.count_rows)(root, "runs"), 2);
    });
}

#[test]
fn a_run_id_prefix_names_one_run_and_an_exact_id_wins() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        // `0193cccc` is itself a run id, and a prefix of two others.
        for id in [
            "0193cccc",
            "0193cccc-0000-7000-8000-000000000001",
            "0193cccc-0000-7000-8000-000000000002",
            "0193dddd-0000-7000-8000-000000000003",
        ] {
            record_run(&registry, &run_record(id, None), "{}", None);
        }
        let found = |id: &str| registry.run_record(id).map(|run| run.record.run_id);
        assert_eq!(found("0193cccc").unwrap(), "0193cccc", "the exact id wins");
        assert_eq!(
            found("0193d").unwrap(),
            "0193dddd-0000-7000-8000-000000000003"
        );
        assert_eq!(
            found("0193cccc-0000-7000-8000-000000000002").unwrap(),
            "0193cccc-0000-7000-8000-000000000002"
        );
        // Three runs start with `0193c`: all are counted, not just the first two found.
        assert!(matches!(
            found("0193c"),
            Err(Error::RunNotFound { matches: 3, run_id }) if run_id == "0193c"
        ));
        // Shorter than four characters: never a prefix, even of one run.
        assert!(matches!(
            found("019"),
            Err(Error::RunNotFound { matches: 0, .. })
        ));
        // A prefix is text, not a pattern.
        assert!(matches!(
            found("0193%"),
            Err(Error::RunNotFound { matches: 0, .. })
        ));
        assert!(matches!(
            found("0193____"),
            Err(Error::RunNotFound { matches: 0, .. })
        ));
    });
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
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let error = registry.release("stats", None).unwrap_err();
        assert!(
            matches!(&error, Error::HookNotFound { name, registry: which }
                if name == "stats" && which == registry.store.describe()),
            "{error:?}"
        );
        assert!(
            error.to_string().contains(registry.store.describe()),
            "{error}"
        );
        registry
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
        assert!(matches!(
            registry.live_history("nothing"),
            Err(Error::HookNotFound { .. })
        ));
    });
}

#[test]
fn a_missing_root_is_not_a_registry_and_is_not_created() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("registry");
    assert!(!Registry::exists(&root));
    let error = Registry::open_existing(&root).unwrap_err();
    assert!(
        matches!(&error, Error::RegistryNotFound { root: r } if *r == root),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "no registry at {} (publish a hook first, or point --root / HOOKHOST_HOME at one)",
            root.display()
        )
    );
    assert!(!root.exists(), "nothing is created");
    // An empty directory is not a registry either.
    std::fs::create_dir(&root).unwrap();
    assert!(!Registry::exists(&root));
    assert!(matches!(
        Registry::open_existing(&root),
        Err(Error::RegistryNotFound { .. })
    ));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);

    Registry::open(&root).unwrap();
    assert!(Registry::exists(&root));
    assert!(
        Registry::open_existing(&root)
            .unwrap()
            .hooks()
            .unwrap()
            .is_empty()
    );
}

/// A registry with hooks `a` and `b`, two releases each, both live on v2.
fn two_hooks(backend: &Backend, root: &Path) -> Registry {
    let registry = (backend.open)(root);
    for hook in ["a", "b"] {
        for bytes in ["1", "2"] {
            registry
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

#[test]
fn resolve_all_answers_in_order_live_or_pinned() {
    on_every_backend(|backend, root| {
        let registry = two_hooks(backend, root);
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
    });
}

#[test]
fn resolve_all_fails_as_resolve_does_and_refuses_a_hook_named_twice() {
    on_every_backend(|backend, root| {
        let registry = two_hooks(backend, root);
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
    });
}

#[test]
fn resolve_all_is_one_snapshot_while_pointers_move_together() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    on_every_backend(|backend, root| {
        let registry = two_hooks(backend, root);
        let saw_both = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let path = root.to_owned();
            let open = backend.open;
            let (saw_both, done) = (saw_both.clone(), done.clone());
            std::thread::spawn(move || {
                // Its own connection, as another process would have; each step moves both
                // pointers in one transaction. At least 200 moves, then on until the reader
                // has seen both states (bounded, so a broken reader fails instead of hanging).
                let writer = open(&path);
                let mut moves = 0;
                while moves < 200 || (!saw_both.load(Ordering::SeqCst) && moves < 20_000) {
                    let version = 1 + moves % 2;
                    writer
                        .set_live_together(&[("a", version), ("b", version)])
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
            registry.live_history("a").unwrap().moves.len(),
            2 + moves as usize
        );
    });
}

#[test]
fn a_batch_records_its_runs_and_itself_in_one_transaction() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
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

        // A batch one of whose runs cannot be recorded (its id is taken) records nothing at
        // all.
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
        assert!(matches!(error, Error::Store { .. }), "{error:?}");
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
                (backend.count_rows)(root, "runs"),
                (backend.count_rows)(root, "batches")
            ),
            (2, 1)
        );
    });
}

#[test]
fn the_same_key_and_snapshot_returns_the_earlier_batch_and_records_nothing() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
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

        // Same key, same snapshot: the earlier batch comes back and neither these runs nor
        // this batch are recorded.
        let again = [run_record(&run_id(3), None), run_record(&run_id(4), None)];
        match batch("again", "sha256:s1", &again).unwrap() {
            BatchRecorded::Existing(existing) => {
                assert_eq!(existing, earlier);
                assert_eq!(existing.run_ids, [run_id(1), run_id(2)]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((backend.count_rows)(root, "runs"), 2);
        assert_eq!((backend.count_rows)(root, "batches"), 1);
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
        assert_eq!((backend.count_rows)(root, "runs"), 4);
        assert_eq!((backend.count_rows)(root, "batches"), 2);
    });
}

#[test]
fn batches_racing_with_one_key_record_exactly_one() {
    on_every_backend(|backend, root| {
        (backend.open)(root);
        // Six writers, each its own connection, each recording its own runs under one key and
        // snapshot; exactly one batch, and only its runs, may be recorded.
        let threads: Vec<_> = (0..6u32)
            .map(|writer| {
                let path = root.to_owned();
                let open = backend.open;
                std::thread::spawn(move || {
                    let registry = open(&path);
                    let record = run_record(&run_id(writer), None);
                    let runs = [RunEntry {
                        record: &record,
                        config: "{}",
                        out_dir: None,
                    }];
                    registry
                        .record_batch(NewBatch {
                            batch_id: &format!("batch-{writer}"),
                            idempotency_key: Some("key"),
                            snapshot_digest: "sha256:snap",
                            runs: &runs,
                            summary: &serde_json::json!({}),
                        })
                        .unwrap()
                })
            })
            .collect();
        let outcomes: Vec<BatchRecorded> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let recorded = outcomes
            .iter()
            .filter(|o| **o == BatchRecorded::Recorded)
            .count();
        assert_eq!(recorded, 1, "{outcomes:?}");
        let registry = (backend.open)(root);
        let kept = registry
            .batch_by_key("key", "sha256:snap")
            .unwrap()
            .unwrap();
        for outcome in &outcomes {
            if let BatchRecorded::Existing(existing) = outcome {
                assert_eq!(*existing, kept);
            }
        }
        assert_eq!((backend.count_rows)(root, "runs"), 1);
        assert_eq!(
            registry.runs(None, 10).unwrap()[0].record.run_id,
            kept.run_ids[0]
        );
    });
}

#[test]
fn a_batch_without_a_key_records_its_runs_only() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
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
        assert_eq!((backend.count_rows)(root, "batches"), 0);
    });
}

#[test]
fn batches_are_never_changed() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        registry
            .record_batch(NewBatch {
                batch_id: "b",
                idempotency_key: Some("key"),
                snapshot_digest: "sha256:snap",
                runs: &[],
                summary: &serde_json::json!({}),
            })
            .unwrap();
        for statement in [
            "UPDATE batches SET run_ids = '[]'",
            "UPDATE batches SET snapshot_digest = 'x'",
            "DELETE FROM batches",
        ] {
            let error = (backend.execute_raw)(root, statement).unwrap_err();
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
    });
}

// ---------------------------------------------------------------------------------------------
// Issue 26: who did it, live moves as compare-and-set, pages of runs, imported runs, uploads,
// and a registry from before them.
// ---------------------------------------------------------------------------------------------

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The rows of hook `stats` (releases v1 of bytes `a` and v2 of `b`, the pointer on v2 after
/// two publishes) and of `run`, as a host before issue 26 wrote them: every column of that
/// schema (SQLite's versions 1 and 2, PostgreSQL's 3) and none of this one's.
pub(super) fn previous_schema_rows(run: &RunRecord) -> Vec<String> {
    let contract = literal(&rows::contract_json(&base_contract()));
    let contract_digest = literal(&base_contract().digest());
    let config_digest = literal(&sha256_digest(b"{}"));
    let release = |version: u32, bytes: &str| {
        format!(
            "INSERT INTO releases (hook, version, digest, size, contract, contract_digest, \
             config, config_digest, fuel_per_record, memory_bytes, timeout_ms, source_ref, \
             built_by, created_at) VALUES ('stats', {version}, {}, 1, {contract}, \
             {contract_digest}, '{{}}', {config_digest}, 1000, 65536, 1000, NULL, 'ci', \
             '2026-01-0{version}T00:00:00.000Z')",
            literal(&sha256_digest(bytes.as_bytes()))
        )
    };
    vec![
        format!(
            "INSERT INTO hooks (name, contract, contract_digest, live_version, created_at) \
             VALUES ('stats', {contract}, {contract_digest}, 2, '2026-01-01T00:00:00.000Z')"
        ),
        release(1, "a"),
        release(2, "b"),
        "INSERT INTO live_moves (hook, from_version, to_version, cause, moved_at) \
         VALUES ('stats', NULL, 1, 'publish', '2026-01-01T00:00:00.000Z')"
            .into(),
        "INSERT INTO live_moves (hook, from_version, to_version, cause, moved_at) \
         VALUES ('stats', 1, 2, 'publish', '2026-01-02T00:00:00.000Z')"
            .into(),
        format!(
            "INSERT INTO runs (run_id, hook, version, digest, status, started_at, finished_at, \
             total, passed, rejected, errored, config, out_dir, replay_of, recorded_at, record) \
             VALUES ({}, 'stats', 1, {}, 'succeeded', {}, {}, 3, 1, 1, 1, '{{}}', '/out', NULL, \
             '2026-01-03T00:00:00.000Z', {})",
            literal(&run.run_id),
            literal(&run.hook.digest),
            literal(&run.started_at),
            literal(&run.finished_at),
            literal(&serde_json::to_string(run).unwrap())
        ),
    ]
}

/// A registry on `backend` at `root` with a release of hook `hook` for each of `bytes`, in
/// order (each taking the live pointer).
fn with_releases(backend: &Backend, root: &Path, hook: &str, bytes: &[&str]) -> Registry {
    let registry = (backend.open)(root);
    for bytes in bytes {
        registry
            .record_release(new_release(hook, bytes, base_contract()))
            .unwrap();
    }
    registry
}

fn token(subject: &str) -> Actor {
    Actor::token("hookhost", subject, format!("jti-{subject}"))
}

#[test]
fn a_registry_from_before_issue_26_migrates_keeping_its_rows_and_its_history_append_only() {
    use time::macros::datetime;
    on_every_backend(|backend, root| {
        (backend.create_previous)(root);
        let record = run_record(&run_id(1), Some(("stats", 1)));
        for statement in previous_schema_rows(&record) {
            (backend.execute_raw)(root, &statement).unwrap();
        }
        let registry = (backend.open)(root);

        // Old rows survive, their actors unknown (null), their times read as times.
        let history = registry.release_history("stats").unwrap();
        let releases: Vec<_> = history
            .releases
            .iter()
            .map(|r| (r.version, r.live, r.published_by.clone(), r.created_at))
            .collect();
        assert_eq!(
            releases,
            [
                (1, false, None, datetime!(2026-01-01 0:00 UTC)),
                (2, true, None, datetime!(2026-01-02 0:00 UTC)),
            ]
        );
        let moves: Vec<_> = history
            .live_history
            .iter()
            .map(|m| (m.to_version, m.cause, m.moved_by.clone(), m.reason.clone()))
            .collect();
        assert_eq!(
            moves,
            [
                (1, LiveCause::Publish, None, None),
                (2, LiveCause::Publish, None, None)
            ]
        );
        let kept = registry.run_record(&record.run_id).unwrap();
        assert_eq!(
            (&kept.record, kept.recorded_by.as_ref(), kept.recorded_at),
            (&record, None, datetime!(2026-01-03 0:00 UTC))
        );
        let hook = registry.hook("stats").unwrap();
        assert_eq!(
            (hook.created_at, hook.updated_at),
            (
                datetime!(2026-01-01 0:00 UTC),
                datetime!(2026-01-02 0:00 UTC)
            )
        );

        // History is still append-only: the database refuses, whoever asks.
        for (statement, refusal) in [
            ("UPDATE releases SET built_by = 'someone else'", "immutable"),
            ("DELETE FROM releases", "never deleted"),
            ("UPDATE live_moves SET reason = 'rewritten'", "append-only"),
            ("DELETE FROM live_moves", "append-only"),
            ("UPDATE runs SET recorded_by = NULL", "append-only"),
            ("DELETE FROM runs", "append-only"),
        ] {
            let error = (backend.execute_raw)(root, statement).unwrap_err();
            assert!(error.contains(refusal), "{statement}: {error}");
        }

        // New writes record who, on the migrated schema.
        let moved = registry
            .set_live(
                "stats",
                1,
                LiveRequest::new(token("oncall")).because("v2 is slow"),
            )
            .unwrap();
        assert!(moved.moved);
        let last = registry.live_history("stats").unwrap().moves.pop().unwrap();
        assert_eq!(
            (last.moved_by, last.reason.as_deref()),
            (Some(token("oncall")), Some("v2 is slow"))
        );
        assert_eq!(
            (
                (backend.count_rows)(root, "releases"),
                (backend.count_rows)(root, "live_moves"),
                (backend.count_rows)(root, "runs")
            ),
            (2, 3, 1)
        );
    });
}

#[test]
fn a_release_records_who_published_it_apart_from_what_the_publisher_said() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let ci = token("ci-text");
        let mut new = new_release("stats", "a", base_contract());
        new.built_by = Some("alice".into());
        new.published_by = ci.clone();
        let published = registry.record_release(new).unwrap();
        assert_eq!(published.release.published_by, Some(ci.clone()));
        assert_eq!(published.release.built_by.as_deref(), Some("alice"));
        // What publishing returned is what the store keeps, and what the JSON says.
        let stored = registry.release("stats", Some(1)).unwrap();
        assert_eq!(stored, published.release);
        let json = serde_json::to_value(&stored).unwrap();
        assert_eq!(
            json["published_by"],
            serde_json::json!({"kind": "token", "issuer": "hookhost", "subject": "ci-text",
                               "token_id": "jti-ci-text"})
        );
        assert_eq!(json["live"], true);
        let created = json["created_at"].as_str().unwrap();
        assert_eq!(rows::parse_time(created).unwrap(), stored.created_at);
        // The publish's move is by the publisher too.
        let first = &registry.live_history("stats").unwrap().moves[0];
        assert_eq!(
            (first.cause, first.moved_by.as_ref(), first.reason.as_ref()),
            (LiveCause::Publish, Some(&ci), None)
        );
        // The same digest published again by someone else returns the release unchanged.
        let mut again = new_release("stats", "a", base_contract());
        again.published_by = token("someone-else");
        let again = registry.record_release(again).unwrap();
        assert!(!again.created);
        assert_eq!(again.release.published_by, Some(ci));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 1);
    });
}

#[test]
fn a_live_move_records_who_and_why_and_a_move_to_where_it_is_records_nothing() {
    on_every_backend(|backend, root| {
        let registry = with_releases(backend, root, "stats", &["a", "b"]);
        let oncall = token("oncall");
        let request = LiveRequest::new(oncall.clone()).because("  v2 rejects every record\n");
        let moved = registry.set_live("stats", 1, request.clone()).unwrap();
        assert_eq!((moved.hook.as_str(), moved.from, moved.to), ("stats", 2, 1));
        assert!(moved.moved && moved.release.live);
        assert_eq!(moved.release.version, 1);
        let history = registry.live_history("stats").unwrap();
        assert_eq!((history.hook.as_str(), history.live_version), ("stats", 1));
        let last = history.moves.last().unwrap();
        assert_eq!(
            (
                last.from_version,
                last.to_version,
                last.cause,
                last.moved_by.as_ref(),
                last.reason.as_deref()
            ),
            (
                Some(2),
                1,
                LiveCause::Live,
                Some(&oncall),
                Some("v2 rejects every record")
            )
        );
        // Already there: nothing moves, nothing is recorded, whoever asks and whyever.
        let again = registry
            .set_live(
                "stats",
                1,
                LiveRequest::new(token("other")).because("again"),
            )
            .unwrap();
        assert_eq!((again.from, again.to, again.moved), (1, 1, false));
        assert_eq!(again.release, registry.release("stats", Some(1)).unwrap());
        assert_eq!((backend.count_rows)(root, "live_moves"), 3);
        // A reason over the cap is refused before anything moves.
        let long = LiveRequest::local().because("x".repeat(MAX_REASON_BYTES + 1));
        let error = registry.set_live("stats", 2, long).unwrap_err();
        assert!(
            matches!(
                error,
                Error::ReasonTooLong {
                    max: MAX_REASON_BYTES,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.code(), "reason_too_long");
        assert_eq!(registry.hook("stats").unwrap().live_version, 1);
        assert_eq!((backend.count_rows)(root, "live_moves"), 3);
    });
}

#[test]
fn a_live_move_expecting_another_version_is_a_conflict_and_moves_nothing() {
    on_every_backend(|backend, root| {
        let registry = with_releases(backend, root, "stats", &["a", "b", "c"]);
        let error = registry
            .set_live("stats", 1, LiveRequest::local().expecting(2))
            .unwrap_err();
        assert!(
            matches!(&error, Error::LiveConflict { hook, expected: 2, actual: 3 } if hook == "stats"),
            "{error:?}"
        );
        assert_eq!(error.code(), "live_conflict");
        assert_eq!(registry.hook("stats").unwrap().live_version, 3);
        assert_eq!((backend.count_rows)(root, "live_moves"), 3);
        // A version that does not exist is not found, whatever is expected.
        assert!(matches!(
            registry.set_live("stats", 9, LiveRequest::local().expecting(2)),
            Err(Error::ReleaseNotFound { version: 9, .. })
        ));
        let moved = registry
            .set_live("stats", 1, LiveRequest::local().expecting(3))
            .unwrap();
        assert_eq!((moved.from, moved.to, moved.moved), (3, 1, true));

        // Two operators, each with a connection of its own, both expecting v1: one moves it.
        let threads: Vec<_> = [2u32, 3]
            .into_iter()
            .map(|to| {
                let (root, open) = (root.to_owned(), backend.open);
                std::thread::spawn(move || {
                    open(&root).set_live("stats", to, LiveRequest::local().expecting(1))
                })
            })
            .collect();
        let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let moved: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(moved.len(), 1, "{answers:?}");
        let winner = moved[0].to;
        let conflict = answers.iter().find_map(|a| a.as_ref().err()).unwrap();
        assert!(
            matches!(conflict, Error::LiveConflict { expected: 1, actual, .. } if *actual == winner),
            "{conflict:?}"
        );
        assert_eq!(registry.hook("stats").unwrap().live_version, winner);
        assert_eq!((backend.count_rows)(root, "live_moves"), 5);
    });
}

#[test]
fn a_release_that_does_not_take_the_pointer_leaves_it_and_records_no_move() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        // A first release is live whatever is asked: a hook has a live release.
        let mut first = new_release("stats", "a", base_contract());
        first.make_live = false;
        let first = registry.record_release(first).unwrap();
        assert!(first.release.live);
        let mut second = new_release("stats", "b", base_contract());
        second.make_live = false;
        let second = registry.record_release(second).unwrap();
        assert!(second.created && !second.release.live);
        assert_eq!(second.previous_live, Some(1));
        let hook = registry.hook("stats").unwrap();
        assert_eq!((hook.live_version, hook.latest_version), (1, 2));
        assert_eq!(registry.live_history("stats").unwrap().moves.len(), 1);
        assert_eq!(registry.release("stats", None).unwrap().version, 1);
        assert_eq!((backend.count_rows)(root, "live_moves"), 1);
    });
}

#[test]
fn a_hook_is_read_on_its_own() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let first = registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap();
        let second = registry
            .record_release(new_release("stats", "b", base_contract()))
            .unwrap();
        registry
            .record_release(new_release("other", "c", base_contract()))
            .unwrap();
        let hook = registry.hook("stats").unwrap();
        assert_eq!(
            (
                hook.name.as_str(),
                hook.live_version,
                hook.latest_version,
                hook.created_at,
                hook.updated_at
            ),
            (
                "stats",
                2,
                2,
                first.release.created_at,
                second.release.created_at
            )
        );
        assert_eq!(hook.contract_digest, base_contract().digest());
        assert_eq!(registry.hooks().unwrap()[1], hook);
        assert!(matches!(
            registry.hook("nothing"),
            Err(Error::HookNotFound { .. })
        ));
        assert!(matches!(
            registry.hook("Bad"),
            Err(Error::InvalidHookName { .. })
        ));
    });
}

/// A run of `hook` v1 (the release of bytes `a`), ended `status`, on `worker`.
fn run_of(n: u32, hook: &str, status: RunStatus, worker: &str) -> RunRecord {
    let mut record = run_record(&run_id(n), Some((hook, 1)));
    record.status = status;
    record.worker = Some(worker.to_owned());
    record
}

/// Every page of `filter`'s runs, `limit` at a time: their run ids, newest first.
fn page_through(registry: &Registry, filter: &RunFilter, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = registry
            .runs_page(filter, limit, cursor.as_deref())
            .unwrap();
        assert!(page.runs.len() <= limit);
        ids.extend(page.runs.iter().map(|r| r.record.run_id.clone()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[test]
fn runs_come_in_pages_newest_first_filtered_by_hook_status_and_worker() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let mut recorded = Vec::new();
        for n in 1..=11 {
            let hook = if n % 2 == 0 { "even" } else { "odd" };
            let status = if n % 3 == 0 {
                RunStatus::Failed
            } else {
                RunStatus::Succeeded
            };
            let worker = if n <= 4 { "w1" } else { "w2" };
            let record = run_of(n, hook, status, worker);
            record_run(&registry, &record, "{}", None);
            recorded.push(record);
        }
        let newest_first = |keep: &dyn Fn(&RunRecord) -> bool| -> Vec<String> {
            recorded
                .iter()
                .rev()
                .filter(|r| keep(r))
                .map(|r| r.run_id.clone())
                .collect()
        };
        let all = RunFilter::default();
        for limit in [1, 3, 11, 50] {
            assert_eq!(
                page_through(&registry, &all, limit),
                newest_first(&|_| true)
            );
        }
        type Keep = Box<dyn Fn(&RunRecord) -> bool>;
        let cases: Vec<(RunFilter, Keep)> = vec![
            (
                RunFilter {
                    hook: Some("even".into()),
                    ..RunFilter::default()
                },
                Box::new(|r| r.hook.name.as_deref() == Some("even")),
            ),
            (
                RunFilter {
                    status: Some(RunStatus::Failed),
                    ..RunFilter::default()
                },
                Box::new(|r| r.status == RunStatus::Failed),
            ),
            (
                RunFilter {
                    worker: Some("w1".into()),
                    ..RunFilter::default()
                },
                Box::new(|r| r.worker.as_deref() == Some("w1")),
            ),
            (
                RunFilter {
                    hook: Some("odd".into()),
                    status: Some(RunStatus::Succeeded),
                    worker: Some("w2".into()),
                },
                Box::new(|r| {
                    r.hook.name.as_deref() == Some("odd")
                        && r.status == RunStatus::Succeeded
                        && r.worker.as_deref() == Some("w2")
                }),
            ),
        ];
        for (filter, keep) in &cases {
            let expected = newest_first(keep.as_ref());
            assert!(!expected.is_empty(), "{filter:?}");
            assert_eq!(page_through(&registry, filter, 2), expected, "{filter:?}");
        }
        // The last page says there is no next one; a full last page too.
        let page = registry.runs_page(&all, 11, None).unwrap();
        assert_eq!((page.runs.len(), page.next_cursor), (11, None));
        // Limits are kept within 1..=MAX_RUNS_PAGE.
        assert_eq!(registry.runs_page(&all, 0, None).unwrap().runs.len(), 1);
        // The old listing is the same pages.
        let listed: Vec<String> = registry
            .runs(Some("even"), 3)
            .unwrap()
            .into_iter()
            .map(|r| r.record.run_id)
            .collect();
        let even = newest_first(&|r| r.hook.name.as_deref() == Some("even"));
        assert_eq!(listed, even[..3]);
        // A cursor this did not give is refused.
        for bad in ["", "xyz", "00000000000000zz", "0000000000000000", "1"] {
            let error = registry.runs_page(&all, 5, Some(bad)).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidCursor { cursor } if cursor == bad),
                "{bad}: {error:?}"
            );
            assert_eq!(error.code(), "invalid_cursor");
        }
        assert!(matches!(
            registry.runs_page(
                &RunFilter {
                    hook: Some("Bad!".into()),
                    ..RunFilter::default()
                },
                5,
                None
            ),
            Err(Error::InvalidHookName { .. })
        ));
    });
}

#[test]
fn paging_while_runs_are_recorded_skips_and_repeats_nothing() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        for n in 1..=40 {
            record_run(
                &registry,
                &run_of(n, "stats", RunStatus::Succeeded, "w"),
                "{}",
                None,
            );
        }
        let before: Vec<String> = (1..=40).rev().map(run_id).collect();
        // Another connection records runs all the while.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (root, open, stop) = (root.to_owned(), backend.open, stop.clone());
            std::thread::spawn(move || {
                let other = open(&root);
                let mut n = 1000;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let record = run_of(n, "stats", RunStatus::Succeeded, "w");
                    try_record_run(&other, &record, "{}", None).unwrap();
                    n += 1;
                }
                n - 1000
            })
        };
        let paged = page_through(&registry, &RunFilter::default(), 3);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        // Nothing twice.
        let unique: std::collections::BTreeSet<_> = paged.iter().collect();
        assert_eq!(unique.len(), paged.len(), "a run repeated across pages");
        // Every run recorded before the first page, in order, none skipped; runs recorded
        // while paging show only before them (on the first page), never among them.
        let at = paged.iter().position(|id| *id == before[0]).unwrap();
        assert_eq!(&paged[at..], before.as_slice());
        assert!(paged[..at].iter().all(|id| !before.contains(id)));
        eprintln!("{written} runs recorded while paging");
    });
}

#[test]
fn an_imported_run_is_created_found_again_refused_when_changed_and_checked() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        let release = registry
            .record_release(new_release("stats", "a", base_contract()))
            .unwrap()
            .release;
        // A run of stats v1 (bytes `a`), as a client that ran it sends it.
        let mut record = run_record(&run_id(7), Some(("stats", 1)));
        record.contract_digest = release.contract_digest.clone();
        let ci = token("ci-runner");
        let imported = registry.import_run(&record, Some("{ }"), &ci).unwrap();
        assert!(imported.created);
        assert_eq!(imported.run.recorded_by, Some(ci.clone()));
        assert_eq!(imported.run.config, "{}", "kept canonical");
        assert_eq!(imported.run.out_dir, None);
        assert_eq!(registry.run_record(&record.run_id).unwrap(), imported.run);

        // The same run again, by anyone: the one recorded, nothing new.
        let again = registry
            .import_run(&record, None, &token("someone-else"))
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.run, imported.run);
        assert_eq!((backend.count_rows)(root, "runs"), 1);

        // The same id with other content: refused, since a run never changes.
        let mut changed = record.clone();
        changed.records.passed -= 1;
        changed.records.errored += 1;
        let error = registry.import_run(&changed, None, &ci).unwrap_err();
        assert!(
            matches!(&error, Error::RunConflict { run_id } if *run_id == record.run_id),
            "{error:?}"
        );
        assert_eq!(error.code(), "run_conflict");

        // Runs that are not runs of this registry's releases, or do not hold together.
        type Change = Box<dyn Fn(&mut RunRecord)>;
        let invalid: Vec<(&str, Change, Option<&str>)> = vec![
            (
                "no release v2",
                Box::new(|r| r.hook.version = Some(2)),
                None,
            ),
            (
                "`other` has no release",
                Box::new(|r| r.hook.name = Some("other".into())),
                None,
            ),
            (
                "ran sha256",
                Box::new(|r| r.hook.digest = sha256_digest(b"b")),
                None,
            ),
            (
                "no release (hook.name",
                Box::new(|r| r.hook.name = None),
                None,
            ),
            (
                "contract_digest",
                Box::new(|r| r.contract_digest = "sha256:00".into()),
                None,
            ),
            ("do not add up", Box::new(|r| r.records.total += 1), None),
            ("not a UUID", Box::new(|r| r.run_id = "run-1".into()), None),
            (
                "started_at",
                Box::new(|r| r.started_at = "yesterday".into()),
                None,
            ),
            ("config hashes", Box::new(|_| {}), Some(r#"{"x":1}"#)),
            ("config is not JSON", Box::new(|_| {}), Some("{")),
        ];
        for (n, (why, change, config)) in invalid.into_iter().enumerate() {
            let mut bad = record.clone();
            bad.run_id = run_id(100 + n as u32);
            change(&mut bad);
            let error = registry.import_run(&bad, config, &ci).unwrap_err();
            assert!(
                matches!(&error, Error::InvalidRun { reason, .. } if reason.contains(why)),
                "{why}: {error}"
            );
            assert_eq!(error.code(), "invalid_run");
        }
        assert_eq!((backend.count_rows)(root, "runs"), 1);
    });
}

/// The names left in the root's uploads directory.
fn staged(root: &Path) -> Vec<String> {
    match std::fs::read_dir(root.join(UPLOADS_DIR)) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// A reader that gives `bytes`, then fails.
struct Broken<'a>(&'a [u8]);

impl std::io::Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("connection reset by peer"));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn an_upload_is_hashed_while_written_capped_and_stored_only_when_it_matches() {
    on_every_backend(|_backend, root| {
        let registry = (_backend.open)(root);
        let bytes: Vec<u8> = (0..200_000u32).flat_map(|n| n.to_le_bytes()).collect();
        let digest = sha256_digest(&bytes);
        let cap = bytes.len() as u64;

        // Over the cap: refused, nothing stored, no temporary file left.
        let error = registry.put_blob(&digest, &bytes[..], cap - 1).unwrap_err();
        assert!(
            matches!(&error, Error::TooLarge { limit, .. } if *limit == cap - 1),
            "{error:?}"
        );
        assert_eq!(error.code(), "too_large");
        assert!(!registry.blobs().contains(&digest).unwrap());
        assert_eq!(staged(root), Vec::<String>::new());

        // Bytes that hash to another digest: refused, nothing stored.
        let other = sha256_digest(b"something else");
        let error = registry.put_blob(&other, &bytes[..], cap).unwrap_err();
        assert!(
            matches!(&error, Error::DigestMismatch { expected, actual }
                if *expected == other && *actual == digest),
            "{error:?}"
        );
        assert!(!registry.blobs().contains(&other).unwrap());
        assert!(!registry.blobs().contains(&digest).unwrap());
        assert_eq!(staged(root), Vec::<String>::new());

        // A sender that breaks off: refused, nothing stored.
        let error = registry
            .put_blob(&digest, Broken(&bytes[..1000]), cap)
            .unwrap_err();
        assert!(
            matches!(&error, Error::UploadFailed { received: 1000, reason, .. }
                if reason.contains("reset")),
            "{error:?}"
        );
        assert!(!registry.blobs().contains(&digest).unwrap());
        assert_eq!(staged(root), Vec::<String>::new());

        // A malformed digest: refused before anything is written.
        assert!(matches!(
            registry.put_blob("sha256:../../x", &bytes[..], cap),
            Err(Error::InvalidDigest { .. })
        ));

        // Exactly at the cap: stored; again: already there.
        let put = registry.put_blob(&digest, &bytes[..], cap).unwrap();
        assert_eq!(
            (put.digest.as_str(), put.size, put.created),
            (digest.as_str(), cap, true)
        );
        assert!(registry.blobs().contains(&digest).unwrap());
        assert_eq!(registry.blobs().get(&digest).unwrap(), bytes);
        let again = registry.put_blob(&digest, &bytes[..], cap).unwrap();
        assert!(!again.created);
        assert_eq!(staged(root), Vec::<String>::new());
    });
}

/// A stream of parts, the last of which may be an error.
struct Parts(std::collections::VecDeque<Result<Vec<u8>, String>>);

impl futures_core::Stream for Parts {
    type Item = Result<Vec<u8>, String>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.0.pop_front())
    }
}

fn parts(bytes: &[u8], size: usize) -> Parts {
    Parts(bytes.chunks(size).map(|c| Ok(c.to_vec())).collect())
}

#[test]
fn an_async_upload_takes_a_stream_and_stops_reading_at_the_cap() {
    on_every_backend(|backend, root| {
        let registry = AsyncRegistry::new(std::sync::Arc::new((backend.open)(root)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bytes = vec![7u8; 100_000];
        let digest = sha256_digest(&bytes);
        runtime.block_on(async {
            let error = registry
                .put_blob(&digest, parts(&bytes, 4096), 50_000)
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::TooLarge { limit: 50_000, .. }),
                "{error:?}"
            );
            let mut broken = parts(&bytes[..8192], 4096);
            broken.0.push_back(Err("the client went away".into()));
            let error = registry
                .put_blob(&digest, broken, 1 << 20)
                .await
                .unwrap_err();
            assert!(
                matches!(&error, Error::UploadFailed { received: 8192, reason, .. }
                    if reason == "the client went away"),
                "{error:?}"
            );
            assert!(!registry.contains_blob(&digest).await.unwrap());
            let put = registry
                .put_blob(&digest, parts(&bytes, 4096), 1 << 20)
                .await
                .unwrap();
            assert!(put.created);
            assert_eq!(registry.blob(&digest).await.unwrap(), bytes);
            assert!(
                !registry
                    .put_blob(&digest, parts(&bytes, 999), 1 << 20)
                    .await
                    .unwrap()
                    .created
            );
        });
        assert_eq!(staged(root), Vec::<String>::new());
    });
}

/// `statement` with its `?N` placeholders replaced by `params` as SQL literals, for EXPLAIN.
fn inline(statement: &str, params: &[rows::Value]) -> String {
    let mut text = statement.to_owned();
    // Highest first, so that ?1 does not match the start of ?10.
    for (n, value) in params.iter().enumerate().rev() {
        let literal = match value {
            rows::Value::Text(Some(text)) => literal(text),
            rows::Value::Int(Some(n)) => n.to_string(),
            other => panic!("{other:?}"),
        };
        text = text.replace(&format!("?{}", n + 1), &literal);
    }
    text
}

#[test]
fn pages_of_runs_are_read_through_an_index_without_sorting() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        // Enough runs, in one transaction, that reading the whole table costs more than an
        // index: 100 hooks, 97 workers, one run in 50 failed.
        let records: Vec<RunRecord> = (1..=3000)
            .map(|n| {
                let status = match n % 50 {
                    0 => RunStatus::Failed,
                    _ => RunStatus::Succeeded,
                };
                run_of(n, &format!("h{}", n % 100), status, &format!("w{}", n % 97))
            })
            .collect();
        let entries: Vec<RunEntry<'_>> = records
            .iter()
            .map(|record| RunEntry {
                record,
                config: "{}",
                out_dir: None,
            })
            .collect();
        registry
            .record_batch(NewBatch {
                batch_id: "many",
                idempotency_key: None,
                snapshot_digest: "sha256:00",
                runs: &entries,
                summary: &serde_json::json!({}),
            })
            .unwrap();
        let one = |hook: Option<&str>, status: Option<RunStatus>, worker: Option<&str>| RunFilter {
            hook: hook.map(str::to_owned),
            status,
            worker: worker.map(str::to_owned),
        };
        for (filter, index) in [
            (one(Some("h1"), None, None), "runs_by_hook"),
            (one(None, Some(RunStatus::Failed), None), "runs_by_status"),
            (one(None, None, Some("w2")), "runs_by_worker"),
        ] {
            for before in [None, Some(2000)] {
                let (statement, params) = sql::runs_page_statement(&filter, before, 10);
                let plan = (backend.explain)(root, &inline(&statement, &params)).join("\n");
                assert!(plan.contains(index), "{filter:?}: {plan}");
                assert!(
                    !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
                    "{filter:?} sorts: {plan}"
                );
            }
        }
        // Unfiltered: the recording order itself (SQLite's rowid, PostgreSQL's primary key).
        let (statement, params) = sql::runs_page_statement(&RunFilter::default(), Some(2000), 10);
        let plan = (backend.explain)(root, &inline(&statement, &params)).join("\n");
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort") && !plan.contains("Seq Scan"),
            "{plan}"
        );
        eprintln!("{}: unfiltered page: {plan}", backend.name);
    });
}
