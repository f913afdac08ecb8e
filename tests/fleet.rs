//! A fleet on one PostgreSQL registry (issue 12): publishers and workers as separate
//! processes, every CLI verb with `--registry`, the schema migrated once by processes opening
//! a new database together, each batch run exactly once by a fleet of workers, a SIGKILLed
//! worker's batch finished by another once its lease runs out, and a server that goes away in
//! the middle of a run.
//!
//! The server is the throwaway cluster of `common/postgres.rs` (or `HOOKHOST_TEST_POSTGRES`);
//! each test has a database of its own.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::postgres::{fresh_database, private_server, query, scalar};
use common::{guest, ok, root};

/// `host --registry URL --root ROOT ARGS`.
fn host(url: &str, machine: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    command
        .arg("--registry")
        .arg(url)
        .arg("--root")
        .arg(machine)
        .args(args)
        .env_remove("HOOKHOST_REGISTRY");
    command
}

/// `text_stats` with a custom section appended: the same hook, another digest. A component's
/// custom section is id 0, a size, a name and bytes.
fn variant(dir: &Path, n: u32) -> PathBuf {
    let mut bytes = std::fs::read(guest("text_stats")).unwrap();
    let name = b"hookhost-test";
    let payload = format!("variant-{n}");
    let size = 1 + name.len() + payload.len();
    assert!(size < 128, "one-byte LEB sizes");
    bytes.push(0);
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload.as_bytes());
    let path = dir.join(format!("text_stats-{n}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn publisher_processes_get_gap_free_versions_and_one_release_per_digest() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let components: Vec<PathBuf> = (0..12).map(|n| variant(temp.path(), n)).collect();
    // Eight processes, three digests each; processes 2k and 2k+1 publish the same three.
    let started = Instant::now();
    let publishers: Vec<Child> = (0..8)
        .map(|p| {
            let machine = temp.path().join(format!("machine-{p}"));
            let files: Vec<String> = (0..3)
                .map(|k| components[(p / 2) * 3 + k].display().to_string())
                .collect();
            let script = files
                .iter()
                .map(|f| {
                    format!(
                        "{} --registry '{url}' --root {} publish {f} --name stats || exit 1",
                        env!("CARGO_BIN_EXE_host"),
                        machine.display()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for publisher in publishers {
        let output = publisher.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    eprintln!(
        "24 publishes by 8 processes: {:.2?} ({:.1}/s)",
        started.elapsed(),
        24.0 / started.elapsed().as_secs_f64()
    );
    let versions = query(
        &url,
        "SELECT version, digest FROM releases ORDER BY version",
    );
    let numbers: Vec<String> = versions.iter().map(|r| r[0].clone().unwrap()).collect();
    let expected: Vec<String> = (1..=12).map(|v| v.to_string()).collect();
    assert_eq!(numbers, expected, "versions 1..12 with no gap");
    let digests: std::collections::HashSet<_> = versions.iter().map(|r| r[1].clone()).collect();
    assert_eq!(digests.len(), 12, "each digest released once");
    // The pointer's history is a chain: each move starts where the one before ended.
    let moves = query(
        &url,
        "SELECT from_version, to_version FROM live_moves WHERE hook = 'stats' ORDER BY seq",
    );
    assert_eq!(moves.len(), 12);
    assert_eq!(moves[0][0], None);
    for pair in moves.windows(2) {
        assert_eq!(pair[1][0], pair[0][1], "{moves:?}");
    }
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM blobs"), 12);
}

#[test]
fn every_verb_works_against_postgres_and_a_live_move_is_seen_by_another_machine() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let (a, b) = (temp.path().join("a"), temp.path().join("b"));
    let v1 = variant(temp.path(), 100);
    let v2 = variant(temp.path(), 101);
    let published = ok(host(
        &url,
        &a,
        &["publish", v1.to_str().unwrap(), "--name", "stats", "--json"],
    )
    .output()
    .unwrap());
    let published: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(published["release"]["version"], 1);
    // Idempotent: the same bytes again are the same release.
    let again = ok(host(
        &url,
        &b,
        &["publish", v1.to_str().unwrap(), "--name", "stats", "--json"],
    )
    .output()
    .unwrap());
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        (
            again["created"].as_bool(),
            again["release"]["version"].as_u64()
        ),
        (Some(false), Some(1))
    );
    ok(host(
        &url,
        &a,
        &["publish", v2.to_str().unwrap(), "--name", "stats"],
    )
    .output()
    .unwrap());
    // A destructive contract change (require_fields's contract under text_stats's name) is
    // refused, and nothing of it is stored: no release, no blob.
    let refused = host(
        &url,
        &b,
        &[
            "publish",
            guest("require_fields").to_str().unwrap(),
            "--name",
            "stats",
        ],
    )
    .output()
    .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("is not compatible") && said.contains("removed"),
        "{said}"
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM releases"), 2);
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM blobs"), 2);
    assert!(ok(host(&url, &b, &["hooks"]).output().unwrap()).contains("stats"));
    let releases = ok(host(&url, &b, &["releases", "stats", "--json"])
        .output()
        .unwrap());
    assert!(
        releases.contains("\"version\": 2") || releases.contains("\"version\":2"),
        "{releases}"
    );
    // Rollback from machine b; machine a's next resolution sees it.
    ok(host(&url, &b, &["live", "stats", "1"]).output().unwrap());
    let inspected = ok(host(&url, &a, &["inspect", "stats", "--json"])
        .output()
        .unwrap());
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["version"], 1, "{inspected}");
    // A run on machine b (whose blob cache is cold): fetched from the database, cached.
    let samples = root().join("example-hooks/samples");
    let out = temp.path().join("out");
    ok(host(
        &url,
        &b,
        &[
            "run",
            "stats",
            "--input",
            samples.join("text.jsonl").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["hook"]["version"], 1);
    let worker = record["worker"].as_str().unwrap();
    assert!(worker.ends_with(&format!(":{}", worker.rsplit(':').next().unwrap())));
    assert!(worker.contains(':'), "{worker}");
    assert_eq!(
        query(&url, "SELECT worker FROM runs")[0][0].as_deref(),
        Some(worker),
        "the run's worker is in its row"
    );
    assert!(
        b.join(hookhost::registry::BLOB_CACHE_DIR)
            .read_dir()
            .unwrap()
            .count()
            >= 1
    );
    let run_id = record["run_id"].as_str().unwrap();
    assert!(ok(host(&url, &a, &["runs"]).output().unwrap()).contains(&run_id[..8]));
    assert!(ok(host(&url, &a, &["show", run_id]).output().unwrap()).contains(run_id));
    let replayed = host(
        &url,
        &a,
        &[
            "replay",
            run_id,
            "--input",
            samples.join("text.jsonl").to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    ok(replayed);
}

#[test]
fn processes_opening_a_new_database_at_once_migrate_it_once() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let opening: Vec<Child> = (0..4)
        .map(|p| {
            host(&url, &temp.path().join(format!("m{p}")), &["hooks"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in opening {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        query(&url, "SELECT version FROM hookhost_schema"),
        [[Some(
            hookhost::registry::postgres::PG_SCHEMA_VERSION.to_string()
        )]],
        "one version row, at the newest version"
    );
}

/// The example worker, built once.
fn worker_binary() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args(["build", "-p", "hookhost", "--example", "ingest_worker"])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root().join("target"));
        target.join("debug/examples/ingest_worker")
    })
}

/// An inbox of `files` batch files of `records` records each.
fn inbox(dir: &Path, files: usize, records: usize) -> PathBuf {
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for f in 0..files {
        let lines: String = (0..records)
            .map(|r| {
                serde_json::json!({"id": format!("b{f}-r{r}"),
                    "metadata": {"text": format!("batch {f} record {r} says hello")}})
                .to_string()
                    + "\n"
            })
            .collect();
        std::fs::write(inbox.join(format!("batch-{f:03}.jsonl")), lines).unwrap();
    }
    inbox
}

fn worker(url: &str, machine: &Path, inbox: &Path, outbox: &Path, lease_secs: &str) -> Command {
    let mut command = Command::new(worker_binary());
    command
        .args([
            "--hooks",
            "stats",
            "--concurrency",
            "2",
            "--lease-secs",
            lease_secs,
        ])
        .arg("--registry")
        .arg(url)
        .arg("--root")
        .arg(machine)
        .arg("--inbox")
        .arg(inbox)
        .arg("--outbox")
        .arg(outbox);
    command
}

fn publish_stats(url: &str, machine: &Path) {
    ok(host(
        url,
        machine,
        &[
            "publish",
            guest("text_stats").to_str().unwrap(),
            "--name",
            "stats",
        ],
    )
    .output()
    .unwrap());
}

#[test]
fn worker_processes_over_one_inbox_run_every_batch_exactly_once() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    publish_stats(&url, &temp.path().join("operator"));
    let files = 12;
    let inbox = inbox(temp.path(), files, 200);
    let started = Instant::now();
    let workers: Vec<Child> = (0..4)
        .map(|w| {
            worker(
                &url,
                &temp.path().join(format!("machine-{w}")),
                &inbox,
                &temp.path().join(format!("outbox-{w}")),
                "30",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for child in workers {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{files} batches by 4 workers: {elapsed:.2?} ({:.1} batches/s)",
        files as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM batches"), files as i64);
    assert_eq!(
        scalar(&url, "SELECT COUNT(*) FROM runs"),
        files as i64,
        "one run per batch"
    );
    assert_eq!(
        scalar(&url, "SELECT COUNT(*) FROM claims"),
        0,
        "every claim released"
    );
    // Each batch's outputs are in exactly one worker's outbox.
    for f in 0..files {
        let holders = (0..4)
            .filter(|w| {
                temp.path()
                    .join(format!("outbox-{w}/batch-{f:03}/batch.json"))
                    .is_file()
            })
            .count();
        assert_eq!(holders, 1, "batch {f}");
    }
    // Which worker ran each batch is in its run record; how they spread is up to timing, so
    // it is reported, not asserted (exactly once is the promise).
    let spread = query(
        &url,
        "SELECT worker, COUNT(*) FROM runs GROUP BY worker ORDER BY worker",
    );
    eprintln!("batches per worker: {spread:?}");
    assert!(
        spread
            .iter()
            .all(|row| row[0].as_deref().is_some_and(|w| w.contains(':')))
    );
}

/// Waits (up to a minute) until `worker` has claimed its batch in the database at `url`; fails
/// if it ends first.
fn wait_for_claim(url: &str, worker: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while scalar(url, "SELECT COUNT(*) FROM claims") == 0 {
        assert!(
            Instant::now() < deadline,
            "the worker never claimed its batch"
        );
        assert!(
            worker.try_wait().unwrap().is_none(),
            "the worker ended before claiming its batch"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_workers_batch_is_finished_by_another_once_its_lease_runs_out() {
    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    publish_stats(&url, &temp.path().join("operator"));
    let inbox = inbox(temp.path(), 1, 60_000);
    let mut doomed = worker(
        &url,
        &temp.path().join("a"),
        &inbox,
        &temp.path().join("out-a"),
        "2",
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Killed once its claim is in the database, while its batch runs.
    wait_for_claim(&url, &mut doomed);
    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();
    let killed_at = Instant::now();
    let killed_wall = time::OffsetDateTime::now_utc();
    assert_eq!(
        scalar(&url, "SELECT COUNT(*) FROM batches"),
        0,
        "it had not finished"
    );
    // The survivor's own lease is long: on a loaded machine a short one could run out between
    // renewals, and a lost claim cancels its batch (the lease's promise). What the test waits on
    // is the dead worker's lease, 2 s.
    let output = worker(
        &url,
        &temp.path().join("b"),
        &inbox,
        &temp.path().join("out-b"),
        "30",
    )
    .output()
    .unwrap();
    let stdout = ok(output);
    let started: String = query(&url, "SELECT record::json->>'started_at' FROM runs")[0][0]
        .clone()
        .unwrap();
    let started =
        time::OffsetDateTime::parse(&started, &time::format_description::well_known::Rfc3339)
            .unwrap();
    // Figures for benches/README.md (with --nocapture), not targets.
    eprintln!(
        "a dead worker's batch (lease 2 s) began again {:.2}s after the kill, finished {:.2?} \
         after it",
        (started - killed_wall).as_seconds_f64(),
        killed_at.elapsed()
    );
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM batches"), 1);
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM runs"), 1);
    assert_eq!(scalar(&url, "SELECT total FROM runs"), 60_000);
    // And for good: a third pass runs nothing.
    let again = ok(worker(
        &url,
        &temp.path().join("c"),
        &inbox,
        &temp.path().join("out-c"),
        "30",
    )
    .output()
    .unwrap());
    assert!(again.contains("already done"), "{again}");
}

#[test]
fn the_server_going_away_mid_run_is_a_clear_error_and_nothing_is_half_recorded() {
    let server = private_server();
    let cluster = server.cluster().unwrap().clone();
    let url = server.url("postgres");
    let temp = tempfile::tempdir().unwrap();
    publish_stats(&url, &temp.path().join("operator"));
    let inbox = inbox(temp.path(), 1, 60_000);
    let mut running = worker(
        &url,
        &temp.path().join("a"),
        &inbox,
        &temp.path().join("out-a"),
        "1",
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_claim(&url, &mut running);
    cluster.stop();
    let output = running.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("postgres://postgres@"),
        "names the server: {stderr}"
    );
    assert!(
        stderr.contains("could not be recorded"),
        "says so, as NotRecorded does: {stderr}"
    );
    cluster.start();
    assert_eq!(
        scalar(&url, "SELECT COUNT(*) FROM runs"),
        0,
        "nothing recorded by half"
    );
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM batches"), 0);
    // Back: the next pass runs the batch (once the dead pass's 1 s lease has run out), with a
    // lease of its own long enough that renewals late on a loaded machine do not lose it.
    let output = worker(
        &url,
        &temp.path().join("b"),
        &inbox,
        &temp.path().join("out-b"),
        "30",
    )
    .output()
    .unwrap();
    let stdout = ok(output);
    assert!(stdout.contains("succeeded"), "{stdout}");
    assert_eq!(scalar(&url, "SELECT COUNT(*) FROM runs"), 1);
}

/// Records from a channel, as a stream: the test decides when the batch has seen half of them.
struct Channel(tokio::sync::mpsc::UnboundedReceiver<hookhost::embed::Record>);

impl futures_core::Stream for Channel {
    type Item = hookhost::embed::Record;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

#[test]
fn a_live_move_by_another_process_is_seen_by_the_next_snapshot_never_inside_a_batch() {
    use hookhost::embed::{Batch, BatchOptions, BatchState, EmbedConfig, Hookhost, Record};
    use hookhost::registry::RegistryLocation;

    let url = fresh_database();
    let temp = tempfile::tempdir().unwrap();
    let operator = temp.path().join("operator");
    for n in [200, 201] {
        let file = variant(temp.path(), n);
        ok(host(
            &url,
            &operator,
            &["publish", file.to_str().unwrap(), "--name", "stats"],
        )
        .output()
        .unwrap());
    }
    ok(host(&url, &operator, &["live", "stats", "1"])
        .output()
        .unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config = EmbedConfig {
            registry: RegistryLocation::Postgres(url.clone()),
            ..EmbedConfig::default()
        };
        let hookhost = Hookhost::open(temp.path().join("worker"), config)
            .await
            .unwrap();
        let snapshot = hookhost.snapshot(&["stats"]).await.unwrap();
        assert_eq!(snapshot.hooks()[0].release.as_ref().unwrap().version, 1);
        let (send, receive) = tokio::sync::mpsc::unbounded_channel();
        let record = |i: usize| {
            Record::new(
                format!("r{i}"),
                serde_json::json!({"text": format!("record {i}")}),
            )
        };
        for i in 0..500 {
            send.send(record(i)).unwrap();
        }
        let mut handle = hookhost
            .begin(
                &snapshot,
                Batch::from_stream(Channel(receive)),
                BatchOptions::default(),
            )
            .await
            .unwrap();
        // The batch has settled records of the first half before the move.
        while handle.changed().await.records.total == 0 {}
        let moved = tokio::task::spawn_blocking({
            let (url, operator) = (url.clone(), operator.clone());
            move || {
                host(&url, &operator, &["live", "stats", "2"])
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        ok(moved);
        assert!(
            !handle.observe().state.is_finished(),
            "the move came inside the batch"
        );
        for i in 500..1000 {
            send.send(record(i)).unwrap();
        }
        drop(send);
        let result = handle.wait().await.unwrap();
        assert_eq!(result.state, BatchState::Succeeded);
        assert_eq!(result.records.total, 1000);
        assert_eq!(
            result.hooks[0].run.hook.version,
            Some(1),
            "one release for the batch"
        );
        let next = hookhost.snapshot(&["stats"]).await.unwrap();
        assert_eq!(
            next.hooks()[0].release.as_ref().unwrap().version,
            2,
            "the next snapshot"
        );
    });
}
