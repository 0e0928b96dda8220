//! Helpers the benchmarks share: counting AWS requests on the wire and
//! pricing them.

pub mod aws_calls;
pub mod dynamodb_units;
pub mod prices;
pub mod seed;
