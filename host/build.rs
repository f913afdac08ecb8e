//! Records the wasmtime version this host was built against, for provenance (`run.json`'s
//! `host.wasmtime`). Cargo gives no direct way to read a dependency's version, so it is read from
//! the workspace's `Cargo.lock`, which is committed.
use std::path::Path;

fn main() {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = std::fs::read_to_string(&lock)
        .ok()
        .and_then(|text| wasmtime_version(&text))
        .unwrap_or_else(|| "48 (exact version unknown)".to_owned());
    println!("cargo:rustc-env=HOOKHOST_WASMTIME_VERSION={version}");
}

fn wasmtime_version(lock: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasmtime\"" {
            let version = lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')?;
            return Some(version.to_owned());
        }
    }
    None
}
