//! The officer's periodic report document (Markdown with a TOML header, `common::report`), which
//! the agent and the collector both check: any text gives a report or a list of problems.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = cntt_common::report::parse(text);
    }
});
