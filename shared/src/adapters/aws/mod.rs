//! AWS adapters over the AWS SDK for Rust. Tested over the real wire
//! protocol against a moto server (`AWS_ENDPOINT_URL`), with the same
//! contract suites as the embedded adapters.

#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod kms;
pub mod ses_account;
#[cfg(feature = "aws")]
pub mod sesv2;
#[cfg(feature = "aws")]
pub mod sqs;

#[cfg(feature = "aws")]
pub use dynamodb::TableNames;

/// Error codes are identifiers; keep them that way in our messages.
pub(crate) fn sanitize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '#')).take(80).collect()
}
