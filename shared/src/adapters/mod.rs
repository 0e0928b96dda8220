//! Adapters: one per port and runtime. `embedded` runs on one machine with
//! no cloud account; `aws` speaks to DynamoDB, KMS, SQS and SES v2.

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
pub mod emf;
