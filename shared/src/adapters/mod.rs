//! Adapters: one per port and runtime. `embedded` runs on one machine with
//! no cloud account; `aws` speaks to DynamoDB, KMS, SQS and SES v2;
//! `dns` reads TXT records for `carepost doctor`.

#[cfg(any(feature = "aws", feature = "doctor"))]
pub mod aws;
#[cfg(feature = "doctor")]
pub mod dns;
pub mod embedded;
pub mod emf;
