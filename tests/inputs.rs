//! Bad input lines become `invalid_input` errors naming their line; nothing else is lost; an
//! output directory in the way is refused before anything runs; input is streamed.

mod common;

use common::{load, run};
use hookhost::Error;
use hookhost::run::{Input, RunRequest, run_to_dir};

#[test]
fn invalid_lines_are_reported_by_line_and_the_rest_still_run() {
    let input = concat!(
        "{\"id\":\"one\",\"metadata\":{\"text\":\"a b\"}}\n",
        "this is not json\n",
        "\n",
        "[\"an\",\"array\"]\n",
        "{\"metadata\":{\"text\":\"no id\"}}\n",
        "{\"id\":\"../etc\",\"metadata\":{}}\n",
        "{\"id\":\"one\",\"metadata\":{\"text\":\"dup\"}}\n",
        "{\"id\":\"two\",\"metadata\":{\"text\":\"c\"},\"extra\":1}\n",
        "{\"id\":\"three\",\"metadata\":{\"text\":\"d e f\"}}\n",
    );
    let ran = run(load("text_stats"), input);
    assert_eq!(ran.passed_ids(), ["one", "three"]);
    let errors: Vec<(Option<&str>, u64, &str)> = ran
        .errors
        .iter()
        .map(|e| {
            (
                e["id"].as_str(),
                e["line"].as_u64().unwrap(),
                e["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            (None, 2, "invalid_input"),
            (None, 4, "invalid_input"),
            (None, 5, "invalid_input"),
            (Some("../etc"), 6, "invalid_input"),
            (Some("one"), 7, "invalid_input"),
            (Some("two"), 8, "invalid_input"),
        ]
    );
    assert!(
        ran.errors[4]["error"]
            .as_str()
            .unwrap()
            .contains("duplicate id (first on line 1)")
    );
    assert!(
        ran.errors[5]["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `extra`")
    );
    let c = ran.record.records;
    assert_eq!((c.total, c.passed, c.rejected, c.errored), (8, 2, 0, 6));
    assert_eq!(c.passed + c.rejected + c.errored, c.total);
}

#[test]
fn an_output_directory_in_the_way_is_refused_and_left_alone() {
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("keep.txt"), "precious").unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"a\"}\n").unwrap();
    let request = RunRequest::new(load("text_stats"), Input::File(input.clone()), &out);
    match run_to_dir(request, &mut |_| {}) {
        Err(Error::OutputExists { path }) => assert_eq!(path, out),
        other => panic!("expected OutputExists, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(out.join("keep.txt")).unwrap(),
        "precious"
    );
    assert_eq!(
        std::fs::read_dir(temp.path()).unwrap().count(),
        2,
        "no staging left"
    );

    // An existing empty directory is fine to fill.
    let empty = temp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let request = RunRequest::new(load("text_stats"), Input::File(input), &empty);
    run_to_dir(request, &mut |_| {}).unwrap();
    assert!(empty.join("run.json").exists());
}

#[test]
fn a_missing_input_file_is_named() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nope.jsonl");
    let request = RunRequest::new(
        load("text_stats"),
        Input::File(missing.clone()),
        temp.path().join("out"),
    );
    match run_to_dir(request, &mut |_| {}) {
        Err(Error::Io { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(!temp.path().join("out").exists());
}

#[test]
fn invalid_config_json_is_refused_before_running() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\":\"a\"}\n").unwrap();
    let mut request = RunRequest::new(
        load("require_fields"),
        Input::File(input),
        temp.path().join("out"),
    );
    request.config = Some("{not json".into());
    assert!(matches!(
        run_to_dir(request, &mut |_| {}),
        Err(Error::InvalidConfig(_))
    ));
    assert!(!temp.path().join("out").exists());
}

#[test]
fn progress_is_reported_per_chunk() {
    let temp = tempfile::tempdir().unwrap();
    let input = temp.path().join("in.jsonl");
    let lines: String = (0..10)
        .map(|i| format!("{{\"id\":\"r{i}\",\"metadata\":{{\"text\":\"x\"}}}}\n"))
        .collect();
    std::fs::write(&input, lines).unwrap();
    let mut request = RunRequest::new(
        load("text_stats"),
        Input::File(input),
        temp.path().join("out"),
    );
    request.chunk_size = Some(4);
    let mut seen = Vec::new();
    run_to_dir(request, &mut |p| seen.push(p.counts.total)).unwrap();
    assert_eq!(seen, [4, 8, 10]);
}
