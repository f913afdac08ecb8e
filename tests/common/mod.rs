//! Shared test support: builds the example hooks and fixtures from source (once per test
//! binary; cargo's own lock serialises concurrent builds), loads them, and runs batches into
//! temporary output directories.
#![allow(dead_code)]

pub mod postgres;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use hookhost::provenance::RunRecord;
use hookhost::run::{Input, RunRequest, run_to_dir};
use hookhost::{HookComponent, Host, HostConfig};
use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// Builds every guest (example hooks and fixtures) for `wasm32-wasip2`, once.
fn build_guests() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = root();
        let target_dir = root.join("example-hooks/target");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--workspace",
            ])
            .arg("--manifest-path")
            .arg(root.join("example-hooks/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("running cargo to build the guest components");
        assert!(
            output.status.success(),
            "building the guest components failed (is the target installed? \
             `rustup target add wasm32-wasip2`, which `make test` does):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        target_dir.join("wasm32-wasip2/release")
    })
}

/// The path of guest component `name` (e.g. `text_stats`), built from source.
pub fn guest(name: &str) -> PathBuf {
    let path = build_guests().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// One host shared by the tests of a binary.
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::new(HostConfig::default()).expect("creating a host"))
}

/// Guest `name` loaded on the shared host (compiled once per test binary).
pub fn load(name: &str) -> HookComponent {
    static LOADED: OnceLock<Mutex<HashMap<String, HookComponent>>> = OnceLock::new();
    let cache = LOADED.get_or_init(Default::default);
    if let Some(hook) = cache.lock().unwrap().get(name) {
        return hook.clone();
    }
    let hook = host().load_file(&guest(name)).expect("loading a guest");
    cache.lock().unwrap().insert(name.to_owned(), hook.clone());
    hook
}

/// A finished run: its record and the parsed contents of its output files.
pub struct Ran {
    pub record: RunRecord,
    pub dir: PathBuf,
    pub features: Vec<Value>,
    pub rejections: Vec<Value>,
    pub errors: Vec<Value>,
    pub logs: String,
    _temp: tempfile::TempDir,
}

impl Ran {
    /// The run in `dir` (inside `temp`, kept as long as the `Ran`) that `record` describes.
    pub fn read(record: RunRecord, dir: PathBuf, temp: tempfile::TempDir) -> Ran {
        let read_lines = |name: &str| -> Vec<Value> {
            std::fs::read_to_string(dir.join(name))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        Ran {
            features: read_lines("features.jsonl"),
            rejections: read_lines("rejections.jsonl"),
            errors: read_lines("errors.jsonl"),
            logs: std::fs::read_to_string(dir.join("logs.txt")).unwrap(),
            record,
            dir,
            _temp: temp,
        }
    }

    /// The features of record `id`'s rows.
    pub fn rows_of(&self, id: &str) -> Vec<&Value> {
        self.features
            .iter()
            .filter(|row| row["id"] == id)
            .map(|row| &row["features"])
            .collect()
    }

    /// The error line of record `id`.
    pub fn error_of(&self, id: &str) -> &Value {
        self.errors
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no error for {id}; errors: {:#?}", self.errors))
    }

    /// The ids that passed, in output order (deduplicated).
    pub fn passed_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for row in &self.features {
            let id = row["id"].as_str().unwrap().to_owned();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// Runs `hook` over `input` (JSONL text); `adjust` may change the request.
pub fn run_with(hook: HookComponent, input: &str, adjust: impl FnOnce(&mut RunRequest)) -> Ran {
    let temp = tempfile::tempdir().unwrap();
    let input_path = temp.path().join("input.jsonl");
    std::fs::write(&input_path, input).unwrap();
    let dir = temp.path().join("out");
    let mut request = RunRequest::new(hook, Input::File(input_path), &dir);
    adjust(&mut request);
    let record = run_to_dir(request, &mut |_| {}).expect("the run starts");
    Ran::read(record, dir, temp)
}

/// Runs `hook` over `input` with default settings.
pub fn run(hook: HookComponent, input: &str) -> Ran {
    run_with(hook, input, |_| {})
}

/// JSONL from `(id, metadata)` pairs.
pub fn jsonl(records: &[(&str, Value)]) -> String {
    records
        .iter()
        .map(|(id, metadata)| {
            serde_json::json!({"id": id, "metadata": metadata}).to_string() + "\n"
        })
        .collect()
}

/// The standard output of a command that must have succeeded; otherwise a panic showing both
/// of its outputs.
pub fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Copies a directory tree of regular files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
