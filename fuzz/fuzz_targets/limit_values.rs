//! SIZE and DUR flag values: any text through `parse_size` / `parse_duration` never panics; an
//! accepted size is positive and formats to text that parses back to itself, and an accepted
//! duration is positive.
#![no_main]

use hookhost::limits::{format_size, parse_duration, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(bytes) = parse_size(text) {
        assert!(bytes > 0);
        assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
    }
    if let Ok(duration) = parse_duration(text) {
        assert!(!duration.is_zero());
    }
});
