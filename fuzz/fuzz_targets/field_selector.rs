//! The field selector parser never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::selector::{FieldSelector, supported_fields};

fuzz_target!(|text: &str| {
    let _ = FieldSelector::parse(text, supported_fields("", "events"));
});
