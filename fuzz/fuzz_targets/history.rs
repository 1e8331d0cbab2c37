//! A host's `.kai/history.jsonl`: every line is a record or reported as bad; records
//! round-trip through the line kai writes; merging and rendering never panic.
#![no_main]

use kai_core::history::{events, parse_history, render, Query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (records, _bad) = parse_history(&text);
    for record in &records {
        let (again, bad) = parse_history(&record.to_line());
        assert!(bad.is_empty() && again.len() == 1 && &again[0] == record);
    }
    let merged = events(records, &Query::default());
    let table = render(&merged);
    assert!(!table.contains('\u{1b}'), "an escape reached the table");
});
