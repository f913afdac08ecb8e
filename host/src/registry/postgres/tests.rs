//! PostgreSQL's own machinery — its schema versions and migrations, errors that name the
//! server, blobs in the database and the machine's cache — and direct access to a test
//! database for the promise tests in `registry/tests.rs`, which run on this backend too.

use std::path::Path;

use super::*;
use crate::registry::Registry;

#[path = "../../../../tests/common/postgres.rs"]
pub(in crate::registry) mod harness;

/// Opens the registry of test root `root`: its own fresh database, made on first use.
pub(in crate::registry) fn open(root: &Path) -> Registry {
    Registry::connect(&harness::database_for_root(root), root).unwrap()
}

fn raw(root: &Path) -> PostgresStore {
    PostgresStore::open(&harness::database_for_root(root)).unwrap()
}

/// How many rows `table` holds, read with a connection of its own.
pub(in crate::registry) fn count_rows(root: &Path, table: &str) -> u64 {
    let store = raw(root);
    let client = store.pool.get("count").unwrap();
    let row = store
        .pool
        .block_on(client.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]))
        .unwrap();
    row.get::<_, i64>(0) as u64
}

/// Creates the database of test root `root` with the schema before issue 26 (version 3).
pub(in crate::registry) fn create_previous(root: &Path) {
    PostgresStore::create_at_version(&harness::database_for_root(root), 3).unwrap();
}

/// PostgreSQL's plan for `select` on fresh statistics, with sequential and bitmap scans ruled
/// out where an index can serve (on a table of a few rows the planner would rather read it
/// all and sort): whether a sort is still needed shows whether the index gives the order.
pub(in crate::registry) fn explain(root: &Path, select: &str) -> Vec<String> {
    let url = harness::database_for_root(root);
    harness::query(
        &url,
        &format!(
            "ANALYZE runs; SET enable_seqscan = off; SET enable_bitmapscan = off; EXPLAIN {select}"
        ),
    )
    .into_iter()
    .map(|row| row[0].clone().unwrap_or_default())
    .collect()
}

/// Runs `statement` with a connection of its own.
pub(in crate::registry) fn execute_raw(root: &Path, statement: &str) -> Result<(), String> {
    raw(root).execute_raw(statement).map(drop)
}

#[test]
fn the_store_describes_its_server_without_the_password() {
    let url = harness::fresh_database();
    let store = PostgresStore::open(&url).unwrap();
    let describe = store.describe().to_owned();
    assert!(describe.starts_with("postgres://postgres@"), "{describe}");
    let db = url.split('/').nth(3).unwrap().split('?').next().unwrap();
    assert!(describe.contains(db), "{describe}");
    // A password in the URL is never repeated in messages.
    let with_password = url.replacen("postgres@", "postgres:s3cret@", 1);
    let store = PostgresStore::open(&with_password).unwrap();
    assert!(!store.describe().contains("s3cret"), "{}", store.describe());
}

