//! Hook projects: [`new_project`] scaffolds one that builds and runs as it is (Rust or Python,
//! with a sample batch), and [`build_project`] turns a project of either language into a
//! component with the host's own interface, so an author never copies the WIT.
//!
//! The host carries what a project needs: the WIT (`wit/hook.wit`), the Rust SDK's sources
//! and the Python SDK's sources are compiled into the binary. A project keeps them under its
//! `.hookhost/` directory, which [`build_project`] writes again before every build, so a
//! project always builds against the interface of the host that builds it — inside a clone of
//! this repository or anywhere else.
//!
//! - **Rust**: `Cargo.toml` is its own workspace (so a project made inside another cargo
//!   workspace is not claimed by it) and depends on `.hookhost/sdk`; the build is
//!   `cargo build --release --target wasm32-wasip2`, its messages shown as cargo prints them.
//! - **Python**: `app.py` imports `hookhost`; the build runs componentize-py
//!   ([`COMPONENTIZE_PY`]) from a virtual environment, created with it when missing, and the
//!   SDK's own build step (`python -m hookhost build`), Python's messages shown as they are.

mod embedded;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::digest::sha256_digest;
use crate::error::Error;
use crate::registry::check_hook_name;

/// The componentize-py release Python hooks are built with (its components run on wasmtime 48).
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// The directory of a project that holds what the host supplies (SDK, WIT, build venv).
pub const SUPPLIED_DIR: &str = ".hookhost";
/// The sample batch every new project gets.
pub const SAMPLE_FILE: &str = "sample.jsonl";

/// A hook project's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A cargo crate using the Rust SDK.
    Rust,
    /// An `app.py` using the Python SDK.
    Python,
}

impl Language {
    /// Reads `rust` or `python`.
    pub fn parse(text: &str) -> Result<Language, Error> {
        match text {
            "rust" => Ok(Language::Rust),
            "python" => Ok(Language::Python),
            other => Err(Error::InvalidProject {
                path: PathBuf::from(other),
                reason: "the language must be `rust` or `python`".into(),
            }),
        }
    }

    /// The language of the project in `dir`: Rust if it has a `Cargo.toml`, Python if it has
    /// an `app.py`.
    pub fn of_project(dir: &Path) -> Result<Language, Error> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Language::Rust)
        } else if dir.join("app.py").is_file() {
            Ok(Language::Python)
        } else {
            Err(Error::InvalidProject {
                path: dir.to_owned(),
                reason: "it has neither a Cargo.toml (Rust) nor an app.py (Python); \
                         `host new NAME` makes a project"
                    .into(),
            })
        }
    }
}

/// Creates the project of hook `name` in directory `dir` (which must not exist, or be empty):
/// a sample hook, a sample batch, and what the host supplies. Returns the files written.
pub fn new_project(dir: &Path, name: &str, language: Language) -> Result<Vec<PathBuf>, Error> {
    check_hook_name(name)?;
    if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Error::InvalidProject {
            path: dir.to_owned(),
            reason: "the directory already exists and is not empty".into(),
        });
    }
    let files = match language {
        Language::Rust => embedded::rust_template(name),
        Language::Python => embedded::python_template(name),
    };
    let mut written = Vec::with_capacity(files.len());
    for (path, text) in files {
        let path = dir.join(path);
        write_file(&path, &text)?;
        written.push(path);
    }
    write_supplied(dir, language)?;
    tracing::info!(dir = %dir.display(), name, ?language, "project created");
    Ok(written)
}

/// How to build a project.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Where the component goes. By default `<dir>/<dir name>.wasm`.
    pub out: Option<PathBuf>,
    /// The virtual environment with componentize-py, for Python projects; created (with
    /// [`COMPONENTIZE_PY`]) when it has none. By default `<dir>/.hookhost/venv`.
    pub python_venv: Option<PathBuf>,
    /// The Python a new virtual environment is made from. By default `python3`.
    pub python: String,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            out: None,
            python_venv: None,
            python: "python3".into(),
        }
    }
}

/// A built component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// Where it is.
    pub path: PathBuf,
    /// `sha256:` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Builds the project in `dir` into a component (see the module docs). A project that does
/// not build fails with [`Error::BuildFailed`] after the compiler's own messages.
pub fn build_project(dir: &Path, options: &BuildOptions) -> Result<Built, Error> {
    let language = Language::of_project(dir)?;
    let dir = &dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    write_supplied(dir, language)?;
    let stem = dir
        .file_name()
        .map(|n| n.to_string_lossy().replace('-', "_"))
        .unwrap_or_else(|| "hook".into());
    let out = match &options.out {
        Some(out) => crate::fsutil::absolute(out),
        None => dir.join(format!("{stem}.wasm")),
    };
    match language {
        Language::Rust => build_rust(dir, &out)?,
        Language::Python => build_python(dir, &out, options)?,
    }
    let bytes = std::fs::read(&out).map_err(|e| Error::io(&out, e))?;
    Ok(Built {
        digest: sha256_digest(&bytes),
        bytes: bytes.len() as u64,
        path: out,
    })
}

