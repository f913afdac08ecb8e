//! `text_stats`: word and character statistics of `metadata.text`, one row per record.
//!
//! Shows the smallest complete hook: a derived row struct (doc comments become column
//! descriptions, `Option` makes a column nullable), no config, and a rejection for records it
//! cannot use. Run it on the samples:
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 --manifest-path example-hooks/Cargo.toml --workspace
//! host run example-hooks/target/wasm32-wasip2/release/text_stats.wasm \
//!     --input example-hooks/samples/text.jsonl --out /tmp/out
//! ```

use hookhost_sdk::{Features, Hook, NoConfig, Record, Refusal, export_hook, reject};

/// Word and character statistics of a text.
#[derive(Debug, PartialEq, Features)]
#[features(name = "text_stats", cardinality = "one")]
pub struct TextStats {
    /// Number of whitespace-separated words.
    word_count: i64,
    /// Number of characters (Unicode scalar values).
    char_count: i64,
    /// Mean number of characters per word; 0 when there are no words.
    mean_word_length: f64,
    /// The first of the longest words; null when there are no words.
    longest_word: Option<String>,
}

/// The hook: stateless, so it takes no config.
pub struct TextStatsHook;

impl Hook for TextStatsHook {
    type Row = TextStats;
    type Config = NoConfig;

    fn new(_config: NoConfig) -> Result<Self, String> {
        Ok(TextStatsHook)
    }

    fn process(&self, record: &Record) -> Result<Vec<TextStats>, Refusal> {
        let metadata: serde_json::Value = record.metadata()?;
        let Some(text) = metadata["text"].as_str() else {
            return Err(reject("metadata.text must be a string"));
        };
        Ok(vec![text_stats(text)])
    }
}

fn text_stats(text: &str) -> TextStats {
    let words: Vec<&str> = text.split_whitespace().collect();
    let lengths: Vec<usize> = words.iter().map(|w| w.chars().count()).collect();
    // `max_by_key` keeps the last maximum, so reversed it finds the first longest word.
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

export_hook!(TextStatsHook);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_words_and_characters() {
        assert_eq!(
            text_stats("  the quick  brown fox\njumps "),
            TextStats {
                word_count: 5,
                char_count: 29,
                mean_word_length: 4.2,
                longest_word: Some("quick".into()),
            }
        );
        assert_eq!(text_stats("naïve café").char_count, 10);
        assert_eq!(
            text_stats(" \n"),
            TextStats {
                word_count: 0,
                char_count: 2,
                mean_word_length: 0.0,
                longest_word: None,
            }
        );
    }

    #[test]
    fn rejects_records_without_text() {
        for metadata in [r#"{}"#, r#"{"text": 3}"#, r#"[1]"#, "null"] {
            assert_eq!(
                TextStatsHook.process(&Record::new("r", metadata)).err(),
                Some(reject("metadata.text must be a string")),
            );
        }
    }
}
