//! The configuration files people edit: the agent's and the collector's TOML. Any text gives a
//! configuration or an error naming the problem, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let _ = cntt_agent::config::Config::parse(text);
    // Relative paths resolve against a folder that does not exist, so nothing is read from disk
    // unless the text names an absolute path.
    let _ = cntt_collector::config::Config::parse(text, Path::new("/nonexistent-fuzz-base"));
});
