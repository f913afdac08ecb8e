//! The [`Hook`] trait and the [`export_hook!`](crate::export_hook) adapter behind it.

use std::any::Any;
use std::cell::RefCell;

use serde::de::{Deserialize, DeserializeOwned, Deserializer, IgnoredAny};

use crate::bindings::hookhost::hook::types::{Outcome, Record as WitRecord, RecordOutcome};
use crate::{Contract, Features, GuestError, Record, Refusal};

/// A hook: a config type, a row type, and a function from a record to rows or a refusal.
///
/// The host creates one instance per sandbox with [`new`](Self::new) and may rerun any record
/// on a fresh sandbox, so [`process`](Self::process) must depend only on the record and the
/// config. Export the hook from the component with [`export_hook!`](crate::export_hook); the
/// [crate docs](crate) have a complete example.
pub trait Hook: Sized + 'static {
    /// The feature row; its derived [`Features::contract`] is the hook's contract.
    type Row: Features;

    /// The release's config, parsed from its JSON text. Use [`NoConfig`] for none.
    type Config: DeserializeOwned;

    /// Builds the hook from its config. An `Err` fails the run with that message.
    fn new(config: Self::Config) -> Result<Self, String>;

    /// The record's rows (exactly one for cardinality `one`), or why there are none.
    fn process(&self, record: &Record) -> Result<Vec<Self::Row>, Refusal>;
}

/// The config of a hook that takes none: any config JSON is accepted and ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoConfig;

impl<'de> Deserialize<'de> for NoConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(NoConfig)
    }
}

/// Exports a [`Hook`] as the component's implementation of the `hook` world.
///
/// Invoke it once, in the hook crate (a `cdylib` built for `wasm32-wasip2`). It implements the
/// WIT exports: `contract` from the row's derived contract; `configure` by parsing the config
/// JSON into [`Hook::Config`] (a parse error fails with `invalid config: <what, where>`) and
/// calling [`Hook::new`]; `process` by calling [`Hook::process`] for each record in turn
/// (configuring with `{}` first if the host did not), announcing each record to the host first
/// (`begin-record`, so each record gets its own fuel and time) and naming each outcome by its
/// record's index.
#[macro_export]
macro_rules! export_hook {
    ($hook:ty) => {
        const _: () = {
            struct HookhostExport;

            impl $crate::__private::Guest for HookhostExport {
                fn contract() -> $crate::Contract {
                    $crate::__private::contract::<$hook>()
                }

                fn configure(
                    config: ::std::string::String,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::configure::<$hook>(&config)
                }

                fn process(
                    records: ::std::vec::Vec<$crate::__private::WitRecord>,
                ) -> ::std::vec::Vec<$crate::__private::RecordOutcome> {
                    $crate::__private::process::<$hook>(records)
                }
            }

    $crate::bindings::export_hook_bindings!(HookhostExport with_types_in $crate::bindings);
        };
    };
}

thread_local! {
    /// The configured hook. A component instance is single-threaded and exports one hook, so
    /// one untyped slot is enough; `process::<H>` downcasts it back to `H`.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// The contract export.
pub fn contract<H: Hook>() -> Contract {
    H::Row::contract()
}

/// The configure export: parse the config, build the hook, keep it for `process`.
pub fn configure<H: Hook>(config: &str) -> Result<(), String> {
    let config = crate::parse_json(config).map_err(|e| format!("invalid config: {e}"))?;
    let hook = H::new(config)?;
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(hook)));
    Ok(())
}

/// The process export: one outcome per record, each named by its index, each record
/// announced to the host before its work starts.
pub fn process<H: Hook>(records: Vec<WitRecord>) -> Vec<RecordOutcome> {
    let configured = INSTANCE.with(|slot| slot.borrow().is_some());
    if !configured && let Err(message) = configure::<H>("{}") {
        let error = GuestError::new(format!("hook is not configured: {message}"));
        return (0..records.len())
            .map(|index| named(index, Outcome::Errored(error.clone())))
            .collect();
    }
    INSTANCE.with(|slot| {
        let slot = slot.borrow();
        let hook: &H = slot
            .as_ref()
            .and_then(|hook| hook.downcast_ref())
            .expect("the slot holds the exported hook");
        records
            .into_iter()
            .enumerate()
            .map(|(index, record)| {
                begin_record(index);
                let outcome = match hook.process(&Record::from(record)) {
                    Ok(rows) => Outcome::Passed(rows.into_iter().map(Features::into_row).collect()),
                    Err(Refusal::Rejected(reason)) => Outcome::Rejected(reason),
                    Err(Refusal::Errored(error)) => Outcome::Errored(error),
                };
                named(index, outcome)
            })
            .collect()
    })
}

