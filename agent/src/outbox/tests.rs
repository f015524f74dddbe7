//! Tests of the outbox in temporary directories.
