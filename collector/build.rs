//! Rebuilds the collector when a migration file is added or changed: `sqlx::migrate!` embeds the
//! `migrations/` folders at compile time, and cargo does not watch them on its own.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
