//! Patch application never panics: merge, JSON and strategic patches of arbitrary JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_patch::{PatchKind, apply};

fuzz_target!(|input: (&str, &str, u8)| {
    let (document, patch, kind) = input;
    let (Ok(mut document), Ok(patch)) = (
        serde_json::from_str::<serde_json::Value>(document),
        serde_json::from_str::<serde_json::Value>(patch),
    ) else {
        return;
    };
    let kind = match kind % 3 {
        0 => PatchKind::Merge,
        1 => PatchKind::Json,
        _ => PatchKind::Strategic,
    };
    let _ = apply(kind, &mut document, &patch);
});
