//! Crash safety (pins issue 6): `host run` and `host publish` are killed with SIGKILL at random
//! points, and after every kill the output directory is absent or complete (never complete-
//! looking but partial), the registry opens with `PRAGMA integrity_check` = `ok`, releases are
//! gap-free and point at intact blobs, no blob is half-written under its final name, and
//! running or publishing again succeeds with the right result.
//!
//! The kill points are drawn from a seeded generator; the seed is printed, and
//! `HOOKHOST_CRASH_SEED=<n>` replays a sequence. Leftovers a kill may leave, by design: a
//! hidden `.DIR.partial-<run_id>` staging directory beside `--out` (never at DIR's name;
//! the next run into DIR removes it, since no live run holds its lock), a
//! `.tmp-*` file in the blob store (removed by a later open after an hour), and an
//! unreferenced blob (a publish killed between storing the bytes and committing the release).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::guest;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Kill points per command.
const KILLS: usize = 10;

/// SplitMix64: a tiny seeded generator, so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("HOOKHOST_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("crash-safety seed: HOOKHOST_CRASH_SEED={seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A delay in `[0, max)`.
    fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_nanos(self.next() % (max.as_nanos() as u64).max(1))
    }

    /// A kill point for a command that takes about `took`: every other one anywhere in its
    /// first 90 %, the rest around its end, where the output is renamed into place, the
    /// release committed and the run recorded.
    fn kill_point(&mut self, k: usize, took: Duration) -> Duration {
        if k.is_multiple_of(2) {
            self.delay(took.mul_f64(0.9))
        } else {
            took.mul_f64(0.8) + self.delay(took.mul_f64(0.25))
        }
    }
}

