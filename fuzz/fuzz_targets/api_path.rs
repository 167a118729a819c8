//! The request path router never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_cluster::apiserver::parse_path;

fuzz_target!(|path: &str| {
    let _ = parse_path(path);
});
