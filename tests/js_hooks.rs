//! JavaScript hooks on the host (issue 31): the JavaScript `text_stats` example and the
//! `loop_forever` fixture (`example-hooks/js/`), built from source with componentize-js by
//! `make -C example-hooks/js hooks` (npm packages pinned by its `package-lock.json`, installed
//! under `target/js-tools/`; components in `target/js-hooks/`), run through the `host` binary
//! like any component. `make test` builds them first; these tests run the same make target
//! again (it does nothing when they are up to date), so they also work alone, and fail saying
//! how to fix it when Node.js, npm or the build is missing: they never skip.
//!
//! A JavaScript component carries a whole engine (about 12 MB): compiling one takes about
//! 20 s of CPU, so the tests share one registry root under `target/` whose code cache keeps
//! each component compiled across runs (`make` rebuilds a component only when its source, the
//! WIT or the pinned tools change).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{Ran, guest, jsonl, root};
use hookhost::provenance::{Counts, RunStatus};
use serde_json::{Value, json};

/// The JavaScript components, by name, in `target/js-hooks/`.
const JS_HOOKS: [&str; 2] = ["text_stats", "loop_forever"];

/// Builds the JavaScript components (once per test binary) and returns their directory.
fn js_hooks() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let how = "`make -C example-hooks/js hooks` (which `make test` runs) needs GNU make, \
                   Node.js 20.19 or later and npm, and the npm registry reachable the first \
                   time (it installs example-hooks/js/package-lock.json's packages under \
                   target/js-tools)";
        // A make above us (make test) must not hand its jobserver or flags to this one.
        let output = Command::new("make")
            .arg("-C")
            .arg(root().join("example-hooks/js"))
            .arg("hooks")
            .env_remove("MAKEFLAGS")
            .env_remove("MFLAGS")
            .env_remove("MAKELEVEL")
            .output()
            .unwrap_or_else(|e| panic!("running make to build the JavaScript hooks: {e}: {how}"));
        assert!(
            output.status.success(),
            "building the JavaScript hooks failed; {how}. make said:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let dir = root().join("target/js-hooks");
        for name in JS_HOOKS {
            assert!(
                dir.join(format!("{name}.wasm")).exists(),
                "make did not build target/js-hooks/{name}.wasm: {how}"
            );
        }
        dir
    })
}

/// The path of JavaScript component `name`, built from source.
fn js(name: &str) -> PathBuf {
    js_hooks().join(format!("{name}.wasm"))
}

/// Makes the registry root every `host` command here uses (once per test binary): under
/// `target/`, kept between runs for its compiled-code cache. The first time, each component is
/// compiled into the cache by one `host inspect` at a time, so tests running at once never
/// compile the same one twice.
fn prepare_root() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        // A command never creates a root just to cache code: make the registry first.
        hookhost::registry::Registry::open(root_dir()).expect("creating the test registry root");
        let rust = guest("text_stats");
        for component in JS_HOOKS.map(js).iter().chain([&rust]) {
            let output = host(&["inspect", path_str(component)]);
            assert!(
                output.status.success(),
                "host inspect {}: {}",
                component.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    });
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

fn root_dir() -> PathBuf {
    root().join("target/hookhost-test-js-root")
}

/// Runs the `host` binary on the test root (see [`prepare_root`]).
fn host(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_host"))
        .arg("--root")
        .arg(root_dir())
        .args(args)
        .env_remove("HOOKHOST_REGISTRY")
        .output()
        .expect("running host")
}

/// `host run COMPONENT --input <input> --out <temp> ARGS…`, which must succeed.
fn host_run(component: &Path, input: &str, args: &[&str]) -> Ran {
    prepare_root();
    let temp = tempfile::tempdir().unwrap();
    let input_path = temp.path().join("input.jsonl");
    std::fs::write(&input_path, input).unwrap();
    let out = temp.path().join("out");
    let mut all = vec![
        "run",
        path_str(component),
        "--input",
        path_str(&input_path),
        "--out",
        path_str(&out),
    ];
    all.extend_from_slice(args);
    let output = host(&all);
    assert!(
        output.status.success(),
        "host {}: {}",
        all.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let record = std::fs::read_to_string(out.join("run.json")).unwrap();
    Ran::read(serde_json::from_str(&record).unwrap(), out, temp)
}

/// The content digest (without run ids) of output `file`, as `run.json` lists it.
fn content<'a>(ran: &'a Ran, file: &str) -> &'a str {
    &ran.record.outputs[file].content_sha256
}

fn ids(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["id"].as_str().unwrap()).collect()
}

