//! The example hooks compute the right features, and `run.json` describes the files exactly.

mod common;

use common::{jsonl, load, root, run, run_with};
use hookhost::provenance::RunStatus;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[test]
fn text_stats_computes_known_features() {
    let ran = run(
        load("text_stats"),
        &jsonl(&[
            ("pangram", json!({"text": "the quick brown fox"})),
            ("unicode", json!({"text": "  héllo   wörld!  "})),
            ("empty", json!({"text": ""})),
            ("ties", json!({"text": "abc xyz ab"})),
        ]),
    );
    assert_eq!(ran.record.status, RunStatus::Succeeded);
    assert_eq!(
        ran.rows_of("pangram"),
        [
            &json!({"word_count": 4, "char_count": 19, "mean_word_length": 4.0, "longest_word": "quick"})
        ]
    );
    assert_eq!(
        ran.rows_of("unicode"),
        [
            &json!({"word_count": 2, "char_count": 18, "mean_word_length": 5.5, "longest_word": "wörld!"})
        ]
    );
    assert_eq!(
        ran.rows_of("empty"),
        [&json!({"word_count": 0, "char_count": 0, "mean_word_length": 0.0, "longest_word": null})]
    );
    assert_eq!(
        ran.rows_of("ties")[0]["longest_word"],
        "abc",
        "the first longest word wins"
    );
}

#[test]
fn text_stats_rejects_records_without_text() {
    let ran = run(
        load("text_stats"),
        &jsonl(&[
            ("number", json!({"text": 5})),
            ("missing", json!({})),
            ("fine", json!({"text": "ok"})),
        ]),
    );
    assert_eq!(ran.rejections.len(), 2);
    for rejection in &ran.rejections {
        assert_eq!(rejection["reason"], "metadata.text must be a string");
        assert_eq!(rejection["run_id"], ran.record.run_id.as_str());
    }
    assert_eq!(ran.passed_ids(), ["fine"]);
    assert_eq!(ran.record.records.rejected, 2);
}

#[test]
fn require_fields_follows_its_config() {
    let input = jsonl(&[
        ("all", json!({"a": 1, "b": null, "c": 3})),
        ("lacks-b", json!({"a": 1})),
        ("lacks-both", json!({"c": 1})),
        ("not-object", json!([1, 2])),
    ]);
    let ran = run_with(load("require_fields"), &input, |r| {
        r.config = Some(r#"{"required": ["a", "b"]}"#.into());
    });
    assert_eq!(ran.rows_of("all"), [&json!({"checked": 2})]);
    let reasons: Vec<(&str, &str)> = ran
        .rejections
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("lacks-b", "missing required fields: b"),
            ("lacks-both", "missing required fields: a, b"),
            ("not-object", "metadata must be an object"),
        ]
    );
}