fn build_rust(dir: &Path, out: &Path) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = dir.join("Cargo.toml");
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        // Diagnostics go to stderr as cargo renders them; stdout carries the artifacts.
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    let output = run(&mut command, dir, "cargo", true)?;
    let artifact = String::from_utf8_lossy(&output)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| {
            message["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path())
        })
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
        })
        .filter_map(|name| name.as_str().map(PathBuf::from))
        .find(|name| name.extension().is_some_and(|e| e == "wasm"));
    let artifact = artifact.ok_or_else(|| Error::InvalidProject {
        path: manifest.clone(),
        reason: "cargo built no .wasm: is the crate a `cdylib`?".into(),
    })?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    std::fs::copy(&artifact, out).map_err(|e| Error::io(out, e))?;
    Ok(())
}

fn build_python(dir: &Path, out: &Path, options: &BuildOptions) -> Result<(), Error> {
    let venv = options
        .python_venv
        .clone()
        .unwrap_or_else(|| dir.join(SUPPLIED_DIR).join("venv"));
    let python = venv.join("bin").join("python");
    if !python.exists() {
        tracing::info!(venv = %venv.display(), "creating a virtual environment for componentize-py");
        let mut create = Command::new(&options.python);
        create.arg("-m").arg("venv").arg(&venv);
        run(&mut create, dir, &options.python, false)?;
    }
    let has_tool = Command::new(&python)
        .args(["-c", "import componentize_py"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_tool {
        let mut install = Command::new(&python);
        install.args(["-m", "pip", "install", "--quiet", COMPONENTIZE_PY]);
        run(&mut install, dir, "pip", false)?;
    }
    let supplied = dir.join(SUPPLIED_DIR);
    let mut build = Command::new(&python);
    build
        .args(["-m", "hookhost", "build"])
        .arg(dir)
        .arg("--wit")
        .arg(supplied.join("wit"))
        .arg("-o")
        .arg(out)
        .env("PYTHONPATH", supplied.join("python"));
    run(&mut build, dir, "python -m hookhost build", true)?;
    Ok(())
}

/// Runs `command` in `dir`, its stderr shown as is (the compiler's own messages); returns its
/// stdout when `capture`, else lets it through too.
fn run(command: &mut Command, dir: &Path, tool: &str, capture: bool) -> Result<Vec<u8>, Error> {
    command
        .current_dir(dir)
        .stderr(std::process::Stdio::inherit());
    if !capture {
        command.stdout(std::process::Stdio::inherit());
    }
    let output = command.output().map_err(|e| Error::BuildFailed {
        project: dir.to_owned(),
        tool: tool.to_owned(),
        reason: format!("it could not be started: {e}"),
    })?;
    if !output.status.success() {
        return Err(Error::BuildFailed {
            project: dir.to_owned(),
            tool: tool.to_owned(),
            reason: format!("it exited with {} (its messages are above)", output.status),
        });
    }
    Ok(output.stdout)
}

/// (Re)writes what the host supplies into `<dir>/.hookhost/`: the WIT, and the SDK of the
/// project's language.
fn write_supplied(dir: &Path, language: Language) -> Result<(), Error> {
    let supplied = dir.join(SUPPLIED_DIR);
    write_file(&supplied.join("wit/hook.wit"), embedded::WIT)?;
    write_file(
        &supplied.join(".gitignore"),
        "# Written by `host build` from the host's own copy: not the project's to edit.\n*\n",
    )?;
    let files = match language {
        Language::Rust => embedded::rust_sdk(),
        Language::Python => embedded::python_sdk(),
    };
    for (path, text) in files {
        write_file(&supplied.join(path), &text)?;
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(()); // unchanged: keep its time, so cargo does not rebuild for nothing
    }
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_sdks_hold_every_source_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let listed = |files: Vec<(String, String)>| -> Vec<String> {
            files.into_iter().map(|(path, _)| path).collect()
        };
        let rust = listed(embedded::rust_sdk());
        for dir in ["sdk/src", "sdk/macros/src"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                let supplied = format!("{dir}/{name}");
                assert!(
                    rust.contains(&supplied),
                    "{supplied} is not embedded: {rust:?}"
                );
            }
        }
        let python = listed(embedded::python_sdk());
        for entry in std::fs::read_dir(root.join("sdk/python/src/hookhost")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".py") {
                let supplied = format!("python/hookhost/{name}");
                assert!(python.contains(&supplied), "{supplied} is not embedded");
            }
        }
    }

    #[test]
    fn a_new_project_refuses_a_bad_name_and_a_full_directory() {
        let temp = tempfile::tempdir().unwrap();
        assert!(matches!(
            new_project(&temp.path().join("x"), "Bad", Language::Rust),
            Err(Error::InvalidHookName { .. })
        ));
        std::fs::write(temp.path().join("file"), "x").unwrap();
        assert!(matches!(
            new_project(temp.path(), "ok", Language::Python),
            Err(Error::InvalidProject { .. })
        ));
        assert!(matches!(
            Language::of_project(temp.path()),
            Err(Error::InvalidProject { .. })
        ));
        assert!(Language::parse("go").is_err());
    }
}
