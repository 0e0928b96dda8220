//! Helpers the benchmarks share: counting AWS requests on the wire and
//! pricing them, and a stand-in for Lambda's Runtime API.

pub mod aws_calls;
pub mod dynamodb_units;
pub mod prices;
pub mod runtime_api;
pub mod seed;