#[test]
fn a_config_the_hook_refuses_fails_the_run_with_its_reason() {
    let ran = run_with(load("require_fields"), &jsonl(&[("x", json!({}))]), |r| {
        r.config = Some(r#"{"required": "a"}"#.into());
    });
    assert_eq!(ran.record.status, RunStatus::Failed);
    let error = ran.record.error.as_deref().unwrap();
    assert!(
        error.contains("refused its config") && error.contains("required"),
        "{error}"
    );
    assert_eq!(ran.record.records.total, 0);
}

#[test]
fn file_profile_reads_each_records_files_read_only() {
    let files = tempfile::tempdir().unwrap();
    let doc = files.path().join("doc-1");
    std::fs::create_dir(&doc).unwrap();
    std::fs::write(doc.join("a.txt"), "one\ntwo\n").unwrap();
    std::fs::write(doc.join("b.csv"), "x,y\n1,2").unwrap();
    std::fs::write(doc.join("empty"), "").unwrap();
    std::fs::create_dir(doc.join("subdir")).unwrap();
    // A record directory that is a symlink out of the files root is not followed.
    std::os::unix::fs::symlink("/etc", files.path().join("escape")).unwrap();
    let input = jsonl(&[
        ("doc-1", json!({})),
        ("no-files", json!({})),
        ("escape", json!({})),
    ]);
    let ran = run_with(load("file_profile"), &input, |r| {
        r.files = Some(files.path().into())
    });
    let sha = |s: &str| format!("{:x}", Sha256::digest(s.as_bytes()));
    assert_eq!(
        ran.rows_of("doc-1"),
        [
            &json!({"name": "a.txt", "bytes": 8, "sha256": sha("one\ntwo\n"), "lines": 2}),
            &json!({"name": "b.csv", "bytes": 7, "sha256": sha("x,y\n1,2"), "lines": 2}),
            &json!({"name": "empty", "bytes": 0, "sha256": sha(""), "lines": 0}),
        ]
    );
    assert!(ran.rows_of("no-files").is_empty());
    assert!(
        ran.rows_of("escape").is_empty(),
        "a symlinked record dir must not be followed"
    );
    assert_eq!(ran.record.records.passed, 3);
}

#[test]
fn the_sandbox_grants_nothing_and_repeats_exactly() {
    let input = jsonl(&[
        ("env", json!({"action": "env"})),
        ("clock", json!({"action": "clock"})),
        ("random", json!({"action": "random"})),
        ("read", json!({"action": "read", "path": "/etc/passwd"})),
        ("write", json!({"action": "write"})),
    ]);
    let first = run(load("chaos"), &input);
    let second = run(load("chaos"), &input);
    assert_eq!(first.rows_of("env"), [&json!({"value": 0, "note": ""})]);
    assert_eq!(
        first.rows_of("clock")[0]["value"],
        946_684_800,
        "the wall clock is fixed"
    );
    assert_eq!(
        first.rows_of("clock")[0]["note"],
        "0",
        "the monotonic clock does not move"
    );
    assert_eq!(
        first.rows_of("read")[0]["value"],
        0,
        "no host file is readable"
    );
    assert_eq!(first.rows_of("write")[0]["value"], 0, "nothing is writable");
    let without_run_id = |ran: &common::Ran| -> Vec<Value> {
        ran.features
            .iter()
            .map(|r| json!([r["id"], r["features"]]))
            .collect()
    };
    assert_eq!(without_run_id(&first), without_run_id(&second));
    assert_ne!(first.record.run_id, second.record.run_id);
}

#[test]
fn two_runs_of_the_same_input_give_identical_features() {
    let input = std::fs::read_to_string(root().join("example-hooks/samples/text.jsonl")).unwrap();
    let a = run(load("text_stats"), &input);
    let b = run(load("text_stats"), &input);
    let strip = |ran: &common::Ran| -> String {
        std::fs::read_to_string(ran.dir.join("features.jsonl"))
            .unwrap()
            .replace(&ran.record.run_id, "RUN")
    };
    assert!(!a.features.is_empty());
    assert_eq!(strip(&a), strip(&b));
    assert_eq!(a.record.input, b.record.input);
    assert_eq!(a.record.config_digest, b.record.config_digest);
}

#[test]
fn run_json_describes_the_files_exactly() {
    let input = format!(
        "{}\nnot json\n\n{}",
        jsonl(&[("a", json!({"text": "x y"})), ("b", json!({}))]).trim_end(),
        jsonl(&[("c", json!({"text": "z"}))])
    );
    let ran = run(load("text_stats"), &input);
    let record = &ran.record;
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(ran.dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(on_disk, serde_json::to_value(record).unwrap());
    assert_eq!(
        record.records,
        hookhost::provenance::Counts {
            total: 4,
            passed: 2,
            rejected: 1,
            errored: 1
        }
    );
    assert_eq!(record.input.bytes, input.len() as u64);
    assert_eq!(
        record.input.sha256,
        format!("{:x}", Sha256::digest(input.as_bytes()))
    );
    assert_eq!(record.input.records, 4);
    assert_eq!(record.hook.digest, load("text_stats").digest());
    assert_eq!(
        record.contract_digest,
        load("text_stats").contract().digest()
    );
    let names: Vec<&str> = record.outputs.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "errors.jsonl",
            "features.jsonl",
            "logs.txt",
            "rejections.jsonl"
        ]
    );
    for (name, output) in &record.outputs {
        let bytes = std::fs::read(ran.dir.join(name)).unwrap();
        assert_eq!(output.bytes, bytes.len() as u64, "{name}");
        assert_eq!(
            output.sha256,
            format!("{:x}", Sha256::digest(&bytes)),
            "{name}"
        );
        assert_eq!(
            output.rows,
            bytes.iter().filter(|&&b| b == b'\n').count() as u64
        );
    }
    assert_eq!(record.outputs["features.jsonl"].rows, 2);
    assert_eq!(record.host.wasmtime.split('.').next(), Some("48"));
    assert!(record.host.engine.starts_with("sha256:"));
    assert!(record.fuel_consumed > 0 && record.peak_memory_bytes > 0);
    // Nothing but the finished directory is left beside it.
    let siblings: Vec<_> = std::fs::read_dir(ran.dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(siblings.is_empty(), "staging left behind: {siblings:?}");
}

#[test]
fn a_cardinality_many_hook_may_pass_with_zero_rows() {
    let ran = run(load("file_profile"), &jsonl(&[("lonely", json!({}))]));
    assert_eq!(ran.record.records.passed, 1);
    assert!(ran.features.is_empty());
}

#[test]
fn a_symlink_inside_a_records_files_cannot_lead_out() {
    let files = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let doc = files.path().join("doc");
    std::fs::create_dir(&doc).unwrap();
    std::fs::write(doc.join("own.txt"), "mine").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), doc.join("link.txt")).unwrap();
    let input = jsonl(&[
        (
            "doc",
            json!({"action": "read", "path": "/files/doc/own.txt"}),
        ),
        (
            "via-link",
            json!({"action": "read", "path": "/files/doc/link.txt"}),
        ),
        (
            "dotdot",
            json!({"action": "read", "path": "/files/doc/../../etc/passwd"}),
        ),
    ]);
    let ran = run_with(load("chaos"), &input, |r| {
        r.files = Some(files.path().into());
        r.chunk_size = Some(1);
    });
    assert_eq!(ran.rows_of("doc"), [&json!({"value": 1, "note": "mine"})]);
    // Records without a directory of their own see no files at all.
    assert_eq!(ran.rows_of("via-link")[0]["value"], 0);
    assert_eq!(ran.rows_of("dotdot")[0]["value"], 0);
    // And the record that owns the link cannot follow it out either.
    let linked = run_with(
        load("chaos"),
        &jsonl(&[(
            "doc",
            json!({"action": "read", "path": "/files/doc/link.txt"}),
        )]),
        |r| r.files = Some(files.path().into()),
    );
    assert_eq!(
        linked.rows_of("doc")[0]["value"],
        0,
        "{:?}",
        linked.rows_of("doc")
    );
    let dotdot = run_with(
        load("chaos"),
        &jsonl(&[(
            "doc",
            json!({"action": "read", "path": "/files/doc/../doc/own.txt"}),
        )]),
        |r| r.files = Some(files.path().into()),
    );
    // `..` through the directory's root is refused outright, even when it would come back.
    assert_eq!(dotdot.rows_of("doc")[0]["value"], 0);
}
