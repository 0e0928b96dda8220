//! AWS adapters over the AWS SDK for Rust. Tested over the real wire
//! protocol against a moto server (`AWS_ENDPOINT_URL`), with the same
//! contract suites as the embedded adapters.

pub mod dynamodb;
pub mod kms;
pub mod sesv2;
pub mod sqs;

pub use dynamodb::TableNames;
