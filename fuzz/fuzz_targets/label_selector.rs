//! The label selector parser never panics, and what it accepts prints back to an equivalent
//! selector.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::selector::parse_label_selector;

fuzz_target!(|text: &str| {
    if let Ok(selector) = parse_label_selector(text) {
        let printed = selector.to_string();
        let reparsed = parse_label_selector(&printed).expect("a printed selector parses");
        assert_eq!(reparsed.to_string(), printed);
    }
});