#[test]
fn js_text_stats_gives_the_rust_text_stats_rows_on_the_samples() {
    let input = std::fs::read_to_string(root().join("example-hooks/samples/text.jsonl")).unwrap();
    let rust = host_run(&guest("text_stats"), &input, &[]);
    let js = host_run(&js("text_stats"), &input, &[]);
    assert_eq!(js.record.status, RunStatus::Succeeded);
    assert_eq!(
        js.record.records,
        Counts {
            total: 8,
            passed: 7,
            rejected: 1,
            errored: 0
        }
    );
    assert_eq!(js.record.records, rust.record.records);
    assert_eq!(
        js.record.contract_digest, rust.record.contract_digest,
        "one contract in both languages"
    );
    for file in ["features.jsonl", "rejections.jsonl", "errors.jsonl"] {
        assert_eq!(content(&js, file), content(&rust, file), "{file}");
    }
    assert_eq!(
        js.rows_of("unicode"),
        [
            &json!({"word_count": 5, "char_count": 23, "mean_word_length": 3.8,
                 "longest_word": "ünïcödé"})
        ]
    );
    // An engine's sandbox is heavy (an initial memory of about 9 MiB): the samples go in one
    // call of up to 256 records, as a Python hook's do.
    assert_eq!(js.record.chunk_size, hookhost::limits::HEAVY_CHUNK_SIZE);
    assert_eq!(js.record.calls, 1);
}

/// Where JavaScript strings are not Rust's: UTF-16 units against scalar values (astral
/// characters), `\s` against Unicode's White_Space (U+0085, U+FEFF, U+001C), lone surrogate
/// escapes that JSON.parse accepts and serde_json refuses; and metadata that is no object.
#[test]
fn js_text_stats_counts_like_rust_where_javascript_strings_differ() {
    let input = jsonl(&[
        ("astral", json!({"text": "😀😀😀 a 𝒳𝒴"})),
        ("next-line", json!({"text": "a\u{85}b"})),
        ("byte-order-mark", json!({"text": "a\u{feff}b"})),
        ("unit-separators", json!({"text": "a\u{1c}b\u{1f}c"})),
        (
            "spaces",
            json!({"text": "東京\u{3000}大阪\u{2003}x\u{a0}y\u{202f}z\u{2028}w\u{1680}v"}),
        ),
        ("combining", json!({"text": "e\u{301}te\u{301}"})),
        ("ties", json!({"text": "abc xyz ab"})),
        ("long", json!({"text": "word ".repeat(5000)})),
        ("array", json!([1])),
        ("null", json!(null)),
        ("string", json!("text")),
        ("number", json!({"text": 5})),
        ("nested", json!({"text": {"text": "x"}})),
    ]) + "{\"id\": \"lone-surrogate\", \"metadata\": {\"text\": \"a\\ud800b\"}}\n";
    let rust = host_run(&guest("text_stats"), &input, &[]);
    let js = host_run(&js("text_stats"), &input, &[]);
    assert_eq!(js.record.records, rust.record.records);
    assert_eq!(js.record.records.passed, 8);
    assert_eq!(
        content(&js, "features.jsonl"),
        content(&rust, "features.jsonl")
    );
    assert_eq!(
        js.rows_of("astral"),
        [
            &json!({"word_count": 3, "char_count": 8, "mean_word_length": 2.0,
                 "longest_word": "😀😀😀"})
        ]
    );
    assert_eq!(ids(&js.rejections), ids(&rust.rejections));
    for rejection in &js.rejections {
        let reason = rejection["reason"].as_str().unwrap();
        match rejection["id"].as_str().unwrap() {
            // serde_json's own words in Rust; the same refusal in JavaScript.
            "lone-surrogate" => assert_eq!(
                reason,
                "metadata: not valid JSON: a string holds a lone surrogate escape"
            ),
            _ => assert_eq!(reason, "metadata.text must be a string"),
        }
    }
    assert!(js.errors.is_empty(), "{:?}", js.errors);
}

#[test]
fn a_js_record_that_loops_is_stopped_and_its_batch_mates_keep_their_rows() {
    // Enough fuel for an engine's first record in a fresh sandbox (about 1 million), little
    // enough that the loop is stopped in well under a second.
    let fuel = ["--fuel", "50000000"];
    let clean = [("a", json!({})), ("b", json!({})), ("c", json!({}))];
    let alone = host_run(&js("loop_forever"), &jsonl(&clean), &fuel);
    assert_eq!(alone.record.records.passed, 3, "{:?}", alone.errors);
    let mixed = host_run(
        &js("loop_forever"),
        &jsonl(&[
            clean[0].clone(),
            ("bad", json!({"loop": true})),
            clean[1].clone(),
            clean[2].clone(),
        ]),
        &fuel,
    );
    assert_eq!(
        mixed.record.records,
        Counts {
            total: 4,
            passed: 3,
            rejected: 0,
            errored: 1
        }
    );
    assert_eq!(
        content(&mixed, "features.jsonl"),
        content(&alone, "features.jsonl"),
        "batch-mates keep exactly their rows"
    );
    assert_eq!(mixed.passed_ids(), ["a", "b", "c"]);
    let error = mixed.error_of("bad");
    let kind = error["kind"].as_str().unwrap();
    assert!(["fuel_exhausted", "timeout"].contains(&kind), "{error}");
    assert_eq!(error["line"], 2);
    assert_eq!(
        error["retryable"],
        kind == "timeout",
        "only a timeout may be retried"
    );
    let message = error["error"].as_str().unwrap();
    assert!(!message.contains('\n'), "a one-line message: {message}");
}
