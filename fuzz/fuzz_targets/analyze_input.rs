//! Fuzz target: `kevents analyze`'s input reader (kubectl's JSON and YAML lists,
//! watch streams). The reader lives in the CLI binary, so its file is compiled into
//! this target as is. Errors name the item and field; panics are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

extern crate kevents_schemas as schemas;

#[allow(dead_code)]
#[path = "../../cli/src/analyze/input.rs"]
mod input;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = input::parse(text);
});
