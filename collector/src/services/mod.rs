//! Services: use cases over the store: periodic reports and compliance ([`reports`]), people's
//! work on incidents ([`incidents`]), planned maintenance ([`maintenance`]), contacts,
//! the units tree and the systems register. They use the store and the domain, never HTTP.

pub mod contacts;
pub mod enrollment;
pub mod incidents;
pub mod maintenance;
pub mod reports;
pub mod systems;
pub mod units;
