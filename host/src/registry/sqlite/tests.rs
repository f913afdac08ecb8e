//! SQLite's own machinery: the schema's versions and migrations, the write lock, and direct
//! access to the file for the promise tests in `registry/tests.rs`.

use std::path::Path;

use super::*;
use crate::registry::tests::{base_contract, move_live, new_release, run_id, run_record};
use crate::registry::{DB_FILE, NewBatch, Registry, RunEntry, RunFilter};

/// How many rows `table` holds, read with a connection of its own.
pub(in crate::registry) fn count_rows(root: &Path, table: &str) -> u64 {
    let conn = Connection::open(root.join(DB_FILE)).unwrap();
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// Runs `statement` with a connection of its own.
pub(in crate::registry) fn execute_raw(root: &Path, statement: &str) -> Result<(), String> {
    let conn = Connection::open(root.join(DB_FILE)).unwrap();
    conn.execute(statement, [])
        .map(drop)
        .map_err(|e| e.to_string())
}

/// SQLite's plan for `select`, one line per step.
pub(in crate::registry) fn explain(root: &Path, select: &str) -> Vec<String> {
    let conn = Connection::open(root.join(DB_FILE)).unwrap();
    let mut statement = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {select}"))
        .unwrap();
    statement
        .query_map([], |row| row.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn user_version(path: &Path) -> u32 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn the_store_describes_itself_by_its_file() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(DB_FILE);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.describe(), path.display().to_string());
    // So a missing hook names the registry's root.
    let registry = Registry::open(root.path()).unwrap();
    let error = registry.release("stats", None).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&root.path().display().to_string()),
        "{error}"
    );
}

#[test]
fn a_registry_from_a_newer_host_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(DB_FILE);
    SqliteStore::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path) {
        Err(Error::RegistryTooNew {
            registry,
            found,
            known,
        }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
            assert_eq!(registry, path.display().to_string());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reopening_keeps_everything_and_does_not_migrate_again() {
    let root = tempfile::tempdir().unwrap();
    let registry = Registry::open(root.path()).unwrap();
    registry
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    drop(registry);
    let registry = Registry::open(root.path()).unwrap();
    assert_eq!(registry.releases("stats").unwrap().len(), 1);
    assert_eq!(user_version(&root.path().join(DB_FILE)), SCHEMA_VERSION);
}

#[test]
fn a_version_1_registry_upgrades_in_place_and_keeps_its_data() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join(DB_FILE);
    drop(SqliteStore::create_at_version(&path, 1).unwrap());
    // What a version 1 host wrote, by its own columns.
    let mut record = run_record(&run_id(1), Some(("stats", 1)));
    record.worker = Some("old-box:7".into());
    for statement in crate::registry::tests::previous_schema_rows(&record) {
        execute_raw(root.path(), &statement).unwrap();
    }
    let tables = |conn: &Connection| -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'batches'",
            [],
            |row| row.get(0),
        )
        .unwrap()
    };
    let conn = Connection::open(&path).unwrap();
    assert_eq!(tables(&conn), 0, "a version 1 registry has no batches");
    drop(conn);

    let registry = Registry::open(root.path()).unwrap();
    assert_eq!((user_version(&path), SCHEMA_VERSION), (3, 3));
    assert_eq!(tables(&Connection::open(&path).unwrap()), 1);
    assert_eq!(registry.resolve("stats").unwrap().version, 2);
    let kept = registry.run_record(&record.run_id).unwrap();
    assert_eq!(
        (kept.record.clone(), kept.out_dir.as_deref()),
        (record.clone(), Some("/out"))
    );
    // The runs recorded before have their worker as a column too, from their record.
    let filter = RunFilter {
        worker: Some("old-box:7".into()),
        ..RunFilter::default()
    };
    let page = registry.runs_page(&filter, 10, None).unwrap();
    assert_eq!(page.runs, [kept]);
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
fn a_read_completes_while_a_writer_waits_for_another_process_write_lock() {
    let root = tempfile::tempdir().unwrap();
    let registry = std::sync::Arc::new(Registry::open(root.path()).unwrap());
    registry
        .record_release(new_release("stats", "a", base_contract()))
        .unwrap();
    registry
        .record_release(new_release("stats", "b", base_contract()))
        .unwrap();
    // Another process holds the database's write lock.
    let other = Connection::open(root.path().join(DB_FILE)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // A writer of this registry waits for it, holding the registry's writer connection.
    let waiting = {
        let registry = registry.clone();
        std::thread::spawn(move || move_live(&registry, "stats", 1))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!waiting.is_finished(), "the writer waits for the lock");
    // Reads of the same registry handle go on meanwhile, on its reader connections, several
    // at once.
    let started = std::time::Instant::now();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let registry = registry.clone();
            std::thread::spawn(move || registry.hook("stats").unwrap().live_version)
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.join().unwrap(), 2, "the state before the move");
    }
    assert!(
        started.elapsed() < BUSY_TIMEOUT / 2,
        "reads did not wait for the writer: {:?}",
        started.elapsed()
    );
    assert!(!waiting.is_finished(), "and the writer still waits");
    other.execute_batch("ROLLBACK").unwrap();
    let moved = waiting.join().unwrap().unwrap();
    assert_eq!((moved.from, moved.to, moved.moved), (2, 1, true));
}

#[test]
fn a_reader_cannot_write() {
    let root = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&root.path().join(DB_FILE)).unwrap();
    let mut tx = store.read().unwrap();
    // Through the read transaction's connection itself: refused by SQLite.
    let reader = store.reader().unwrap();
    let error = reader
        .execute_batch("CREATE TABLE sneaky (x INTEGER)")
        .unwrap_err();
    assert!(error.to_string().contains("readonly"), "{error}");
    assert!(tx.hook("stats").unwrap().is_none());
}

#[test]
fn an_up_to_date_registry_opens_while_another_connection_holds_the_write_lock() {
    let root = tempfile::tempdir().unwrap();
    Registry::open(root.path()).unwrap();
    let writer = Connection::open(root.path().join(DB_FILE)).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Were the migration lock taken on every open, this would wait BUSY_TIMEOUT and fail.
    let registry = Registry::open(root.path()).unwrap();
    assert!(registry.hooks().unwrap().is_empty());
    writer.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn a_write_transaction_dropped_uncommitted_leaves_nothing_and_frees_the_connection() {
    let root = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&root.path().join(DB_FILE)).unwrap();
    let record = run_record(&run_id(1), None);
    let entry = RunEntry {
        record: &record,
        config: "{}",
        out_dir: None,
    };
    {
        let mut tx = store.write().unwrap();
        tx.insert_run(&entry, time::macros::datetime!(2026-01-01 00:00 UTC), None)
            .unwrap();
        assert!(tx.run(&record.run_id).unwrap().is_some(), "its own write");
    }
    assert_eq!(count_rows(root.path(), "runs"), 0);
    // The next transaction begins cleanly on the same connection.
    let mut tx = store.write().unwrap();
    tx.insert_run(&entry, time::macros::datetime!(2026-01-01 00:00 UTC), None)
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(count_rows(root.path(), "runs"), 1);
    assert!(store.read().unwrap().run(&record.run_id).unwrap().is_some());
}