#[test]
fn a_server_that_cannot_be_reached_is_named_with_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://fleet:hunter2@/hooks?host={}&connect_timeout=2",
        dir.path().display()
    );
    let error = PostgresStore::open(&url).unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(&error, Error::Store { operation, .. } if operation == "connecting"),
        "{error:?}"
    );
    assert!(text.contains("postgres://fleet@/hooks"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        error.is_store_unavailable(),
        "no server: try later: {error:?}"
    );
    // A login the server refuses: a database that does not exist.
    let server = harness::server();
    let missing = server.url("no_such_database");
    let error = PostgresStore::open(&missing).unwrap_err();
    let text = format!("{error}: {}", std::error::Error::source(&error).unwrap());
    assert!(text.contains("no_such_database"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert!(
        !error.is_store_unavailable(),
        "a refusal is no outage: {error:?}"
    );
}

#[test]
fn a_database_from_a_newer_host_is_refused() {
    let url = harness::fresh_database();
    let store = PostgresStore::open(&url).unwrap();
    store
        .execute_raw(&format!(
            "UPDATE hookhost_schema SET version = {}",
            PG_SCHEMA_VERSION + 1
        ))
        .unwrap();
    match PostgresStore::open(&url) {
        Err(Error::RegistryTooNew {
            registry,
            found,
            known,
        }) => {
            assert_eq!((found, known), (PG_SCHEMA_VERSION + 1, PG_SCHEMA_VERSION));
            assert_eq!(registry, store.describe());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn opening_a_new_database_at_once_migrates_it_once() {
    let url = harness::fresh_database();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::open(&url).map(drop))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    let store = PostgresStore::open(&url).unwrap();
    assert_eq!(
        store
            .execute_raw("SELECT version FROM hookhost_schema")
            .unwrap(),
        1,
        "one version row"
    );
    let client = store.pool.get("check").unwrap();
    let version: i64 = store
        .pool
        .block_on(client.query_one("SELECT version FROM hookhost_schema", &[]))
        .unwrap()
        .get(0);
    assert_eq!(version, i64::from(PG_SCHEMA_VERSION));
}

#[test]
fn blobs_live_in_the_database_and_each_machine_caches_them() {
    let first_machine = tempfile::tempdir().unwrap();
    let registry = open(first_machine.path());
    let digest = registry.blobs().put(b"component bytes").unwrap();
    assert_eq!(count_rows(first_machine.path(), "blobs"), 1);
    // Content-addressed: the same bytes again add nothing.
    registry.blobs().put(b"component bytes").unwrap();
    assert_eq!(count_rows(first_machine.path(), "blobs"), 1);

    // Another machine: the same database, its own root and cache.
    let url = harness::database_for_root(first_machine.path());
    let second_machine = tempfile::tempdir().unwrap();
    let other = Registry::connect(&url, second_machine.path()).unwrap();
    let cached = second_machine
        .path()
        .join(crate::registry::BLOB_CACHE_DIR)
        .join(crate::digest::hex_of(&digest).unwrap());
    assert!(!cached.exists());
    assert_eq!(other.blobs().get(&digest).unwrap(), b"component bytes");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        b"component bytes",
        "cached on read"
    );

    // A tampered cache entry is hashed, refused and fetched again.
    std::fs::write(&cached, b"tampered").unwrap();
    assert_eq!(other.blobs().get(&digest).unwrap(), b"component bytes");
    assert_eq!(
        std::fs::read(&cached).unwrap(),
        b"component bytes",
        "refetched"
    );

    // A tampered row is refused, naming the digest and the server, on a machine that has no
    // good copy of its own.
    raw(first_machine.path())
        .execute_raw(&format!(
            "UPDATE blobs SET bytes = 'tampered'::bytea WHERE digest = '{digest}'"
        ))
        .unwrap();
    let third_machine = tempfile::tempdir().unwrap();
    let third = Registry::connect(&url, third_machine.path()).unwrap();
    let error = third.blobs().get(&digest).unwrap_err();
    assert!(
        matches!(&error, Error::CorruptBlob { expected, location, .. }
            if *expected == digest && location.contains(third.describe())),
        "{error:?}"
    );
    assert!(error.to_string().contains(&digest), "{error}");
    let cached_third = third_machine
        .path()
        .join(crate::registry::BLOB_CACHE_DIR)
        .join(crate::digest::hex_of(&digest).unwrap());
    assert!(!cached_third.exists(), "bad bytes are never cached");
    // Publishing the right bytes again repairs the row.
    third.blobs().put(b"component bytes").unwrap();
    let fourth = tempfile::tempdir().unwrap();
    let fourth = Registry::connect(&url, fourth.path()).unwrap();
    assert_eq!(fourth.blobs().get(&digest).unwrap(), b"component bytes");
}

#[test]
fn a_call_on_a_thread_that_drives_async_tasks_is_an_error_never_a_panic() {
    use crate::error::StoreFailure;
    use crate::registry::AsyncRegistry;
    let root = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(open(root.path()));
    let inside = |error: Error| {
        assert!(
            matches!(
                &error,
                Error::Store {
                    kind: StoreFailure::InsideAsyncRuntime,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.code(), "store_inside_async_runtime");
        assert!(error.to_string().contains("AsyncRegistry"), "{error}");
    };
    for runtime in [
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    ] {
        // In the future a runtime blocks on, and in a task on its worker.
        inside(runtime.block_on(async { registry.hooks() }).unwrap_err());
        let task = {
            let registry = registry.clone();
            runtime.spawn(async move { registry.release("stats", None) })
        };
        inside(runtime.block_on(task).unwrap().unwrap_err());
        // The async face answers from the same places.
        let face = AsyncRegistry::new(registry.clone());
        assert!(runtime.block_on(face.hooks()).unwrap().is_empty());
        let task = runtime.spawn(async move { face.check_store().await });
        runtime.block_on(task).unwrap().unwrap();
    }
    // And off any runtime, the plain call.
    assert!(registry.hooks().unwrap().is_empty());
}

#[test]
fn a_server_that_went_away_is_unavailable_and_the_first_call_after_it_is_back_succeeds() {
    use crate::registry::tests::{base_contract, new_release};
    let server = harness::private_server();
    let cluster = server.cluster().expect("a cluster of our own");
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::connect(&server.url("postgres"), root.path()).unwrap();
    registry
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    registry.check_store().unwrap();

    cluster.stop();
    let unavailable = |error: Error| {
        assert!(error.is_store_unavailable(), "{error:?}");
        assert_eq!(error.code(), "store_unavailable");
        let text = error.to_string();
        assert!(
            text.contains(registry.describe()) && text.contains("unavailable"),
            "{text}"
        );
    };
    unavailable(registry.check_store().unwrap_err());
    unavailable(registry.hook("stats").unwrap_err());
    unavailable(
        registry
            .record_release(new_release("stats", "b", base_contract()))
            .unwrap_err(),
    );
    unavailable(
        registry
            .set_live("stats", 1, crate::registry::LiveRequest::local())
            .unwrap_err(),
    );

    cluster.start();
    // The pool's connections died with the server: the first call connects again.
    assert_eq!(registry.hook("stats").unwrap().latest_version, 1);
    let published = registry
        .record_release(new_release("stats", "b", base_contract()))
        .unwrap();
    assert_eq!(published.release.version, 2, "nothing was recorded by half");
    registry.check_store().unwrap();
}
