//! The `host` binary: exit codes, one-line reasons, stdin input, `inspect`.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{guest, root};

/// The binary, with its registry root in a temporary directory shared by this file's tests
/// (every run is recorded there), never in the working directory.
fn host_command() -> Command {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().unwrap());
    let mut command = Command::new(env!("CARGO_BIN_EXE_host"));
    command.env("HOOKHOST_HOME", home.path().join("registry"));
    command
}

fn host(args: &[&str]) -> Output {
    host_command().args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_writes_the_output_directory_and_exits_zero() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    let samples = root().join("example-hooks/samples");
    let output = host(&[
        "run",
        guest("text_stats").to_str().unwrap(),
        "--input",
        samples.join("text.jsonl").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(": succeeded: 8 records: 7 passed"),
        "{stdout}"
    );
    for file in [
        "features.jsonl",
        "rejections.jsonl",
        "errors.jsonl",
        "logs.txt",
        "run.json",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
}

#[test]
fn run_reads_stdin_and_takes_config_from_a_file() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    let config = temp.path().join("config.json");
    std::fs::write(&config, r#"{"required": ["title"]}"#).unwrap();
    let mut child = host_command()
        .args([
            "run",
            guest("require_fields").to_str().unwrap(),
            "--input",
            "-",
        ])
        .args(["--out", out.to_str().unwrap(), "--config"])
        .arg(format!("@{}", config.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"{\"id\":\"a\",\"metadata\":{\"title\":\"t\"}}\n{\"id\":\"b\",\"metadata\":{}}\n",
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let features = std::fs::read_to_string(out.join("features.jsonl")).unwrap();
    assert!(
        features.contains("\"id\":\"a\"") && features.contains("\"checked\":1"),
        "{features}"
    );
    let rejections = std::fs::read_to_string(out.join("rejections.jsonl")).unwrap();
    assert!(
        rejections.contains("missing required fields: title"),
        "{rejections}"
    );
}

#[test]
fn a_non_component_exits_one_with_a_single_line_naming_the_file() {
    let temp = tempfile::tempdir().unwrap();
    let bogus = temp.path().join("bogus.wasm");
    std::fs::write(&bogus, wat::parse_str("(module)").unwrap()).unwrap();
    let output = host(&[
        "run",
        bogus.to_str().unwrap(),
        "--input",
        "whatever.jsonl",
        "--out",
        temp.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(
        message.contains("bogus.wasm") && message.contains("core WebAssembly module"),
        "{message}"
    );
}

#[test]
fn bad_flag_values_are_usage_errors_that_say_why() {
    let text_stats = guest("text_stats");
    for (flag, value, expect) in [
        ("--memory", "lots", "invalid size `lots`"),
        ("--timeout", "10", "missing unit"),
        ("--fuel", "0", "must be at least 1"),
        ("--max-oom-retries", "-1", "-1"),
    ] {
        let output = host(&[
            "run",
            text_stats.to_str().unwrap(),
            "--input",
            "x",
            "--out",
            "y",
            flag,
            value,
        ]);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        assert!(
            stderr(&output).contains(expect),
            "{flag}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_failed_run_exits_one_and_still_writes_its_record() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"a\"}\n").unwrap();
    let out = temp.path().join("out");
    let output = host(&[
        "run",
        guest("require_fields").to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        r#"{"required": 5}"#,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("refused its config"),
        "{}",
        stderr(&output)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "failed");
}

#[test]
fn inspect_prints_the_contract_as_text_and_json() {
    let path = guest("text_stats");
    let text = host(&["inspect", path.to_str().unwrap()]);
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("feature:      text_stats"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("longest_word") && l.contains("nullable")),
        "{text}"
    );

    let json = host(&["inspect", path.to_str().unwrap(), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(json["size"], bytes.len());
    assert_eq!(json["digest"], hookhost::digest::sha256_digest(&bytes));
    assert_eq!(json["contract"]["cardinality"], "one");
    assert_eq!(json["contract"]["columns"][2]["type"], "number");
}
