//! `host new` / `host build` / `host run` from an empty directory, for both languages (issue
//! 13): the three commands of a first run, inside and outside a clone, and a project that does
//! not build showing the compiler's own message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn host() -> Command {
    Command::new(env!("CARGO_BIN_EXE_host"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Makes, builds and runs a project of `lang` under `parent`; returns the feature lines.
fn first_run(parent: &Path, lang: &str, build: impl FnOnce(&mut Command)) -> Vec<Value> {
    let project = parent.join("word_stats");
    ok(
        host()
            .current_dir(parent)
            .args(["new", "word_stats", "--lang", lang])
            .output()
            .unwrap(),
        "host new",
    );
    assert!(project.join("sample.jsonl").is_file());
    let mut command = host();
    command
        .current_dir(parent)
        .args(["build", "word_stats", "--json"]);
    build(&mut command);
    let built: Value = serde_json::from_str(&ok(command.output().unwrap(), "host build")).unwrap();
    let wasm = PathBuf::from(built["path"].as_str().unwrap());
    assert_eq!(
        wasm,
        project.canonicalize().unwrap().join("word_stats.wasm")
    );
    let bytes = std::fs::read(&wasm).unwrap();
    assert_eq!(built["bytes"], bytes.len());
    assert_eq!(built["digest"], hookhost::digest::sha256_digest(&bytes));
    let out = parent.join("out");
    let ran = ok(
        host()
            .current_dir(parent)
            .args(["--root", "registry", "run", "word_stats/word_stats.wasm"])
            .args(["--input", "word_stats/sample.jsonl", "--out", "out"])
            .output()
            .unwrap(),
        "host run",
    );
    assert!(ran.contains("3 records: 2 passed"), "{ran}");
    let rejected = std::fs::read_to_string(out.join("rejections.jsonl")).unwrap();
    assert!(
        rejected.contains("metadata.text must be a string"),
        "{rejected}"
    );
    std::fs::read_to_string(out.join("features.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn features(lines: &[Value]) -> Vec<Value> {
    lines.iter().map(|l| l["features"].clone()).collect()
}

/// The guest workspace's target directory: the template's dependencies are already built there.
fn guest_target() -> PathBuf {
    root().join("example-hooks/target")
}

#[test]
fn a_rust_project_goes_from_nothing_to_a_first_run_in_three_commands() {
    let expected = [
        serde_json::json!({"word_count": 4, "longest_word": "spice"}),
        serde_json::json!({"word_count": 10, "longest_word": "planet,"}),
    ];
    // Outside any cargo workspace…
    let outside = tempfile::tempdir().unwrap();
    let lines = first_run(outside.path(), "rust", |c| {
        c.env("CARGO_TARGET_DIR", guest_target());
    });
    assert_eq!(features(&lines), expected);
    // …and inside this repository's own, which must not claim the project.
    std::fs::create_dir_all(root().join("target")).unwrap();
    let inside = tempfile::tempdir_in(root().join("target")).unwrap();
    let lines = first_run(inside.path(), "rust", |c| {
        c.env("CARGO_TARGET_DIR", guest_target());
    });
    assert_eq!(features(&lines), expected);
}

#[test]
fn a_rust_project_that_does_not_build_shows_the_compilers_message() {
    let temp = tempfile::tempdir().unwrap();
    ok(
        host()
            .current_dir(temp.path())
            .args(["new", "broken"])
            .output()
            .unwrap(),
        "host new",
    );
    let lib = temp.path().join("broken/src/lib.rs");
    let text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        text.replace("word_count: words.len() as i64,", "word_count: nope,"),
    )
    .unwrap();
    let output = host()
        .current_dir(temp.path())
        .args(["build", "broken"])
        .env("CARGO_TARGET_DIR", guest_target())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot find value `nope`"), "{stderr}");
    assert!(stderr.contains("broken did not build: cargo"), "{stderr}");
    assert!(!temp.path().join("broken/broken.wasm").exists());
}

#[test]
fn a_python_project_goes_from_nothing_to_a_first_run_in_three_commands() {
    // The venv `make test` creates (componentize-py pinned); `host build` would make one in
    // the project otherwise, which costs a download per test.
    let venv = root().join("target/python-venv");
    assert!(
        venv.join("bin/python").exists(),
        "{} is missing: run `make -C sdk/python venv` (make test does)",
        venv.display()
    );
    let temp = tempfile::tempdir().unwrap();
    let lines = first_run(temp.path(), "python", |c| {
        c.arg("--python-venv").arg(&venv);
    });
    assert_eq!(
        features(&lines),
        [
            serde_json::json!({"word_count": 4, "longest_word": "spice"}),
            serde_json::json!({"word_count": 10, "longest_word": "planet,"}),
        ]
    );
}

#[test]
fn new_refuses_an_invalid_name_and_a_directory_in_use() {
    let temp = tempfile::tempdir().unwrap();
    let bad = host()
        .current_dir(temp.path())
        .args(["new", "Bad-Name"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid hook name"));
    std::fs::create_dir(temp.path().join("taken")).unwrap();
    std::fs::write(temp.path().join("taken/file"), "x").unwrap();
    let taken = host()
        .current_dir(temp.path())
        .args(["new", "taken"])
        .output()
        .unwrap();
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("not empty"));
    let nothing = host()
        .current_dir(temp.path())
        .args(["build", "taken"])
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("neither a Cargo.toml"));
}
