//! The `host` CLI's registry, end to end (pins issue #3): publishing (idempotent by digest,
//! releases never change, versions gap-free under concurrent publisher *processes*), the live
//! pointer and rollback, blob integrity (a tampered blob is refused, re-publishing repairs it),
//! contract evolution (additive accepted, destructive refused naming every change), recorded
//! runs (`runs`, `show`, ad-hoc `.wasm` runs included), `replay`, and read-only commands on a
//! root that does not exist.
//!
//! Every invocation gets `--root` inside its test's own temporary directory (and runs with that
//! directory as its working directory), so nothing is written into the repository.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{copy_dir, guest};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------------------------

/// A finished `host` invocation.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(output: Output) -> Ran {
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit status was 0.
    #[track_caller]
    fn ok(self) -> Ran {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the exit status was `code`.
    #[track_caller]
    fn exits(self, code: i32) -> Ran {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit status {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The run id from `host run`'s first line, `run <id>: <status>: …`.
    #[track_caller]
    fn run_id(&self) -> String {
        let first = self.stdout.lines().next().unwrap_or_default();
        first
            .strip_prefix("run ")
            .and_then(|rest| rest.split_once(':'))
            .map(|(id, _)| id.to_owned())
            .unwrap_or_else(|| panic!("no run id in:\n{}", self.stdout))
    }
}

/// What `host publish` printed on its first line: `NAME vN sha256:<hex> created|existing`.
#[derive(Debug)]
struct Published {
    name: String,
    version: u32,
    digest: String,
    created: bool,
    stdout: String,
}

#[track_caller]
fn parse_published(ran: &Ran) -> Published {
    let first = ran.stdout.lines().next().unwrap_or_default();
    let fields: Vec<&str> = first.split_whitespace().collect();
    let [name, version, digest, what] = fields[..] else {
        panic!("unexpected publish output:\n{}", ran.stdout);
    };
    let created = match what {
        "created" => true,
        "existing" => false,
        other => panic!(
            "expected created|existing, got `{other}` in:\n{}",
            ran.stdout
        ),
    };
    let version = version
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad version `{version}` in:\n{}", ran.stdout));
    Published {
        name: name.to_owned(),
        version,
        digest: digest.to_owned(),
        created,
        stdout: ran.stdout.clone(),
    }
}

/// A registry root (not created yet) in a fresh temporary directory, and `host` invocations
/// against it.
struct Reg {
    temp: TempDir,
    root: PathBuf,
}

impl Reg {
    fn new() -> Reg {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("registry");
        Reg { temp, root }
    }

    /// A path in the test's temporary directory (outside the root).
    fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
        command
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(self.temp.path())
            .env_remove("HOOKHOST_HOME")
            .env_remove("HOOKHOST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn host(&self, args: &[&str]) -> Ran {
        Ran::from(self.command(args).output().expect("running host"))
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).spawn().expect("spawning host")
    }

    /// `host ARGS --json`, which must succeed, parsed.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        self.host(&args).ok().json()
    }

    /// `host publish FILE --name NAME`, which must succeed.
    #[track_caller]
    fn publish(&self, file: &Path, name: &str) -> Published {
        parse_published(&self.host(&["publish", s(file), "--name", name]).ok())
    }

    /// `host run HOOK --input INPUT --out <temp>/OUT EXTRA…`, which must succeed; returns the
    /// run id it printed, after checking `run.json` has the same one.
    #[track_caller]
    fn run(&self, hook: &str, input: &Path, out: &str, extra: &[&str]) -> String {
        let out = self.path(out);
        let mut args = vec!["run", hook, "--input", s(input), "--out", s(&out)];
        args.extend_from_slice(extra);
        let ran = self.host(&args).ok();
        let run_id = ran.run_id();
        assert_eq!(run_json(&out)["run_id"], run_id.as_str());
        run_id
    }

    /// Where the blob of `digest` lives.
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.root.join("blobs/sha256").join(hex)
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn sample(name: &str) -> PathBuf {
    common::root().join("example-hooks/samples").join(name)
}

fn run_json(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("run.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", out.join("run.json").display()));
    serde_json::from_str(&text).unwrap()
}

/// `sha256:<hex>` of `bytes`, computed here independently of the host.
fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn file_digest(path: &Path) -> String {
    digest_of(&std::fs::read(path).unwrap())
}

