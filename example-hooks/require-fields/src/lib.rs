//! `require_fields`: rejects records whose metadata lacks any of the configured fields.
//!
//! Shows a config-driven hook: the release's config JSON, `{"required": ["a", "b"]}`, is parsed
//! into [`Config`] before any record (a malformed config fails the run, naming the bad field),
//! and every record is checked against it. Run it on the samples:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path example-hooks/Cargo.toml --workspace
//! host run example-hooks/target/wasm32-wasip2/release/require_fields.wasm \
//!     --config @example-hooks/samples/require-config.json \
//!     --input example-hooks/samples/require.jsonl --out /tmp/out
//! ```

use hookhost_sdk::{Features, Hook, Record, Refusal, export_hook, reject};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The result of a passed check.
#[derive(Debug, PartialEq, Features)]
#[features(name = "require_fields", cardinality = "one")]
pub struct Checked {
    /// Number of required fields checked (all present).
    checked: i64,
}

/// The hook's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Top-level metadata fields every record must have.
    required: Vec<String>,
}

/// The hook: the configured field names.
pub struct RequireFields {
    required: Vec<String>,
}

impl Hook for RequireFields {
    type Row = Checked;
    type Config = Config;

    fn new(config: Config) -> Result<Self, String> {
        Ok(RequireFields {
            required: config.required,
        })
    }

    fn process(&self, record: &Record) -> Result<Vec<Checked>, Refusal> {
        let metadata: Value = record.metadata()?;
        let Some(fields) = metadata.as_object() else {
            return Err(reject("metadata must be an object"));
        };
        let missing = self.missing(fields);
        if !missing.is_empty() {
            return Err(reject(format!(
                "missing required fields: {}",
                missing.join(", ")
            )));
        }
        Ok(vec![Checked {
            checked: self.required.len() as i64,
        }])
    }
}

impl RequireFields {
    /// The required fields `fields` lacks, in config order.
    fn missing(&self, fields: &Map<String, Value>) -> Vec<&str> {
        self.required
            .iter()
            .filter(|name| !fields.contains_key(name.as_str()))
            .map(String::as_str)
            .collect()
    }
}

export_hook!(RequireFields);

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> RequireFields {
        RequireFields::new(Config {
            required: vec!["a".into(), "b".into(), "c".into()],
        })
        .unwrap()
    }

    #[test]
    fn passes_when_all_fields_are_present() {
        let record = Record::new("r", r#"{"c": null, "b": 2, "a": 1, "d": 4}"#);
        assert_eq!(hook().process(&record), Ok(vec![Checked { checked: 3 }]));
    }

    #[test]
    fn names_the_missing_fields_in_config_order() {
        let record = Record::new("r", r#"{"b": 2}"#);
        assert_eq!(
            hook().process(&record),
            Err(reject("missing required fields: a, c"))
        );
        assert_eq!(
            hook().process(&Record::new("r", "[1]")),
            Err(reject("metadata must be an object"))
        );
    }
}
