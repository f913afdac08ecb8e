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
use crate::provenance::sample_record;

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
        },
        Backend {
            name: "postgres",
            open: super::postgres::tests::open,
            count_rows: super::postgres::tests::count_rows,
            execute_raw: super::postgres::tests::execute_raw,
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
    }
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
        assert_eq!(registry.live_history("stats").unwrap().len(), 2);
        // What publishing returned is what the store keeps.
        assert_eq!(registry.releases("stats").unwrap()[0], again.release);
        assert_eq!(registry.release("stats", None).unwrap(), second.release);
    });
}

#[test]
fn the_next_version_follows_the_latest_not_the_live_one() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        for bytes in ["a", "b", "c"] {
            registry
                .record_release(new_release("stats", bytes, base_contract()))
                .unwrap();
        }
        registry.set_live("stats", 1).unwrap();
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
        assert_eq!(registry.live_history("stats").unwrap().len(), 1);
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
        assert_eq!(registry.live_history("stats").unwrap().len(), 24);
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
        assert_eq!(registry.live_history("stats").unwrap().len(), 2);
    });
}

#[test]
fn moving_the_live_pointer_keeps_history() {
    on_every_backend(|backend, root| {
        let registry = (backend.open)(root);
        for bytes in ["a", "b", "c"] {
            registry
                .record_release(new_release("stats", bytes, base_contract()))
                .unwrap();
        }
        let before = registry.releases("stats").unwrap();
        assert_eq!(registry.set_live("stats", 1).unwrap(), Some(3));
        assert_eq!(
            registry.set_live("stats", 1).unwrap(),
            None,
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
            ],
            "moving to where the pointer already is records nothing"
        );
        for version in [0, 4] {
            assert!(
                matches!(
                    registry.set_live("stats", version),
                    Err(Error::ReleaseNotFound { version: v, latest: 3, .. }) if v == version
                ),
                "v{version}"
            );
        }
        assert!(matches!(
            registry.set_live("missing", 1),
            Err(Error::HookNotFound { .. })
        ));
        assert_eq!(registry.live_history("stats").unwrap().len(), 4);
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
            registry.live_history("a").unwrap().len(),
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
