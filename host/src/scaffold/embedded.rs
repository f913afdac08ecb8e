//! What the host supplies to hook projects, compiled into it: the WIT, the Rust and Python
//! SDKs' sources, and the templates of `host new`.

/// The hook interface, `wit/hook.wit`.
pub const WIT: &str = include_str!("../../../wit/hook.wit");

/// A file of the Rust SDK, by its path under `.hookhost/`.
macro_rules! sdk_file {
    ($path:literal) => {
        ($path, include_str!(concat!("../../../", $path)))
    };
}

/// The Rust SDK's sources (`sdk/`), and manifests that build them outside this repository.
const RUST_SDK: &[(&str, &str)] = &[
    sdk_file!("sdk/src/lib.rs"),
    sdk_file!("sdk/src/features.rs"),
    sdk_file!("sdk/src/hook.rs"),
    sdk_file!("sdk/src/record.rs"),
    sdk_file!("sdk/src/refusal.rs"),
    sdk_file!("sdk/macros/src/lib.rs"),
];

const RUST_SDK_MANIFEST: &str = r#"# Written by `host build` from the host's own copy of the Rust SDK.
[package]
name = "hookhost-sdk"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
hookhost-sdk-macros = { path = "macros" }
serde = "1"
serde_json = "1"
serde_path_to_error = "0.1"
wit-bindgen = { version = "0.60", default-features = false, features = ["macros", "realloc"] }
"#;

const RUST_MACROS_MANIFEST: &str = r#"# Written by `host build` from the host's own copy of the Rust SDK.
[package]
name = "hookhost-sdk-macros"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
proc-macro = true

[dependencies]
proc-macro2 = "1"
quote = "1"
syn = { version = "2", features = ["full"] }
"#;

/// The Python SDK's sources (`sdk/python/src/hookhost/`).
const PYTHON_SDK: &[(&str, &str)] = &[
    sdk_file!("sdk/python/src/hookhost/__init__.py"),
    sdk_file!("sdk/python/src/hookhost/__main__.py"),
    sdk_file!("sdk/python/src/hookhost/_build.py"),
    sdk_file!("sdk/python/src/hookhost/_component.py"),
    sdk_file!("sdk/python/src/hookhost/_contract.py"),
    sdk_file!("sdk/python/src/hookhost/_hook.py"),
    sdk_file!("sdk/python/src/hookhost/_outcome.py"),
    sdk_file!("sdk/python/src/hookhost/_parse.py"),
    sdk_file!("sdk/python/src/hookhost/_record.py"),
    sdk_file!("sdk/python/src/hookhost/_values.py"),
];

/// The Rust SDK as a project's `.hookhost/` holds it: `(path, text)`.
pub fn rust_sdk() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = RUST_SDK
        .iter()
        .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
        .collect();
    files.push(("sdk/Cargo.toml".into(), RUST_SDK_MANIFEST.into()));
    files.push(("sdk/macros/Cargo.toml".into(), RUST_MACROS_MANIFEST.into()));
    files
}

/// The Python SDK as a project's `.hookhost/` holds it: `(path, text)`.
pub fn python_sdk() -> Vec<(String, String)> {
    PYTHON_SDK
        .iter()
        .map(|(path, text)| {
            let name = path.rsplit('/').next().expect("a file name");
            (format!("python/hookhost/{name}"), (*text).to_owned())
        })
        .collect()
}

/// The sample batch of a new project: two texts and a record the sample hook rejects.
const SAMPLE: &str = r#"{"id": "doc-1", "metadata": {"text": "The spice must flow."}}
{"id": "doc-2", "metadata": {"text": "A desert planet, and a boy who would rule it."}}
{"id": "doc-3", "metadata": {"title": "no text here"}}
"#;

const GITIGNORE: &str = "target/\n*.wasm\n";

/// A new Rust project of hook `name`: `(path, text)`.
pub fn rust_template(name: &str) -> Vec<(String, String)> {
    let manifest = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

# A hook is a cdylib: for wasm32-wasip2 it links into a component.
[lib]
crate-type = ["cdylib"]

[dependencies]
# Written into .hookhost/ by `host build` (and `host new`), from the host that builds it.
hookhost-sdk = {{ path = ".hookhost/sdk" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

# Its own workspace: a project made inside another cargo workspace is not claimed by it.
[workspace]

# Fast components: hooks run once per record (opt-level 3 against "s": benches/README.md).
[profile.release]
opt-level = 3
panic = "abort"
strip = "debuginfo"
codegen-units = 1
lto = true
"#
    );
    let lib = format!(
        r#"//! `{name}`: the word statistics of `metadata.text`, one row per record.
//!
//! Build it with `host build`, try it with
//! `host run {name}.wasm --input sample.jsonl --out out`.

use hookhost_sdk::{{Features, Hook, NoConfig, Record, Refusal, export_hook, reject}};

/// One row per record.
#[derive(Features)]
#[features(name = "{name}", cardinality = "one")]
pub struct Row {{
    /// Number of whitespace-separated words.
    word_count: i64,
    /// The first longest word; null without words.
    longest_word: Option<String>,
}}

/// The hook: a record in, its row (or a rejection) out.
pub struct ThisHook;

impl Hook for ThisHook {{
    type Row = Row;
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, String> {{
        Ok(ThisHook)
    }}

    fn process(&self, record: &Record) -> Result<Vec<Row>, Refusal> {{
        let metadata: serde_json::Value = record.metadata()?;
        let Some(text) = metadata["text"].as_str() else {{
            return Err(reject("metadata.text must be a string"));
        }};
        let words: Vec<&str> = text.split_whitespace().collect();
        let longest = words.iter().copied().rev().max_by_key(|w| w.chars().count());
        Ok(vec![Row {{
            word_count: words.len() as i64,
            longest_word: longest.map(str::to_owned),
        }}])
    }}
}}

export_hook!(ThisHook);
"#
    );
    vec![
        ("Cargo.toml".into(), manifest),
        ("src/lib.rs".into(), lib),
        (super::SAMPLE_FILE.into(), SAMPLE.into()),
        (".gitignore".into(), GITIGNORE.into()),
    ]
}

/// A new Python project of hook `name`: `(path, text)`.
pub fn python_template(name: &str) -> Vec<(String, String)> {
    let app = format!(
        r#""""`{name}`: the word statistics of ``metadata.text``, one row per record.

Build it with ``host build``, try it with
``host run {name}.wasm --input sample.jsonl --out out``.
"""

from typing import Annotated

import hookhost


@hookhost.features(name="{name}", cardinality="one")
class Row:
    word_count: Annotated[int, "Number of whitespace-separated words."]
    longest_word: Annotated[str | None, "The first longest word; null without words."]


@hookhost.hook
def process(record: hookhost.Record) -> list[Row]:
    metadata = record.metadata()
    text = metadata.get("text") if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        raise hookhost.Reject("metadata.text must be a string")
    words = text.split()
    longest = None
    for word in words:
        if longest is None or len(word) > len(longest):
            longest = word
    return [Row(word_count=len(words), longest_word=longest)]
"#
    );
    vec![
        ("app.py".into(), app),
        (super::SAMPLE_FILE.into(), SAMPLE.into()),
        (".gitignore".into(), format!("{GITIGNORE}__pycache__/\n")),
    ]
}