/// Appends `value` as unsigned LEB128.
fn leb128(mut value: usize, out: &mut Vec<u8>) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Writes `<dir>/<stem>-variant-<n>.wasm`: `base`'s bytes with a custom section appended, so
/// the same component (same contract, same behaviour) gets a distinct digest per `n`. The
/// section's payload is over 127 bytes, so its size takes a multi-byte LEB128.
fn variant(base: &Path, n: u32, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(base).unwrap();
    let name = b"hookhost-test-variant";
    let mut payload = format!("variant {n};").into_bytes();
    payload.resize(payload.len() + 150, b'.');
    let mut content = Vec::new();
    leb128(name.len(), &mut content);
    content.extend_from_slice(name);
    content.extend_from_slice(&payload);
    bytes.push(0x00); // custom section id
    leb128(content.len(), &mut bytes);
    bytes.extend_from_slice(&content);
    let stem = base.file_stem().unwrap().to_str().unwrap();
    let path = dir.join(format!("{stem}-variant-{n}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The lines of a JSONL output file, parsed.
fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A release as JSON without its `live` flag (which says where the pointer was when read).
fn without_live(release: &Value) -> Value {
    let mut release = release.clone();
    release.as_object_mut().unwrap().remove("live");
    release
}

fn versions_and_digests(releases: &Value) -> Vec<(u64, String)> {
    releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn live_versions(releases: &Value) -> Vec<u64> {
    releases["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["live"] == true)
        .map(|r| r["version"].as_u64().unwrap())
        .collect()
}

fn run_ids(runs: &Value) -> Vec<String> {
    runs.as_array()
        .unwrap_or_else(|| panic!("expected an array of runs: {runs:#}"))
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn leb128_encodes_multi_byte_values() {
    for (value, expected) in [
        (0usize, vec![0x00]),
        (127, vec![0x7f]),
        (128, vec![0x80, 0x01]),
        (300, vec![0xac, 0x02]),
        (624_485, vec![0xe5, 0x8e, 0x26]),
    ] {
        let mut out = Vec::new();
        leb128(value, &mut out);
        assert_eq!(out, expected, "{value}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Publishing
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_is_idempotent_by_digest_and_a_release_never_changes() {
    let reg = Reg::new();
    let v1_file = guest("text_stats");
    let v1_digest = file_digest(&v1_file);

    let first = reg.publish(&v1_file, "text_stats");
    assert_eq!(
        (first.name.as_str(), first.version, first.digest.as_str()),
        ("text_stats", 1, v1_digest.as_str()),
        "{}",
        first.stdout
    );
    assert!(first.created, "{}", first.stdout);
    assert_eq!(
        std::fs::read(reg.blob(&v1_digest)).unwrap(),
        std::fs::read(&v1_file).unwrap(),
        "the blob holds the component's bytes"
    );

    // The same bytes again: the existing release, and the live pointer does not move.
    let again = reg.publish(&v1_file, "text_stats");
    assert_eq!(
        (again.version, again.digest.as_str()),
        (1, v1_digest.as_str())
    );
    assert!(!again.created, "{}", again.stdout);
    let releases = reg.json(&["releases", "text_stats"]);
    assert_eq!(versions_and_digests(&releases), [(1, v1_digest.clone())]);
    assert_eq!(live_versions(&releases), [1]);
    assert_eq!(
        releases["live_history"].as_array().unwrap().len(),
        1,
        "{releases:#}"
    );

    // A new digest is v2 and takes the live pointer.
    let v2_file = variant(&v1_file, 1, reg.temp.path());
    let v2_digest = file_digest(&v2_file);
    assert_ne!(v2_digest, v1_digest);
    let second = reg.publish(&v2_file, "text_stats");
    assert_eq!(
        (second.version, second.digest.as_str()),
        (2, v2_digest.as_str())
    );
    assert!(second.created, "{}", second.stdout);
    assert!(
        second.stdout.contains("live: v1 -> v2"),
        "{}",
        second.stdout
    );

    // v1's bytes again: still v1, existing, and the pointer stays on v2.
    let back = reg.publish(&v1_file, "text_stats");
    assert_eq!(
        (back.version, back.digest.as_str()),
        (1, v1_digest.as_str())
    );
    assert!(!back.created, "{}", back.stdout);
    let releases = reg.json(&["releases", "text_stats"]);
    assert_eq!(
        versions_and_digests(&releases),
        [(1, v1_digest.clone()), (2, v2_digest.clone())]
    );
    assert_eq!(live_versions(&releases), [2]);
    assert_eq!(releases["live_history"].as_array().unwrap().len(), 2);
    let hooks = reg.json(&["hooks"]);
    assert_eq!(hooks[0]["name"], "text_stats");
    assert_eq!(hooks[0]["live_version"], 2);
    assert_eq!(hooks[0]["latest_version"], 2);

    // Same bytes, different config or limits: refused, naming the existing release.
    let conflict = reg
        .host(&[
            "publish",
            s(&v1_file),
            "--name",
            "text_stats",
            "--config",
            r#"{"mode": "strict"}"#,
        ])
        .exits(1);
    for expected in [v1_digest.as_str(), "`text_stats` v1", "different config"] {
        assert!(
            conflict.stderr.contains(expected),
            "`{expected}` not in:\n{}",
            conflict.stderr
        );
    }
    let conflict = reg
        .host(&[
            "publish",
            s(&v1_file),
            "--name",
            "text_stats",
            "--fuel",
            "12345",
        ])
        .exits(1);
    assert!(
        conflict.stderr.contains("`text_stats` v1") && conflict.stderr.contains("different limits"),
        "{}",
        conflict.stderr
    );
    let after = reg.json(&["releases", "text_stats"]);
    assert_eq!(
        after, releases,
        "refused publishes change nothing in the registry"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Concurrency: separate processes on one root
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_publisher_and_runner_processes_keep_versions_gap_free() {
    const VARIANTS: usize = 8;
    const PUBLISHERS: usize = 8;
    const EACH: usize = 3;
    let reg = Reg::new();
    let dir = reg.path("variants");
    std::fs::create_dir(&dir).unwrap();
    let base = guest("text_stats");
    let files: Vec<PathBuf> = (0..VARIANTS as u32)
        .map(|n| variant(&base, n, &dir))
        .collect();
    let digests: Vec<String> = files.iter().map(|f| file_digest(f)).collect();
    assert_eq!(
        digests.iter().collect::<BTreeSet<_>>().len(),
        VARIANTS,
        "variants have distinct digests"
    );

    // Publisher k publishes variants k, k+1, k+2 (mod 8), each with its own `host publish`
    // process, all publishers at once: every digest is published by 3 processes, and new
    // versions race with each other.
    let outcomes: Vec<(usize, Ran)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..PUBLISHERS)
            .map(|k| {
                let (reg, files) = (&reg, &files);
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let n = (k + i) % VARIANTS;
                            let child =
                                reg.spawn(&["publish", s(&files[n]), "--name", "text_stats"]);
                            (n, Ran::from(child.wait_with_output().unwrap()))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(outcomes.len(), PUBLISHERS * EACH);

    let mut version_of: HashMap<String, u32> = HashMap::new();
    let mut created: HashMap<String, usize> = HashMap::new();
    for (n, ran) in outcomes {
        let published = parse_published(&ran.ok());
        assert_eq!(published.digest, digests[n], "{}", published.stdout);
        let version = *version_of
            .entry(published.digest.clone())
            .or_insert(published.version);
        assert_eq!(
            version, published.version,
            "one digest, one version: {}",
            published.stdout
        );
        *created.entry(published.digest).or_default() += usize::from(published.created);
    }
    for digest in &digests {
        assert_eq!(
            created.get(digest),
            Some(&1),
            "{digest} was created exactly once"
        );
    }

    let releases = reg.json(&["releases", "text_stats"]);
    let listed = versions_and_digests(&releases);
    assert_eq!(
        listed.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        (1..=VARIANTS as u64).collect::<Vec<_>>(),
        "versions 1..=8, no gaps, no duplicates: {releases:#}"
    );
    assert_eq!(
        listed
            .iter()
            .map(|(_, d)| d.clone())
            .collect::<BTreeSet<_>>(),
        digests.iter().cloned().collect::<BTreeSet<_>>(),
        "each variant's digest is exactly one release"
    );
    for (version, digest) in &listed {
        assert_eq!(
            u64::from(version_of[digest]),
            *version,
            "publish printed the version the registry lists for {digest}"
        );
    }
    let history = releases["live_history"].as_array().unwrap();
    assert_eq!(history.len(), VARIANTS, "{releases:#}");
    for (i, moved) in history.iter().enumerate() {
        assert_eq!(moved["cause"], "publish");
        assert_eq!(moved["to_version"], i + 1, "{moved}");
        let from = if i == 0 { Value::Null } else { Value::from(i) };
        assert_eq!(moved["from_version"], from, "{moved}");
    }
    assert_eq!(live_versions(&releases), [VARIANTS as u64]);
    let live_digest = listed.last().unwrap().1.clone();

    // Runs from several processes at once: each is recorded.
    let input = sample("text.jsonl");
    let outs: Vec<PathBuf> = (0..4).map(|i| reg.path(&format!("out-{i}"))).collect();
    let children: Vec<Child> = outs
        .iter()
        .map(|out| reg.spawn(&["run", "text_stats", "--input", s(&input), "--out", s(out)]))
        .collect();
    let mut ids = BTreeSet::new();
    for (child, out) in children.into_iter().zip(&outs) {
        let ran = Ran::from(child.wait_with_output().unwrap()).ok();
        let record = run_json(out);
        assert_eq!(record["run_id"], ran.run_id().as_str());
        assert_eq!(record["hook"]["version"], VARIANTS);
        assert_eq!(record["hook"]["digest"], live_digest.as_str());
        ids.insert(ran.run_id());
    }
    assert_eq!(ids.len(), outs.len(), "distinct run ids");
    let runs = reg.json(&["runs"]);
    assert_eq!(
        run_ids(&runs).into_iter().collect::<BTreeSet<_>>(),
        ids,
        "every run is recorded once: {runs:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. The live pointer and rollback
// ---------------------------------------------------------------------------------------------

#[test]
fn rolling_back_moves_only_the_live_pointer() {
    let reg = Reg::new();
    let v1_file = guest("text_stats");
    let v2_file = variant(&v1_file, 2, reg.temp.path());
    let (d1, d2) = (file_digest(&v1_file), file_digest(&v2_file));
    assert_eq!(reg.publish(&v1_file, "text_stats").version, 1);
    assert_eq!(reg.publish(&v2_file, "text_stats").version, 2);
    let input = sample("text.jsonl");

    let first = reg.run("text_stats", &input, "out-live-v2", &[]);
    assert_eq!(
        run_json(&reg.path("out-live-v2"))["hook"],
        serde_json::json!({"name": "text_stats", "version": 2, "digest": d2})
    );
    let shown_before = reg.host(&["show", &first, "--json"]).ok().stdout;
    let releases_before = reg.json(&["releases", "text_stats"]);

    let moved = reg.host(&["live", "text_stats", "1"]).ok();
    assert!(
        moved.stdout.contains("live v2 -> v1") && moved.stdout.contains(&d1),
        "{}",
        moved.stdout
    );
    let json = reg.json(&["live", "text_stats", "v1"]);
    assert_eq!(json["moved"], false, "already live: {json:#}");
    let missing = reg.host(&["live", "text_stats", "3"]).exits(1);
    assert!(
        missing.stderr.contains("no release v3") && missing.stderr.contains("latest is v2"),
        "{}",
        missing.stderr
    );

    reg.run("text_stats", &input, "out-live-v1", &[]);
    assert_eq!(
        run_json(&reg.path("out-live-v1"))["hook"],
        serde_json::json!({"name": "text_stats", "version": 1, "digest": d1})
    );
    // A pinned version runs whatever the pointer says.
    reg.run("text_stats@2", &input, "out-pinned-v2", &[]);
    assert_eq!(
        run_json(&reg.path("out-pinned-v2"))["hook"],
        serde_json::json!({"name": "text_stats", "version": 2, "digest": d2})
    );

    let releases_after = reg.json(&["releases", "text_stats"]);
    let strip = |releases: &Value| -> Vec<Value> {
        releases["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(without_live)
            .collect()
    };
    assert_eq!(
        strip(&releases_after),
        strip(&releases_before),
        "releases are untouched by a rollback"
    );
    assert_eq!(live_versions(&releases_before), [2]);
    assert_eq!(live_versions(&releases_after), [1]);
    let history: Vec<(Value, Value, Value)> = releases_after["live_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from_version"].clone(),
                m["to_version"].clone(),
                m["cause"].clone(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            (Value::Null, 1.into(), "publish".into()),
            (1.into(), 2.into(), "publish".into()),
            (2.into(), 1.into(), "live".into()),
        ],
        "{releases_after:#}"
    );
    assert_eq!(
        reg.host(&["show", &first, "--json"]).ok().stdout,
        shown_before,
        "a recorded run never changes"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Blob integrity
// ---------------------------------------------------------------------------------------------

#[test]
fn a_tampered_blob_is_refused_and_republishing_repairs_it() {
    let reg = Reg::new();
    let file = guest("text_stats");
    let published = reg.publish(&file, "text_stats");
    let blob = reg.blob(&published.digest);
    assert!(blob.is_file(), "{} exists", blob.display());
    // Replace it with another valid component: it must be refused all the same.
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, std::fs::read(guest("file_profile")).unwrap()).unwrap();

    let input = sample("text.jsonl");
    let out = reg.path("out");
    let refused = reg
        .host(&["run", "text_stats", "--input", s(&input), "--out", s(&out)])
        .exits(1);
    assert!(
        refused.stderr.contains(s(&blob)) && refused.stderr.contains("corrupt"),
        "{}",
        refused.stderr
    );
    assert!(!out.exists(), "no output directory for a refused run");
    let inspected = reg.host(&["inspect", "text_stats"]).exits(1);
    assert!(
        inspected.stderr.contains(s(&blob)) && inspected.stderr.contains("corrupt"),
        "{}",
        inspected.stderr
    );

    let again = reg.publish(&file, "text_stats");
    assert_eq!(
        (again.version, again.digest.as_str(), again.created),
        (1, published.digest.as_str(), false)
    );
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        std::fs::read(&file).unwrap(),
        "re-publishing restored the blob's bytes"
    );
    reg.run("text_stats", &input, "out", &[]);
    assert_eq!(run_json(&out)["hook"]["digest"], published.digest.as_str());
}

// ---------------------------------------------------------------------------------------------
// 5. Contract evolution
// ---------------------------------------------------------------------------------------------

#[test]
fn contract_evolution_accepts_additive_and_refuses_destructive_changes() {
    let reg = Reg::new();
    assert_eq!(reg.publish(&guest("evolve_base"), "evolve").version, 1);

    let grown = reg.publish(&guest("evolve_grown"), "evolve");
    assert_eq!((grown.version, grown.created), (2, true));
    assert!(
        grown.stdout.contains("nullable") && grown.stdout.contains("words"),
        "{}",
        grown.stdout
    );
    let hooks = reg.json(&["hooks"]);
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks:#}");
    let columns: Vec<(String, bool)> = hooks[0]["contract"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["nullable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(columns.len(), 3, "{hooks:#}");
    assert!(
        columns.contains(&("length".into(), false))
            && columns.contains(&("label".into(), true))
            && columns.contains(&("words".into(), true)),
        "{columns:?}"
    );

    let retyped_file = guest("evolve_retyped");
    let retyped = reg
        .host(&["publish", s(&retyped_file), "--name", "evolve"])
        .exits(1);
    for change in [
        "column `length` retyped from integer to number",
        "required column `checksum`",
        "column `words` removed",
    ] {
        assert!(
            retyped.stderr.contains(change),
            "`{change}` not in:\n{}",
            retyped.stderr
        );
    }
    assert!(
        !reg.blob(&file_digest(&retyped_file)).exists(),
        "a refused component's bytes are not stored"
    );
    let releases = reg.json(&["releases", "evolve"]);
    assert_eq!(releases["releases"].as_array().unwrap().len(), 2);
    assert_eq!(live_versions(&releases), [2]);

    let other = reg
        .host(&["publish", s(&guest("text_stats")), "--name", "evolve"])
        .exits(1);
    for change in [
        "feature renamed from `evolve` to `text_stats`",
        "column `length` removed",
        "column `label` removed",
        "required column `word_count`",
    ] {
        assert!(
            other.stderr.contains(change),
            "`{change}` not in:\n{}",
            other.stderr
        );
    }
    let many = reg
        .host(&["publish", s(&guest("file_profile")), "--name", "evolve"])
        .exits(1);
    for change in [
        "feature renamed from `evolve` to `file_profile`",
        "cardinality changed from `one` to `many`",
    ] {
        assert!(
            many.stderr.contains(change),
            "`{change}` not in:\n{}",
            many.stderr
        );
    }

    let bad = reg
        .host(&["publish", s(&guest("text_stats")), "--name", "Bad-Name"])
        .exits(1);
    assert!(
        bad.stderr.contains("`Bad-Name`") && bad.stderr.contains("not a valid hook name"),
        "{}",
        bad.stderr
    );
    let hooks = reg.json(&["hooks"]);
    assert_eq!(hooks.as_array().unwrap().len(), 1, "{hooks:#}");
    assert_eq!(hooks[0]["latest_version"], 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Replay
// ---------------------------------------------------------------------------------------------

#[test]
fn replay_checks_its_input_and_compares_outputs() {
    let reg = Reg::new();
    reg.publish(&guest("text_stats"), "text_stats");
    let text = sample("text.jsonl");
    let original = reg.run("text_stats", &text, "out-text", &[]);

    let replayed = reg
        .host(&["replay", &original, "--input", s(&text)])
        .exits(0);
    assert!(replayed.stdout.contains("identical"), "{}", replayed.stdout);
    let runs = reg.json(&["runs"]);
    let replay = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["replay_of"] == original.as_str())
        .unwrap_or_else(|| panic!("no run with replay_of {original}: {runs:#}"));
    assert_ne!(replay["run_id"], original.as_str());
    assert_eq!(replay["hook"]["name"], "text_stats");
    assert_eq!(replay["hook"]["version"], 1);
    let replay_id = replay["run_id"].as_str().unwrap().to_owned();
    let shown = reg.json(&["show", &replay_id]);
    assert!(
        shown["out_dir"].is_null(),
        "a replay's temporary output is not recorded as kept: {shown:#}"
    );

    // Not the run's input: refused before anything runs.
    let other_input = reg.path("other.jsonl");
    let first_lines: String = std::fs::read_to_string(&text)
        .unwrap()
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&other_input, first_lines).unwrap();
    let wrong = reg
        .host(&["replay", &original, "--input", s(&other_input)])
        .exits(1);
    assert!(
        wrong.stderr.contains("is not the input of run") && wrong.stderr.contains(&original),
        "{}",
        wrong.stderr
    );

    // A files run replayed over changed files: exit 3, naming the output that differs.
    reg.publish(&guest("file_profile"), "file_profile");
    let files_input = sample("files.jsonl");
    let files = sample("files");
    let profiled = reg.run(
        "file_profile",
        &files_input,
        "out-files",
        &["--files", s(&files)],
    );
    let changed = reg.path("changed-files");
    copy_dir(&files, &changed);
    std::fs::write(changed.join("doc-1/a.txt"), b"other bytes, other hash\n").unwrap();
    let differs = reg
        .host(&[
            "replay",
            &profiled,
            "--input",
            s(&files_input),
            "--files",
            s(&changed),
        ])
        .exits(3);
    let difference_lines: Vec<&str> = differs
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("differs"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert!(
        difference_lines
            .iter()
            .any(|l| l.trim_start().starts_with("features.jsonl")),
        "{}",
        differs.stdout
    );
    assert!(
        difference_lines.iter().all(
            |l| !l.trim_start().starts_with("records") && !l.trim_start().starts_with("status")
        ),
        "only the content differs: {}",
        differs.stdout
    );

    // The same files with --out: identical, and the output is kept there.
    let kept = reg.path("replay-out");
    reg.host(&[
        "replay",
        &profiled,
        "--input",
        s(&files_input),
        "--files",
        s(&files),
        "--out",
        s(&kept),
    ])
    .exits(0);
    let kept_record = run_json(&kept);
    assert_eq!(kept_record["replay_of"], profiled.as_str());
    let kept_id = kept_record["run_id"].as_str().unwrap();
    let strip_run_id = |rows: Vec<Value>, run_id: &str| -> Vec<Value> {
        rows.into_iter()
            .map(|mut row| {
                assert_eq!(row["run_id"], run_id, "{row}");
                row.as_object_mut().unwrap().remove("run_id");
                row
            })
            .collect()
    };
    let original_rows = strip_run_id(jsonl(&reg.path("out-files/features.jsonl")), &profiled);
    let kept_rows = strip_run_id(jsonl(&kept.join("features.jsonl")), kept_id);
    assert_eq!(original_rows.len(), 3, "doc-1 has 2 files, doc-2 one");
    assert_eq!(kept_rows, original_rows);
}

// ---------------------------------------------------------------------------------------------
// 7. Ad-hoc component runs
// ---------------------------------------------------------------------------------------------

#[test]
fn ad_hoc_component_runs_are_recorded_with_their_bytes() {
    let reg = Reg::new();
    let file = guest("text_stats");
    let digest = file_digest(&file);
    let text = sample("text.jsonl");
    let run_id = reg.run(s(&file), &text, "out", &[]);
    let hook = &run_json(&reg.path("out"))["hook"];
    assert!(
        hook["name"].is_null() && hook["version"].is_null(),
        "{hook}"
    );
    assert_eq!(hook["digest"], digest.as_str());

    let runs = reg.json(&["runs"]);
    assert_eq!(run_ids(&runs), [run_id.as_str()]);
    assert!(runs[0]["hook"]["name"].is_null(), "{runs:#}");
    assert_eq!(runs[0]["hook"]["digest"], digest.as_str());
    assert_eq!(
        std::fs::read(reg.blob(&digest)).unwrap(),
        std::fs::read(&file).unwrap(),
        "the component's bytes are kept in the blob store"
    );
    assert_eq!(
        reg.json(&["hooks"]),
        serde_json::json!([]),
        "a file run registers no hook"
    );

    let replayed = reg.host(&["replay", &run_id, "--input", s(&text)]).exits(0);
    assert!(replayed.stdout.contains("identical"), "{}", replayed.stdout);
}

// ---------------------------------------------------------------------------------------------
// 8. Reading runs back
// ---------------------------------------------------------------------------------------------

#[test]
fn show_takes_a_unique_prefix_and_runs_filters_by_hook() {
    let reg = Reg::new();
    reg.publish(&guest("text_stats"), "text_stats");
    reg.publish(&guest("file_profile"), "file_profile");
    let text = sample("text.jsonl");
    let r1 = reg.run("text_stats", &text, "out-1", &[]);
    let r2 = reg.run("text_stats", &text, "out-2", &[]);
    let r3 = reg.run(
        "file_profile",
        &sample("files.jsonl"),
        "out-3",
        &["--files", s(&sample("files"))],
    );

    assert_eq!(
        run_ids(&reg.json(&["runs"])),
        [r3.as_str(), r2.as_str(), r1.as_str()]
    );
    let newest = reg.json(&["runs", "--hook", "text_stats", "--limit", "1"]);
    assert_eq!(run_ids(&newest), [r2.as_str()], "{newest:#}");
    assert_eq!(newest[0]["hook"]["name"], "text_stats");
    assert_eq!(
        run_ids(&reg.json(&["runs", "--hook", "file_profile"])),
        [r3.as_str()]
    );

    // The shortest prefix (of at least 4 characters) no other run shares.
    let prefix = (4..=r1.len())
        .map(|n| &r1[..n])
        .find(|p| !r2.starts_with(p) && !r3.starts_with(p))
        .unwrap();
    assert!(prefix.len() < r1.len(), "{r1} {r2} {r3}");
    let shown = reg.json(&["show", prefix]);
    assert_eq!(shown["record"]["run_id"], r1.as_str());
    assert_eq!(shown["record"], run_json(&reg.path("out-1")));
    assert_eq!(shown["config"], "{}");
    let out_1 = std::path::absolute(reg.path("out-1")).unwrap();
    assert_eq!(shown["out_dir"], s(&out_1));

    let unknown = "00000000-0000-7000-8000-000000000000";
    let missing = reg.host(&["show", unknown]).exits(1);
    assert!(
        missing.stderr.contains(&format!("no run `{unknown}`")),
        "{}",
        missing.stderr
    );
    // Run ids are UUIDv7s, so runs made seconds apart share a long prefix.
    let common: String = r1
        .chars()
        .zip(r2.chars())
        .zip(r3.chars())
        .take_while(|((a, b), c)| a == b && b == c)
        .map(|((a, _), _)| a)
        .collect();
    if common.len() >= 4 {
        let ambiguous = reg.host(&["show", &common]).exits(1);
        assert!(
            ambiguous.stderr.contains("matches 3 runs"),
            "{}",
            ambiguous.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. A root that does not exist
// ---------------------------------------------------------------------------------------------

#[test]
fn reading_commands_on_a_missing_root_fail_without_creating_it() {
    let reg = Reg::new();
    let text = sample("text.jsonl");
    let commands: [&[&str]; 7] = [
        &["hooks"],
        &["releases", "text_stats"],
        &["runs"],
        &["show", "0193abcd"],
        &["live", "text_stats", "1"],
        &["inspect", "text_stats"],
        &["replay", "0193abcd", "--input", s(&text)],
    ];
    for args in commands {
        let ran = reg.host(args).exits(1);
        assert!(
            ran.stderr.contains("no registry at") && ran.stderr.contains(s(&reg.root)),
            "{args:?}: {}",
            ran.stderr
        );
        assert!(
            !reg.root.exists(),
            "{args:?} created {}",
            reg.root.display()
        );
    }
}

#[test]
fn publish_refuses_a_component_over_the_size_cap_before_storing_anything() {
    let reg = Reg::new();
    let file = guest("text_stats");
    let ran = reg
        .host(&[
            "publish",
            s(&file),
            "--name",
            "text_stats",
            "--max-component-size",
            "1KiB",
        ])
        .exits(1);
    assert!(
        ran.stderr.contains(s(&file)) && ran.stderr.contains("over the cap of 1024 bytes"),
        "{}",
        ran.stderr
    );
    assert!(
        !reg.root.exists(),
        "nothing is stored for a refused component"
    );
    // The default cap (64 MiB) takes it.
    assert_eq!(reg.publish(&file, "text_stats").version, 1);
}

// ---------------------------------------------------------------------------------------------
// Issue 26: who did it, live moves with a reason and a condition, releases by digest, runs
// sent from elsewhere
// ---------------------------------------------------------------------------------------------

/// This process's user and machine as the registry records them: `id -un` and the kernel's
/// host name.
fn local_actor() -> Value {
    let id = Command::new("id").arg("-un").output().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    serde_json::json!({
        "kind": "local",
        "user": String::from_utf8_lossy(&id.stdout).trim(),
        "host": host.trim(),
    })
}

#[test]
fn releases_say_who_published_them_and_live_moves_who_moved_them_and_why() {
    let reg = Reg::new();
    let v1_file = guest("text_stats");
    let v2_file = variant(&v1_file, 2, reg.temp.path());
    let v3_file = variant(&v1_file, 3, reg.temp.path());
    reg.host(&[
        "publish",
        s(&v1_file),
        "--name",
        "text_stats",
        "--built-by",
        "ci-bot",
    ])
    .ok();
    reg.publish(&v2_file, "text_stats");
    let me = local_actor();
    let who = format!(
        "local:{}@{}",
        me["user"].as_str().unwrap(),
        me["host"].as_str().unwrap()
    );

    // Who published is recorded from the operating system; what the publisher said is kept.
    let releases = reg.json(&["releases", "text_stats"]);
    for release in releases["releases"].as_array().unwrap() {
        assert_eq!(release["published_by"], me, "{release:#}");
    }
    assert_eq!(releases["releases"][0]["built_by"], "ci-bot");
    assert!(releases["releases"][0].get("live").is_some());
    for moved in releases["live_history"].as_array().unwrap() {
        assert_eq!(moved["moved_by"], me, "{moved:#}");
        assert_eq!(moved["reason"], Value::Null);
    }
    let listed = reg.host(&["releases", "text_stats"]).ok().stdout;
    assert!(
        listed.contains("PUBLISHED_BY") && listed.contains(&who),
        "{listed}"
    );

    // A rollback with a reason, on condition that the pointer is where we saw it.
    let moved = reg.json(&[
        "live",
        "text_stats",
        "1",
        "--reason",
        "v2 rejects every record",
        "--expect",
        "2",
    ]);
    assert_eq!(
        (
            &moved["hook"],
            &moved["from"],
            &moved["to"],
            &moved["moved"]
        ),
        (&"text_stats".into(), &2.into(), &1.into(), &true.into()),
        "{moved:#}"
    );
    assert_eq!(
        (&moved["release"]["version"], &moved["release"]["live"]),
        (&1.into(), &true.into())
    );
    assert_eq!(moved["release"]["digest"], file_digest(&v1_file).as_str());

    // Someone expecting the pointer where it was: refused, nothing moves.
    let late = reg
        .host(&["live", "text_stats", "2", "--expect", "2"])
        .exits(1);
    assert!(
        late.stderr
            .contains("live pointer is on v1, not v2 as expected")
            && late.stderr.contains("nothing moved"),
        "{}",
        late.stderr
    );
    // Already there: nothing recorded.
    let again = reg
        .host(&["live", "text_stats", "1", "--reason", "again"])
        .ok();
    assert!(
        again.stdout.contains("nothing recorded"),
        "{}",
        again.stdout
    );
    // A reason too long is refused.
    let long = "x".repeat(hookhost::registry::MAX_REASON_BYTES + 1);
    let refused = reg
        .host(&["live", "text_stats", "2", "--reason", &long])
        .exits(1);
    assert!(
        refused.stderr.contains("over the cap of 1024 bytes"),
        "{}",
        refused.stderr
    );
    // A reason or a condition without a version is a usage error.
    reg.host(&["live", "text_stats", "--reason", "why"])
        .exits(2);

    // The pointer's history: where it is, every move, who and why.
    let history = reg.json(&["live", "text_stats"]);
    assert_eq!(history["live_version"], 1);
    let moves = history["moves"].as_array().unwrap();
    assert_eq!(moves.len(), 3, "{history:#}");
    assert_eq!(
        (
            &moves[2]["cause"],
            &moves[2]["moved_by"],
            &moves[2]["reason"]
        ),
        (&"live".into(), &me, &"v2 rejects every record".into())
    );
    let shown = reg.host(&["live", "text_stats"]).ok().stdout;
    assert!(
        shown.contains("text_stats: live v1")
            && shown.contains(&format!("by {who}: v2 rejects every record")),
        "{shown}"
    );

    // A release that does not take the pointer.
    let quiet = reg
        .host(&["publish", s(&v3_file), "--name", "text_stats", "--no-live"])
        .ok();
    assert!(quiet.stdout.contains("live: still v1"), "{}", quiet.stdout);
    assert_eq!(live_versions(&reg.json(&["releases", "text_stats"])), [1]);
    // The hooks listing no longer repeats the latest version as a release count.
    let hooks = reg.json(&["hooks"]);
    assert_eq!(hooks[0]["latest_version"], 3);
    assert!(hooks[0].get("releases").is_none(), "{hooks:#}");
}

/// A registry under `root` on each backend: SQLite in the root, and a PostgreSQL database of
/// its own.
fn each_backend(root: &Path) -> Vec<(&'static str, hookhost::registry::Registry)> {
    use hookhost::registry::Registry;
    vec![
        ("sqlite", Registry::open(root.join("sqlite")).unwrap()),
        (
            "postgres",
            Registry::connect(&common::postgres::fresh_database(), root.join("pg")).unwrap(),
        ),
    ]
}

#[test]
fn a_component_uploaded_by_digest_is_released_as_publish_would_and_its_runs_come_back() {
    use hookhost::registry::{Actor, PublishRequest};
    use hookhost::{Error, Host, HostConfig};
    let temp = tempfile::tempdir().unwrap();
    let host = Host::new(HostConfig::default()).unwrap();
    let bytes = std::fs::read(guest("text_stats")).unwrap();
    let digest = digest_of(&bytes);
    let ci = Actor::token("hookhost", "ci-text", "jti-7");
    let request = |name: &str| {
        let mut request = PublishRequest::new(name);
        request.actor = ci.clone();
        request.built_by = Some("says-alice".into());
        request
    };
    let cap = 64 << 20;
    for (backend, registry) in each_backend(temp.path()) {
        eprintln!("backend: {backend}");
        // Not uploaded yet.
        let error = registry
            .publish_digest(&host, &digest, request("text_stats"))
            .unwrap_err();
        assert!(matches!(error, Error::BlobNotFound { .. }), "{error:?}");
        assert_eq!(error.code(), "blob_not_found");

        let put = registry.put_blob(&digest, &bytes[..], cap).unwrap();
        assert!(put.created);
        let published = registry
            .publish_digest(&host, &digest, request("text_stats"))
            .unwrap();
        assert!(published.created);
        let release = &published.release;
        assert_eq!((release.version, release.live), (1, true));
        assert_eq!(release.published_by, Some(ci.clone()));
        assert_eq!(release.built_by.as_deref(), Some("says-alice"));
        assert_eq!(release.digest, digest);
        // Again: the same release.
        let again = registry
            .publish_digest(&host, &digest, request("text_stats"))
            .unwrap();
        assert!(!again.created);
        assert_eq!(again.release, published.release);
        // The same digest with other settings: refused.
        let mut other = request("text_stats");
        other.config = Some(r#"{"x": 1}"#.into());
        let error = registry.publish_digest(&host, &digest, other).unwrap_err();
        assert_eq!(error.code(), "release_conflict", "{error}");

        // Bytes that are no component: stored as bytes, refused as a release.
        let junk = b"not a component".to_vec();
        let junk_digest = digest_of(&junk);
        registry.put_blob(&junk_digest, &junk[..], cap).unwrap();
        let error = registry
            .publish_digest(&host, &junk_digest, request("junk"))
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidComponent { origin, .. } if *origin == junk_digest),
            "{error:?}"
        );
        assert!(matches!(
            registry.hook("junk"),
            Err(Error::HookNotFound { .. })
        ));

        // A destructive contract: refused, naming every change, nothing recorded.
        for fixture in ["evolve_base", "evolve_retyped"] {
            let bytes = std::fs::read(guest(fixture)).unwrap();
            let digest = digest_of(&bytes);
            registry.put_blob(&digest, &bytes[..], cap).unwrap();
            let answer = registry.publish_digest(&host, &digest, request("evolve"));
            if fixture == "evolve_base" {
                assert!(answer.unwrap().created);
                continue;
            }
            let error = answer.unwrap_err();
            let Error::ContractChanged { changes, .. } = &error else {
                panic!("{error:?}")
            };
            assert!(changes.len() >= 2, "{changes:?}");
            assert_eq!(error.code(), "contract_changed");
        }
        assert_eq!(registry.hook("evolve").unwrap().latest_version, 1);

        // The release runs elsewhere (here, without a recorder), and its run.json comes back.
        let out = temp.path().join(format!("out-{backend}"));
        let component = registry.load(&host, release).unwrap();
        let run = hookhost::run::RunRequest::for_release(
            component,
            release,
            hookhost::run::Input::File(sample("text.jsonl")),
            &out,
        );
        let record = hookhost::run::run_to_dir(run, &mut |_| {}).unwrap();
        assert!(
            registry.run_record(&record.run_id).is_err(),
            "not recorded yet"
        );
        let imported = registry.import_run(&record, None, &ci).unwrap();
        assert!(imported.created);
        assert_eq!(imported.run.recorded_by, Some(ci.clone()));
        assert_eq!(registry.run_record(&record.run_id).unwrap(), imported.run);
        assert!(!registry.import_run(&record, None, &ci).unwrap().created);
        let mut changed = record.clone();
        changed.duration_ms += 1;
        assert_eq!(
            registry.import_run(&changed, None, &ci).unwrap_err().code(),
            "run_conflict"
        );
    }
}