fn named(index: usize, outcome: Outcome) -> RecordOutcome {
    RecordOutcome {
        index: index as u32,
        outcome,
    }
}

/// Tells the host that record `index` starts, so it gets its own fuel and time. Only inside a
/// component: natively (in a hook's own tests) there is no host to tell.
fn begin_record(index: usize) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::hookhost::hook::host::begin_record(index as u32);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = index;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Value, reject};

    #[derive(crate::Features)]
    #[features(name = "echo", cardinality = "one")]
    struct Echo {
        n: i64,
    }

    #[derive(serde::Deserialize)]
    struct Config {
        required: Vec<String>,
    }

    struct EchoHook {
        offset: i64,
    }

    impl Hook for EchoHook {
        type Row = Echo;
        type Config = Config;

        fn new(config: Config) -> Result<Self, String> {
            if config.required.iter().any(String::is_empty) {
                return Err("required names must not be empty".into());
            }
            Ok(EchoHook {
                offset: config.required.len() as i64,
            })
        }

        fn process(&self, record: &Record) -> Result<Vec<Echo>, Refusal> {
            match record.id() {
                "reject" => Err(reject("no")),
                "error" => Err(GuestError::new("boom").retryable(true).into()),
                _ => Ok(vec![Echo {
                    n: record.metadata::<i64>()? + self.offset,
                }]),
            }
        }
    }

    fn wit_record(id: &str, metadata: &str) -> WitRecord {
        Record::new(id, metadata).0
    }

    #[test]
    fn config_errors_name_the_problem() {
        assert_eq!(
            configure::<EchoHook>(r#"{"required": 5}"#).unwrap_err(),
            "invalid config: required: invalid type: integer `5`, expected a sequence at line 1 column 14"
        );
        assert_eq!(
            configure::<EchoHook>(r#"{"required": ["a", 1]}"#).unwrap_err(),
            "invalid config: required[1]: invalid type: integer `1`, expected a string at line 1 column 20"
        );
        assert_eq!(
            configure::<EchoHook>("{}").unwrap_err(),
            "invalid config: missing field `required` at line 1 column 2"
        );
        assert_eq!(
            configure::<EchoHook>(r#"{"required": []} x"#).unwrap_err(),
            "invalid config: trailing characters at line 1 column 18"
        );
        assert_eq!(
            configure::<EchoHook>(r#"{"required": [""]}"#).unwrap_err(),
            "required names must not be empty"
        );
    }

    #[test]
    fn process_maps_each_record_to_its_outcome() {
        configure::<EchoHook>(r#"{"required": ["a", "b"]}"#).unwrap();
        let outcomes = process::<EchoHook>(vec![
            wit_record("ok", "40"),
            wit_record("reject", "0"),
            wit_record("error", "0"),
            wit_record("bad", r#""x""#),
        ]);
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .enumerate()
            .map(|(i, named)| {
                assert_eq!(named.index as usize, i);
                named.outcome
            })
            .collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Passed(vec![vec![Value::Integer(42)]]),
                Outcome::Rejected("no".into()),
                Outcome::Errored(GuestError {
                    message: "boom".into(),
                    retryable: true
                }),
                Outcome::Rejected(
                    "metadata: invalid type: string \"x\", expected i64 at line 1 column 3".into()
                ),
            ]
        );
    }

    #[test]
    fn process_before_configure_configures_with_an_empty_object() {
        INSTANCE.with(|slot| slot.take());
        let outcomes = process::<EchoHook>(vec![wit_record("ok", "1")]);
        assert_eq!(
            outcomes,
            [named(
                0,
                Outcome::Errored(GuestError::new(
                    "hook is not configured: invalid config: missing field `required` at line 1 column 2"
                ))
            )]
        );
    }

    #[test]
    fn no_config_accepts_any_json() {
        for json in ["{}", "null", r#"{"anything": [1, 2]}"#] {
            assert_eq!(crate::parse_json::<NoConfig>(json), Ok(NoConfig));
        }
    }
}
