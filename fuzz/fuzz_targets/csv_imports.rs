//! The CSV imports of the registries (units, contacts, IT officers, notification rules): any bytes
//! are read whole or refused whole with the problems listed, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = cntt_collector::services::units::parse_csv(bytes);
    let _ = cntt_collector::services::contacts::parse_csv(bytes);
    let _ = cntt_collector::domain::officers::parse_csv(bytes);
    let _ = cntt_collector::domain::notice_rules::parse_rules_csv(bytes);
});
