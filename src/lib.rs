//! The all-in-one Callway site (package `callway`): every service in one process, the keyless
//! sandbox, and the RGPD commands. `src/main.rs` is its command line.

pub mod admin;
pub mod sandbox;
pub mod sandbox_phone;
pub mod site;
