//! Adapters: one per port and runtime. `embedded` runs on one machine with
//! no cloud account.

pub mod embedded;
