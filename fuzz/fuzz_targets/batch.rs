//! An agent's batch as the collector's ingest reads it: the JSON of `common::wire::Batch`, then
//! every event's payload by its kind. Whatever the bytes, parsing returns a value or an error and
//! never panics, loops or allocates without bound.
#![no_main]

use cntt_common::wire::Batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<Batch>(bytes) {
        for event in &batch.events {
            let _ = event.payload();
        }
        // What was read writes back and reads again to the same batch.
        let again = serde_json::to_vec(&batch).expect("a parsed batch serializes");
        let reread: Batch = serde_json::from_slice(&again).expect("a serialized batch parses");
        assert_eq!(reread.events.len(), batch.events.len());
    }
});
