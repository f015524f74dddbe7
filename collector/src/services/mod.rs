//! Services: use cases over the store: periodic reports and compliance ([`reports`]), contacts,
//! the units tree and the systems register. They use the store and the domain, never HTTP.

pub mod contacts;
pub mod reports;
pub mod systems;
pub mod units;