fn host(root: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    command
        .arg("--root")
        .arg(root)
        .env_remove("HOOKHOST_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `command` to the end; returns (exit code, stdout, stderr, time taken).
fn finish(command: &mut Command) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let output = command.output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

/// Starts `command`, SIGKILLs it after `delay` (if still running); says whether it was killed
/// before it finished.
fn kill_after(command: &mut Command, delay: Duration) -> bool {
    let mut child = command.spawn().unwrap();
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill(); // SIGKILL on Unix
    let _ = child.wait();
    killed
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The registry database: intact, and every run and release readable.
struct Registry {
    runs: BTreeSet<String>,
    /// `(version, digest)` of hook `text_stats`, by version.
    releases: Vec<(u32, String)>,
}

#[track_caller]
fn check_registry(root: &Path) -> Registry {
    let db = rusqlite::Connection::open_with_flags(
        root.join("registry.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let integrity: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let mut runs = BTreeSet::new();
    let mut statement = db.prepare("SELECT run_id, record FROM runs").unwrap();
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .unwrap();
    for row in rows {
        let (run_id, record) = row.unwrap();
        let record: Value = serde_json::from_str(&record).unwrap();
        assert_eq!(record["run_id"], run_id.as_str());
        runs.insert(run_id);
    }
    let mut statement = db
        .prepare("SELECT version, digest FROM releases WHERE hook = 'text_stats' ORDER BY version")
        .unwrap();
    let releases: Vec<(u32, String)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (n, (version, _)) in releases.iter().enumerate() {
        assert_eq!(
            *version as usize,
            n + 1,
            "versions have a gap: {releases:?}"
        );
    }
    Registry { runs, releases }
}

/// An output directory: absent, or complete — `run.json` lists exactly the other files, with
/// their real sizes and hashes. Returns the run record when complete.
#[track_caller]
fn check_out_dir(out: &Path) -> Option<Value> {
    if !out.exists() {
        return None;
    }
    let record: Value = serde_json::from_slice(
        &std::fs::read(out.join("run.json"))
            .unwrap_or_else(|e| panic!("{} exists without run.json: {e}", out.display())),
    )
    .unwrap_or_else(|e| panic!("{}: run.json is not JSON: {e}", out.display()));
    let outputs = record["outputs"].as_object().unwrap();
    let mut on_disk: BTreeSet<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(on_disk.remove("run.json"));
    let listed: BTreeSet<String> = outputs.keys().cloned().collect();
    assert_eq!(on_disk, listed, "{}", out.display());
    for (name, output) in outputs {
        let bytes = std::fs::read(out.join(name)).unwrap();
        assert_eq!(output["bytes"], bytes.len(), "{name}");
        assert_eq!(output["sha256"], hex_sha256(&bytes), "{name}");
    }
    Some(record)
}

/// `features.jsonl` without its `run_id`s.
fn features_content(out: &Path, record: &Value) -> String {
    let run_id = record["run_id"].as_str().unwrap();
    std::fs::read_to_string(out.join("features.jsonl"))
        .unwrap()
        .replace(&format!(",\"run_id\":\"{run_id}\""), "")
}

/// Hidden staging directories left beside `out`.
fn staging_leftovers(out: &Path) -> Vec<PathBuf> {
    let name = out.file_name().unwrap().to_str().unwrap();
    let prefix = format!(".{name}.partial-");
    std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&prefix)
        })
        .collect()
}

#[test]
fn killing_host_run_never_leaves_a_partial_output_or_a_broken_registry() {
    let mut rng = Rng::from_env();
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("registry");
    let input = temp.path().join("in.jsonl");
    let lines: String = (0..10_000)
        .map(|i| {
            format!(
                "{{\"id\":\"r{i:06}\",\"metadata\":{{\"text\":\"{}\"}}}}\n",
                "some words ".repeat(i % 7 + 1)
            )
        })
        .collect();
    std::fs::write(&input, lines).unwrap();
    let hook = guest("text_stats");
    let run = |out: &Path| {
        let mut command = host(&root);
        command
            .arg("run")
            .arg(&hook)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(out)
            .args(["--chunk-size", "8"]);
        command
    };

    let baseline_out = temp.path().join("baseline");
    let (code, _, stderr, took) = finish(&mut run(&baseline_out));
    assert_eq!(code, Some(0), "{stderr}");
    let baseline = check_out_dir(&baseline_out).unwrap();
    let expected = features_content(&baseline_out, &baseline);
    eprintln!("a full run takes {took:?}");

    let mut report = Vec::new();
    for k in 0..KILLS {
        let out = temp.path().join(format!("out-{k}"));
        let delay = rng.kill_point(k, took);
        let runs_before = check_registry(&root).runs;
        let killed = kill_after(&mut run(&out), delay);

        let registry = check_registry(&root);
        let complete = check_out_dir(&out);
        let leftovers = staging_leftovers(&out);
        let new_runs: Vec<_> = registry.runs.difference(&runs_before).cloned().collect();
        match &complete {
            Some(record) => {
                assert_eq!(record["status"], "succeeded");
                assert_eq!(features_content(&out, record), expected);
                assert!(leftovers.is_empty(), "a complete directory and its staging");
                // A rerun into a complete directory is refused, leaving it as it was.
                let (code, _, stderr, _) = finish(&mut run(&out));
                assert_eq!(code, Some(1), "{stderr}");
                assert!(stderr.contains("already exists"), "{stderr}");
                assert_eq!(check_out_dir(&out).as_ref(), Some(record));
            }
            None => {
                assert!(new_runs.is_empty(), "a run was recorded without its output");
                // A rerun into the same directory succeeds, with the same features.
                let (code, _, stderr, _) = finish(&mut run(&out));
                assert_eq!(code, Some(0), "{stderr}");
                let record = check_out_dir(&out).unwrap();
                assert_eq!(features_content(&out, &record), expected);
                assert!(
                    check_registry(&root)
                        .runs
                        .contains(record["run_id"].as_str().unwrap())
                );
                assert!(
                    staging_leftovers(&out).is_empty(),
                    "the rerun removes the killed run's staging directory"
                );
            }
        }
        report.push(format!(
            "kill {k} at {delay:?}: {}, output {}, recorded {}, staging left {}",
            if killed { "killed" } else { "had finished" },
            if complete.is_some() {
                "complete"
            } else {
                "absent"
            },
            new_runs.len(),
            leftovers.len()
        ));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn killing_a_first_use_of_the_registry_leaves_it_usable() {
    let mut rng = Rng::from_env();
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"a\",\"metadata\":{\"text\":\"x y\"}}\n").unwrap();
    let hook = guest("text_stats");
    for k in 0..4 {
        // Early kill points: while the root, the blob store and the schema are created.
        let root = temp.path().join(format!("registry-{k}"));
        let out = temp.path().join(format!("out-{k}"));
        let mut run = host(&root);
        run.arg("run")
            .arg(&hook)
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&out);
        let delay = rng.delay(Duration::from_millis(400));
        kill_after(&mut run, delay);
        let (code, _, stderr, _) = finish(&mut run);
        // The rerun succeeds, or finds the killed run's complete output in its way.
        let complete = check_out_dir(&out).is_some();
        match code {
            Some(0) => assert!(complete),
            Some(1) => assert!(complete && stderr.contains("already exists"), "{stderr}"),
            other => panic!("the rerun after a kill at {delay:?} exited {other:?}: {stderr}"),
        }
        check_registry(&root);
    }
}

/// `base` with a custom section appended, so each variant has its own digest.
fn variant(base: &[u8], n: usize) -> Vec<u8> {
    let name = b"crash-safety";
    let payload = n.to_le_bytes();
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(&payload);
    let mut bytes = base.to_vec();
    bytes.push(0); // custom section id
    bytes.push(section.len() as u8); // fits in one LEB128 byte
    bytes.extend_from_slice(&section);
    bytes
}

/// Every blob named by a digest holds exactly the bytes of that digest; returns how many
/// temporary files were left.
#[track_caller]
fn check_blobs(root: &Path) -> usize {
    let mut temps = 0;
    for entry in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with(".tmp-") {
            temps += 1;
            continue;
        }
        assert_eq!(name.len(), 64, "{name}");
        let bytes = std::fs::read(entry.path()).unwrap();
        assert_eq!(
            hex_sha256(&bytes),
            name,
            "a blob does not hold its digest's bytes"
        );
    }
    temps
}

#[test]
fn killing_host_publish_never_leaves_a_half_written_blob_or_a_version_gap() {
    let mut rng = Rng::from_env();
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("registry");
    let base = std::fs::read(guest("text_stats")).unwrap();
    let publish = |n: usize| {
        let file = temp.path().join(format!("text_stats-{n}.wasm"));
        std::fs::write(&file, variant(&base, n)).unwrap();
        let mut command = host(&root);
        command
            .arg("publish")
            .arg(&file)
            .args(["--name", "text_stats", "--json"]);
        command
    };
    let (code, _, stderr, took) = finish(&mut publish(0));
    assert_eq!(code, Some(0), "{stderr}");
    eprintln!("a publish takes {took:?}");

    let mut report = Vec::new();
    for k in 1..=KILLS {
        let before = check_registry(&root).releases;
        let delay = rng.kill_point(k, took);
        let killed = kill_after(&mut publish(k), delay);

        let after = check_registry(&root).releases;
        let temps = check_blobs(&root);
        for (_, digest) in &after {
            let hex = digest.strip_prefix("sha256:").unwrap();
            assert!(
                root.join("blobs/sha256").join(hex).exists(),
                "{digest} has no blob"
            );
        }
        let digest = format!("sha256:{}", hex_sha256(&variant(&base, k)));
        let committed = after.len() == before.len() + 1;
        assert!(committed || after == before, "{before:?} -> {after:?}");

        // Publishing again gives the release the killed publish made, or the next version.
        let (code, stdout, stderr, _) = finish(&mut publish(k));
        assert_eq!(code, Some(0), "{stderr}");
        let published: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(published["created"], !committed, "{stdout}");
        assert_eq!(
            published["release"]["version"],
            before.len() + 1,
            "{stdout}"
        );
        assert_eq!(published["release"]["digest"], digest.as_str());
        let releases = check_registry(&root).releases;
        assert_eq!(releases.len(), before.len() + 1);
        report.push(format!(
            "kill {k} at {delay:?}: {}, release {}, temporary files {temps}",
            if killed { "killed" } else { "had finished" },
            if committed { "committed" } else { "not made" },
        ));
    }
    eprintln!("{}", report.join("\n"));
}
