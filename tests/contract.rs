//! Contracts: derived by the SDK, enforced on every row, and components that do not implement
//! the hook world are refused at load with a reason.

mod common;

use common::{host, jsonl, load, run};
use hookhost::Error;
use hookhost::contract::{Cardinality, ColumnType};
use serde_json::json;

#[test]
fn the_sdk_derives_the_contract_from_the_row_struct() {
    let hook = load("text_stats");
    let contract = hook.contract();
    assert_eq!(contract.feature, "text_stats");
    assert_eq!(contract.cardinality, Cardinality::One);
    let columns: Vec<(&str, ColumnType, bool)> = contract
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.ty, c.nullable))
        .collect();
    assert_eq!(
        columns,
        [
            ("word_count", ColumnType::Integer, false),
            ("char_count", ColumnType::Integer, false),
            ("mean_word_length", ColumnType::Number, false),
            ("longest_word", ColumnType::Text, true),
        ]
    );
    assert!(
        contract.columns.iter().all(|c| c.description.is_some()),
        "doc comments describe columns"
    );
    assert_eq!(
        load("file_profile").contract().cardinality,
        Cardinality::Many
    );
    assert!(hook.digest().starts_with("sha256:") && hook.size() > 0);
}

#[test]
fn rows_that_break_the_contract_error_with_the_column_named() {
    let cases = [
        (
            "wrong_type",
            "row 0, column `a`: expected integer, got text",
        ),
        (
            "wrong_arity",
            "row 0: expected 3 values (one per column), got 1",
        ),
        (
            "null_required",
            "row 0, column `a`: null in a required column",
        ),
        (
            "two_rows",
            "cardinality `one` needs exactly 1 row per passed record, got 2",
        ),
        (
            "zero_rows",
            "cardinality `one` needs exactly 1 row per passed record, got 0",
        ),
        ("nan", "row 0, column `c`: NaN is not a finite number"),
    ];
    let mut records: Vec<(&str, serde_json::Value)> = vec![("good-1", json!({}))];
    records.extend(cases.iter().map(|(emit, _)| (*emit, json!({"emit": emit}))));
    records.push(("good-2", json!({"emit": "good"})));
    let ran = run(load("contract_breaker"), &jsonl(&records));
    assert_eq!(ran.passed_ids(), ["good-1", "good-2"]);
    for (id, message) in cases {
        let error = ran.error_of(id);
        assert_eq!(error["kind"], "contract_violation", "{id}");
        assert_eq!(error["error"], message, "{id}");
    }
}

#[test]
fn oversized_rows_error_as_output_too_large() {
    let input = jsonl(&[
        ("huge", json!({"emit": "huge", "bytes": 20_000_000})),
        ("fine", json!({"emit": "huge", "bytes": 1000})),
    ]);
    let ran = run(load("contract_breaker"), &input);
    assert_eq!(ran.error_of("huge")["kind"], "output_too_large");
    assert_eq!(ran.rows_of("fine")[0]["b"].as_str().unwrap().len(), 1000);
}

#[test]
fn a_wrong_number_of_outcomes_is_a_contract_violation() {
    for emit in ["extra_outcome", "missing_outcome"] {
        let ran = run(
            load("contract_breaker"),
            &jsonl(&[("odd", json!({"emit": emit})), ("ok", json!({}))]),
        );
        assert_eq!(ran.passed_ids(), ["ok"], "{emit}");
        let error = ran.error_of("odd");
        assert_eq!(error["kind"], "contract_violation");
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("outcomes for 1 record"),
            "{error}"
        );
    }
}

fn refusal(bytes: &[u8]) -> String {
    match host().load_bytes(bytes, "test.wasm") {
        Err(Error::InvalidComponent { origin, reason }) => {
            assert_eq!(origin, "test.wasm");
            reason
        }
        other => panic!("expected InvalidComponent, got {other:?}"),
    }
}

#[test]
fn things_that_are_not_hook_components_are_refused_with_a_reason() {
    assert_eq!(refusal(b""), "the file is empty");
    assert!(refusal(b"#!/bin/sh\necho hi\n").contains("not WebAssembly"));
    let core = wat::parse_str("(module (func (export \"process\")))").unwrap();
    assert!(refusal(&core).contains("core WebAssembly module"));
    let mut truncated = std::fs::read(common::guest("text_stats")).unwrap();
    truncated.truncate(truncated.len() / 2);
    assert!(!refusal(&truncated).is_empty());
    let empty_component = wat::parse_str("(component)").unwrap();
    let reason = refusal(&empty_component);
    assert!(
        reason.contains("does not implement the hook world"),
        "{reason}"
    );
}

#[test]
fn a_component_importing_what_the_host_lacks_is_refused_naming_the_import() {
    let component = wat::parse_str(
        r#"(component
             (import "acme:secrets/vault" (instance (export "get" (func (param "k" string) (result string))))))"#,
    )
    .unwrap();
    let reason = refusal(&component);
    assert!(reason.contains("acme:secrets/vault"), "{reason}");
}

#[test]
fn the_size_cap_is_enforced_before_reading() {
    let small_host = hookhost::Host::new(hookhost::HostConfig {
        max_component_bytes: 1024,
        ..Default::default()
    })
    .unwrap();
    match small_host.load_file(&common::guest("text_stats")) {
        Err(Error::InvalidComponent { reason, .. }) => {
            assert!(reason.contains("over the cap of 1024 bytes"), "{reason}")
        }
        other => panic!("expected a size refusal, got {other:?}"),
    }
}

/// Issue 13: a component built against `hookhost:hook@0.1.0` (the fixture `hook-0-1`, from its
/// own copy of the old WIT) is refused at load, naming the version it implements and the one
/// the host needs, rather than with a generic link error.
#[test]
fn a_component_built_against_0_1_0_is_refused_naming_both_versions() {
    let bytes = std::fs::read(common::guest("hook_0_1")).unwrap();
    let reason = refusal(&bytes);
    assert!(
        reason.starts_with(
            "it implements hookhost:hook@0.1.0, but this host needs hookhost:hook@0.2.0"
        ),
        "{reason}"
    );
    assert_eq!(hookhost::component::HOOK_WORLD_VERSION, "0.2.0");
}
