//! `text_stats` as an Extism plugin: the same function as the `text-stats` example hook
//! (`example-hooks/text-stats/src/lib.rs`), taking a record's metadata JSON and returning the
//! row as JSON, one call per record, as Extism plugins are called.

use extism_pdk::{Error, FnResult, Json, plugin_fn};
use serde::Serialize;

/// Word and character statistics of a text (the example hook's row).
#[derive(Serialize)]
pub struct TextStats {
    word_count: i64,
    char_count: i64,
    mean_word_length: f64,
    longest_word: Option<String>,
}

/// `metadata.text`'s statistics, or an error when it is not a string.
#[plugin_fn]
pub fn text_stats(Json(metadata): Json<serde_json::Value>) -> FnResult<Json<TextStats>> {
    let Some(text) = metadata["text"].as_str() else {
        return Err(Error::msg("metadata.text must be a string").into());
    };
    Ok(Json(stats(text)))
}

fn stats(text: &str) -> TextStats {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lengths: Vec<usize> = words.iter().map(|w| w.chars().count()).collect();
    let longest = lengths.iter().enumerate().rev().max_by_key(|&(_, n)| n);
    TextStats {
        word_count: words.len() as i64,
        char_count: text.chars().count() as i64,
        mean_word_length: match words.len() {
            0 => 0.0,
            n => lengths.iter().sum::<usize>() as f64 / n as f64,
        },
        longest_word: longest.map(|(i, _)| words[i].to_owned()),
    }
}
