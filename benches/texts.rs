//! The records every text benchmark reads, hookhost's and the Extism peer's alike: about 1 KB
//! of words each (included with `#[path]` by both, so both read the same bytes).

/// The metadata JSON of record `i`: `{"text": "<about 1 KB of words>"}`.
pub fn metadata(i: usize) -> String {
    let words = [
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
    ];
    let text: Vec<&str> = (0..160).map(|w| words[(w * 7 + i) % words.len()]).collect();
    format!("{{\"text\":\"{}\"}}", text.join(" "))
}
