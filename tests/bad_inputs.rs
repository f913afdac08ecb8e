//! Bad inputs (pins issue 6), through the `host` binary as an operator meets them: each gets a
//! clear error naming the file, line or record (and, for flags, the value), and nothing else
//! is lost — the good records of a batch keep outcomes byte-identical to a run without the
//! bad lines, and a refused command leaves no output directory and stores nothing.
//!
//! Library-level checks of the same inputs live beside the code (`input.rs`, `limits.rs`,
//! `component.rs`) and in `tests/inputs.rs`, `tests/contract.rs` and `tests/cli.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::guest;
use serde_json::{Value, json};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// Support
// ---------------------------------------------------------------------------------------------

/// A temporary directory holding the registry root every invocation uses.
struct Sandbox {
    temp: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            temp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.temp.path().join(name)
    }

    fn root(&self) -> PathBuf {
        self.path("registry")
    }

    fn host(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.temp.path())
            .env_remove("HOOKHOST_HOME")
            .output()
            .unwrap()
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Every file under the registry's blob store.
    fn blobs(&self) -> Vec<String> {
        match std::fs::read_dir(self.root().join("blobs/sha256")) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts a command failed with `code`, saying so in one line that contains every `needle`.
#[track_caller]
fn assert_refused(output: &Output, code: i32, needles: &[&str]) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{message}");
    let first = message.lines().next().unwrap_or_default();
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{needle}` missing from:\n{message}"
        );
    }
    assert!(!first.is_empty(), "no message");
}

/// A file's lines as JSON, `run_id` members removed.
fn lines(dir: &Path, file: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            value.as_object_mut().unwrap().remove("run_id");
            value
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Components
// ---------------------------------------------------------------------------------------------

/// A component implementing another world: its `contract` export takes and returns nothing.
const OTHER_WORLD: &str = r#"(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func (export "contract") (canon lift (core func $i "f"))))"#;

/// A component that imports an interface the host does not provide.
const FOREIGN_IMPORT: &str = r#"(component
  (import "acme:secrets/vault" (instance
    (export "get" (func (param "k" string) (result string))))))"#;

#[test]
fn malformed_components_are_refused_by_every_command_naming_the_file() {
    let sandbox = Sandbox::new();
    let text_stats = std::fs::read(guest("text_stats")).unwrap();
    let input = sandbox.write("in.jsonl", "{\"id\":\"a\"}\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.wasm", Vec::new(), "the file is empty"),
        (
            "script.wasm",
            b"#!/bin/sh\necho hi\n".to_vec(),
            "not WebAssembly",
        ),
        (
            "truncated.wasm",
            text_stats[..text_stats.len() / 2].to_vec(),
            "is not a usable hook component",
        ),
        (
            "header-only.wasm",
            text_stats[..8].to_vec(),
            "is not a usable hook component",
        ),
        (
            "core.wasm",
            wat::parse_str("(module)").unwrap(),
            "core WebAssembly module",
        ),
        (
            "other-world.wasm",
            wat::parse_str(OTHER_WORLD).unwrap(),
            "does not implement the hook world",
        ),
        (
            "foreign-import.wasm",
            wat::parse_str(FOREIGN_IMPORT).unwrap(),
            "acme:secrets/vault",
        ),
    ];
    for (name, bytes, reason) in &cases {
        let file = sandbox.write(name, bytes);
        let out = sandbox.path(&format!("out-{name}"));
        let inspect = sandbox.host(&["inspect", s(&file)]);
        assert_refused(&inspect, 1, &[name, reason]);
        let run = sandbox.host(&["run", s(&file), "--input", s(&input), "--out", s(&out)]);
        assert_refused(&run, 1, &[name, reason]);
        assert!(!out.exists(), "{name}: an output directory was created");
        let publish = sandbox.host(&["publish", s(&file), "--name", "broken"]);
        assert_refused(&publish, 1, &[name, reason]);
    }
    assert!(
        sandbox.blobs().is_empty(),
        "refused components were stored: {:?}",
        sandbox.blobs()
    );
    let hooks = sandbox.host(&["hooks", "--json"]);
    assert_eq!(hooks.status.code(), Some(0), "{}", stderr(&hooks));
    let hooks: Value = serde_json::from_slice(&hooks.stdout).unwrap();
    assert_eq!(hooks, json!([]), "nothing was registered");
}

#[test]
fn a_component_over_the_size_cap_is_refused_before_it_is_read() {
    let sandbox = Sandbox::new();
    let big = sandbox.write("big.wasm", vec![0u8; 4096]);
    let publish = sandbox.host(&[
        "publish",
        s(&big),
        "--name",
        "big",
        "--max-component-size",
        "1KiB",
    ]);
    assert_refused(&publish, 1, &["big.wasm", "over the cap of 1024 bytes"]);
    assert!(sandbox.blobs().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------------

#[test]
fn every_bad_line_is_named_and_the_good_records_are_untouched() {
    let sandbox = Sandbox::new();
    let good =
        |id: &str, text: &str| format!("{}\n", json!({"id": id, "metadata": {"text": text}}));
    // (line bytes, the id the error names, what the error says)
    let long_line = format!(
        "{{\"id\":\"long\",\"metadata\":{{\"text\":\"{}\"}}}}\n",
        "w ".repeat(8 << 20)
    );
    let bad: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (b"this is not json\n".to_vec(), None, "not valid JSON"),
        (
            b"{\"id\": \"cut\", \"metadata\": {\n".to_vec(),
            None,
            "not valid JSON",
        ),
        (
            b"[\"an\", \"array\"]\n".to_vec(),
            None,
            "must be a JSON object, got an array",
        ),
        (
            b"\"a string\"\n".to_vec(),
            None,
            "must be a JSON object, got a string",
        ),
        (
            b"42\n".to_vec(),
            None,
            "must be a JSON object, got a number",
        ),
        (b"null\n".to_vec(), None, "must be a JSON object, got null"),
        (
            b"{\"metadata\": {\"text\": \"no id\"}}\n".to_vec(),
            None,
            "missing `id`",
        ),
        (
            b"{\"id\": 7}\n".to_vec(),
            None,
            "`id` must be a string, got a number",
        ),
        (b"{\"id\": null}\n".to_vec(), None, "missing `id`"),
        (
            b"{\"id\": {\"x\": 1}}\n".to_vec(),
            None,
            "`id` must be a string, got an object",
        ),
        (b"{\"id\": \"\"}\n".to_vec(), Some(""), "`id` is empty"),
        (
            b"{\"id\": \"g1\"}\n".to_vec(),
            Some("g1"),
            "duplicate id (first on line 1)",
        ),
        (
            b"{\"id\": \"../etc\"}\n".to_vec(),
            Some("../etc"),
            "may not contain `/`",
        ),
        (
            b"{\"id\": \"a/b\"}\n".to_vec(),
            Some("a/b"),
            "may not contain `/`",
        ),
        (
            b"{\"id\": \"a\\\\b\"}\n".to_vec(),
            Some("a\\b"),
            "may not contain `\\`",
        ),
        (
            b"{\"id\": \"..\"}\n".to_vec(),
            Some(".."),
            "may not contain `..`",
        ),
        (b"{\"id\": \".\"}\n".to_vec(), Some("."), "may not be `.`"),
        (
            b"{\"id\": \"nul\\u0000\"}\n".to_vec(),
            Some("nul\0"),
            "may not contain `NUL`",
        ),
        (
            b"{\"id\": \"x\", \"extra\": 1}\n".to_vec(),
            Some("x"),
            "unknown field `extra`",
        ),
        (
            b"{\"id\": \"neg\", \"size_hint_mb\": -1}\n".to_vec(),
            Some("neg"),
            "`size_hint_mb` must be a number",
        ),
        (
            b"{\"id\": \"str\", \"size_hint_mb\": \"1\"}\n".to_vec(),
            Some("str"),
            "`size_hint_mb` must be a number",
        ),
        (
            b"\xEF\xBB\xBF{\"id\": \"bom\"}\n".to_vec(),
            None,
            "byte-order mark",
        ),
        (
            b"{\"id\": \"latin1 \xe9\"}\n".to_vec(),
            None,
            "not valid UTF-8",
        ),
        (
            long_line.into_bytes(),
            None,
            "over the cap of 16777216 bytes",
        ),
    ];
    let mut clean = Vec::new();
    let mut mixed = Vec::new();
    let mut expected = Vec::new();
    let mut line = 0u64;
    let push_good = |mixed: &mut Vec<u8>, clean: &mut Vec<u8>, line: &mut u64, n: usize| {
        let text = good(&format!("g{n}"), &"word ".repeat(n + 1));
        mixed.extend_from_slice(text.as_bytes());
        clean.extend_from_slice(text.as_bytes());
        *line += 1;
    };
    for (n, (bytes, id, reason)) in bad.iter().enumerate() {
        push_good(&mut mixed, &mut clean, &mut line, n + 1);
        mixed.extend_from_slice(bytes);
        line += 1;
        expected.push((line, *id, *reason));
        if n % 5 == 0 {
            mixed.extend_from_slice(b"   \r\n"); // blank lines are skipped, but counted as lines
            line += 1;
        }
    }
    // Valid oddities: CRLF endings, and a last line without a newline.
    mixed.extend_from_slice(b"{\"id\":\"crlf\",\"metadata\":{\"text\":\"a b\"}}\r\n");
    clean.extend_from_slice(b"{\"id\":\"crlf\",\"metadata\":{\"text\":\"a b\"}}\r\n");
    mixed.extend_from_slice(b"{\"id\":\"last\",\"metadata\":{\"text\":\"z\"}}");
    clean.extend_from_slice(b"{\"id\":\"last\",\"metadata\":{\"text\":\"z\"}}");

    let text_stats = guest("text_stats");
    let run = |name: &str, bytes: &[u8]| -> PathBuf {
        let input = sandbox.write(&format!("{name}.jsonl"), bytes);
        let out = sandbox.path(name);
        let output = sandbox.host(&[
            "run",
            s(&text_stats),
            "--input",
            s(&input),
            "--out",
            s(&out),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        out
    };
    let clean_out = run("clean", &clean);
    let mixed_out = run("mixed", &mixed);

    assert!(lines(&clean_out, "errors.jsonl").is_empty());
    for file in ["features.jsonl", "rejections.jsonl"] {
        assert_eq!(
            lines(&mixed_out, file),
            lines(&clean_out, file),
            "{file}: the good records changed"
        );
    }
    let errors = lines(&mixed_out, "errors.jsonl");
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, (line, id, reason)) in errors.iter().zip(&expected) {
        assert_eq!(error["line"], *line, "{error}");
        assert_eq!(error["id"], json!(id), "{error}");
        assert_eq!(error["kind"], "invalid_input", "{error}");
        assert_eq!(error["retryable"], false, "{error}");
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(reason),
            "line {line}: `{reason}` not in `{message}`"
        );
    }
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(mixed_out.join("run.json")).unwrap())
            .unwrap();
    let good_count = bad.len() as u64 + 2;
    assert_eq!(
        record["records"],
        json!({"total": good_count + bad.len() as u64, "passed": good_count,
               "rejected": 0, "errored": bad.len()})
    );
    assert_eq!(record["input"]["bytes"], mixed.len());
}

// ---------------------------------------------------------------------------------------------
// Config, flags, files and directories
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_config_is_refused_before_anything_runs() {
    let sandbox = Sandbox::new();
    let hook = guest("require_fields");
    let input = sandbox.write("in.jsonl", "{\"id\":\"a\"}\n");
    let bad_file = sandbox.write("bad.json", "{\"required\": [");
    let missing = sandbox.path("missing.json");
    for (config, needles) in [
        ("{not json".to_owned(), vec!["config is not valid JSON"]),
        (
            format!("@{}", s(&bad_file)),
            vec!["config is not valid JSON"],
        ),
        (format!("@{}", s(&missing)), vec!["missing.json"]),
    ] {
        let out = sandbox.path("out");
        let output = sandbox.host(&[
            "run",
            s(&hook),
            "--input",
            s(&input),
            "--out",
            s(&out),
            "--config",
            &config,
        ]);
        assert_refused(&output, 1, &needles);
        assert!(!out.exists(), "{config}: an output directory was created");
    }
}

#[test]
fn invalid_size_duration_and_count_values_are_usage_errors_naming_the_value() {
    let sandbox = Sandbox::new();
    let hook = guest("text_stats");
    let cases: &[(&str, &str, &str)] = &[
        ("--memory", "", "invalid size"),
        ("--memory", "lots", "invalid size `lots`"),
        ("--memory", "0", "must be more than 0"),
        ("--memory", "5TiB", "unknown unit"),
        ("--memory", "1.5GiB", "unknown unit"),
        ("--memory", "-1MiB", "invalid size `-1MiB`"),
        ("--memory", "99999999999999999999GiB", "invalid size"),
        ("--memory-ceiling", "huge", "invalid size `huge`"),
        ("--timeout", "10", "missing unit"),
        ("--timeout", "0s", "must be more than 0"),
        ("--timeout", "-1s", "invalid duration `-1s`"),
        ("--timeout", "1fortnight", "unknown unit"),
        ("--timeout", "NaNs", "invalid duration `NaNs`"),
        ("--timeout", "1e400s", "invalid duration `1e400s`"),
        ("--timeout", "99999999999999999999h", "invalid duration"),
        ("--fuel", "abc", "abc"),
        ("--fuel", "-5", "-5"),
        ("--fuel", "0", "must be at least 1"),
        ("--fuel", "1e9", "1e9"),
        ("--fuel", "18446744073709551616", "18446744073709551616"),
        ("--max-oom-retries", "x", "x"),
        ("--chunk-size", "-1", "-1"),
    ];
    for (flag, value, needle) in cases {
        // `--flag=value`, so clap hands even a value starting with `-` to the flag's parser.
        let output = sandbox.host(&[
            "run",
            s(&hook),
            "--input",
            "in.jsonl",
            "--out",
            "out",
            &format!("{flag}={value}"),
        ]);
        assert_refused(&output, 2, &[flag, needle]);
    }
    // Written apart, a negative value is taken for a flag: still bad usage, naming it.
    let output = sandbox.host(&[
        "run",
        s(&hook),
        "--input",
        "in.jsonl",
        "--out",
        "out",
        "--timeout",
        "-1s",
    ]);
    assert_refused(&output, 2, &["-1"]);
    assert!(!sandbox.path("out").exists());
}

#[test]
fn a_zero_chunk_size_is_a_usage_error() {
    let sandbox = Sandbox::new();
    let output = sandbox.host(&[
        "run",
        s(&guest("text_stats")),
        "--input",
        "in.jsonl",
        "--out",
        "out",
        "--chunk-size",
        "0",
    ]);
    assert_refused(&output, 2, &["--chunk-size", "0"]);
}

#[test]
fn a_missing_unreadable_or_directory_input_is_named_and_nothing_is_written() {
    let sandbox = Sandbox::new();
    let hook = guest("text_stats");
    let missing = sandbox.path("missing.jsonl");
    let directory = sandbox.path("a-directory");
    std::fs::create_dir(&directory).unwrap();
    let mut cases = vec![
        (missing.clone(), "missing.jsonl"),
        (directory.clone(), "is a directory"),
    ];
    let locked = sandbox.write("locked.jsonl", "{\"id\":\"a\"}\n");
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    // Root reads anything, so the case only means something for other users.
    if std::fs::File::open(&locked).is_err() {
        cases.push((locked, "locked.jsonl"));
    } else {
        eprintln!("running as root: the unreadable-input case is skipped");
    }
    for (input, needle) in cases {
        let out = sandbox.path("out");
        let output = sandbox.host(&["run", s(&hook), "--input", s(&input), "--out", s(&out)]);
        assert_refused(&output, 1, &[needle]);
        assert!(
            !out.exists(),
            "{}: an output directory was created",
            input.display()
        );
        let leftovers: Vec<_> = std::fs::read_dir(sandbox.temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn an_output_directory_in_the_way_is_refused_and_left_as_it_was() {
    let sandbox = Sandbox::new();
    let hook = guest("text_stats");
    let input = sandbox.write("in.jsonl", "{\"id\":\"a\",\"metadata\":{\"text\":\"x\"}}\n");

    let full = sandbox.path("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "precious").unwrap();
    let a_file = sandbox.write("a-file", "not a directory");
    let under_file = a_file.join("out");
    let read_only = sandbox.path("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(
        &read_only,
        std::os::unix::fs::PermissionsExt::from_mode(0o555),
    )
    .unwrap();
    let mut cases = vec![
        (full.clone(), "already exists and is not empty"),
        (a_file.clone(), "already exists"),
        (under_file, "a-file"),
    ];
    if std::fs::write(read_only.join("probe"), "").is_err() {
        cases.push((read_only.join("out"), "read-only"));
    } else {
        eprintln!("running as root: the read-only-parent case is skipped");
    }
    for (out, needle) in cases {
        let output = sandbox.host(&["run", s(&hook), "--input", s(&input), "--out", s(&out)]);
        assert_refused(&output, 1, &[needle]);
    }
    assert_eq!(
        std::fs::read_to_string(full.join("keep.txt")).unwrap(),
        "precious"
    );
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(&a_file).unwrap(), "not a directory");
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
