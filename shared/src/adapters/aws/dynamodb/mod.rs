//! DynamoDB adapters: one table per concern (see `schema` for the keys and
//! indexes). Every expression names attributes through `#name` placeholders
//! (many of ours are reserved words), and every write whose correctness
//! depends on "exactly once" or "append only" is a conditional write or a
//! transaction.
//!
//! Error text names the operation and DynamoDB's error code only, never an
//! attribute value (values may be blind indexes, IDs or sealed bytes).

mod activity;
mod audit;
mod campaigns;
mod chain;
mod consent;
mod contacts;
mod expression;
mod intake;
mod journeys;
mod ledger;
mod schema;
mod secrets;
mod secure_messages;
mod suppression;

use std::collections::HashMap;
use std::str::FromStr;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;

pub(crate) use expression::Bindings;

use crate::domain::BlindIndex;
use crate::ports::StoreError;

pub use activity::DynamoActivityStore;
pub use audit::DynamoAuditLog;
pub use campaigns::DynamoCampaignStore;
pub use consent::DynamoConsentStore;
pub use contacts::DynamoContactStore;
pub use intake::DynamoIntakeStore;
pub use journeys::DynamoJourneyStore;
pub use ledger::DynamoSendLedger;
pub use schema::create_tables;
pub use secrets::DynamoSecretStore;
pub use secure_messages::DynamoSecureMessageStore;
pub use suppression::DynamoSuppressionList;

/// The DynamoDB table names, one per concern (set by the SAM template).
#[derive(Debug, Clone)]
pub struct TableNames {
    pub contacts: String,
    pub consent: String,
    pub campaigns: String,
    pub send_ledger: String,
    pub suppression: String,
    pub audit_log: String,
    pub activity: String,
    pub journeys: String,
}

impl TableNames {
    /// `{prefix}-contacts`, `{prefix}-consent`, `{prefix}-campaigns`,
    /// `{prefix}-send-ledger`, `{prefix}-suppression`, `{prefix}-audit-log`,
    /// `{prefix}-activity` and `{prefix}-journeys`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            contacts: format!("{prefix}-contacts"),
            consent: format!("{prefix}-consent"),
            campaigns: format!("{prefix}-campaigns"),
            send_ledger: format!("{prefix}-send-ledger"),
            suppression: format!("{prefix}-suppression"),
            audit_log: format!("{prefix}-audit-log"),
            activity: format!("{prefix}-activity"),
            journeys: format!("{prefix}-journeys"),
        }
    }
}

/// One stored item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// How long to wait before asking again for what a batch call left
/// unprocessed. AWS's guidance for `BatchGetItem` / `BatchWriteItem`: unprocessed
/// keys mean the table (or a partition) is over its throughput, so retry with
/// exponential back-off, or the retries only add to the load. "Full jitter":
/// retry `n` waits a uniformly random time in `[0, min(cap, first * 2^n)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub first: std::time::Duration,
    pub cap: std::time::Duration,
    /// Calls in all, the first included.
    pub attempts: u32,
}

impl Backoff {
    /// 25 ms doubling to 1 s, 10 calls: at most about 4.6 s of waiting (half
    /// that on average) before the keys are reported unavailable.
    pub(crate) const UNPROCESSED: Backoff =
        Backoff { first: std::time::Duration::from_millis(25), cap: std::time::Duration::from_secs(1), attempts: 10 };

    /// The longest wait before retry `retry` (0 for the first retry).
    pub(crate) fn ceiling(&self, retry: u32) -> std::time::Duration {
        self.first.saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX)).min(self.cap)
    }

    /// The wait before retry `retry`: `unit` (in `[0, 1]`) of the ceiling.
    pub(crate) fn delay(&self, retry: u32, unit: f64) -> std::time::Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// Sleeps before retry `retry`, with a random jitter.
    pub(crate) async fn wait(&self, retry: u32) {
        let delay = self.delay(retry, rand::random::<f64>());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// Reads `keys` from `table` with `BatchGetItem` (strongly consistent), 100
/// keys a call, asking again for any the service left unprocessed after a
/// back-off (`Backoff::UNPROCESSED`).
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    batch_get_with(client, table, keys, Backoff::UNPROCESSED).await
}

pub(crate) async fn batch_get_with(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
    backoff: Backoff,
) -> Result<Vec<Item>, StoreError> {
    const OP: &str = "BatchGetItem";
    let mut found = Vec::new();
    for chunk in keys.chunks(100) {
        let mut pending: Vec<Item> = chunk.to_vec();
        for attempt in 0..backoff.attempts {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                backoff.wait(attempt - 1).await;
            }
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build();
            let out = client
                .batch_get_item()
                .request_items(table, built(OP, request)?)
                .send()
                .await
                .map_err(|e| sdk_error(OP, e))?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(table).unwrap_or_default());
            }
            pending = out.unprocessed_keys.and_then(|mut u| u.remove(table)).map(|k| k.keys).unwrap_or_default();
        }
        if !pending.is_empty() {
            return Err(StoreError::unavailable_msg(format!("DynamoDB {OP}: keys kept coming back unprocessed")));
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------- errors

/// Error codes that mean "this request will never succeed as it is".
const PERMANENT_CODES: &[&str] =
    &["ValidationException", "SerializationException", "ItemCollectionSizeLimitExceededException"];

/// Maps an SDK error that no caller handles specially. Timeouts, dispatch
/// failures, throttling (`ProvisionedThroughputExceededException`,
/// `RequestLimitExceeded`, `ThrottlingException`), `InternalServerError` and
/// any other service error are `Unavailable` (transient); a
/// request DynamoDB refuses as malformed is `Corrupt` (permanent); an
/// unexpected failed condition is a `Conflict`.
///
/// The SDK error is kept as the `source()`; the display names the operation
/// and the code only (the service's message may quote values).
pub(crate) fn sdk_error<E, R>(op: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let error = match &err {
        SdkError::ServiceError(service) => classify_code(op, service.err().code()),
        SdkError::TimeoutError(_) => StoreError::unavailable_msg(format!("DynamoDB {op}: timed out")),
        SdkError::DispatchFailure(_) => StoreError::unavailable_msg(format!("DynamoDB {op}: request not delivered")),
        SdkError::ResponseError(_) => StoreError::unavailable_msg(format!("DynamoDB {op}: unreadable response")),
        SdkError::ConstructionFailure(_) => StoreError::unavailable_msg(format!("DynamoDB {op}: request not built")),
        _ => StoreError::unavailable_msg(format!("DynamoDB {op}: failed")),
    };
    with_source(error, err)
}

/// `error` with `source` as its cause (a `Conflict` keeps none).
fn with_source(error: StoreError, source: impl Into<crate::ports::BoxError>) -> StoreError {
    match error {
        StoreError::Unavailable { context, .. } => StoreError::unavailable(context, source),
        StoreError::Corrupt { what, .. } => StoreError::corrupt_from(what, source),
        conflict @ StoreError::Conflict(_) => conflict,
    }
}

fn classify_code(op: &'static str, code: Option<&str>) -> StoreError {
    let code = code.unwrap_or("unknown");
    if code == "ConditionalCheckFailedException" || code == "TransactionConflictException" {
        StoreError::conflict(format!("DynamoDB {op}: {code}"))
    } else if PERMANENT_CODES.contains(&code) {
        StoreError::corrupt(format!("DynamoDB {op} refused the request: {code}"))
    } else {
        StoreError::unavailable_msg(format!("DynamoDB {op}: {code}"))
    }
}

/// Whether the error is a failed condition on a single-item write.
pub(crate) fn is_condition_failed<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// A conditional single-item write's result: true if it was written,
/// false if its condition did not hold, an error otherwise.
pub(crate) fn conditional<T, E, R>(op: &'static str, result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failed(&e) => Ok(false),
        Err(e) => Err(sdk_error(op, e)),
    }
}

/// How a transaction was cancelled, from its per-item reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// These items' conditions failed (indexes into the request's items).
    Conditions(Vec<usize>),
    /// Another transaction touched the same items at the same time.
    Contended,
}

/// Moves the `status` of the item (`pk_name` = `pk`, `sk`) from `from` to
/// `to`, only if it exists and still has `from`: false if it did not.
pub(crate) async fn transition_status(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    (pk_name, pk, sk): (&str, String, &str),
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let result = client
        .update_item()
        .table_name(table)
        .key(pk_name, s(pk))
        .key("sk", s(sk))
        .update_expression("SET #status = :to")
        .condition_expression("attribute_exists(#pk) AND #status = :from")
        .expression_attribute_names("#pk", pk_name)
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":from", s(from))
        .expression_attribute_values(":to", s(to))
        .send()
        .await;
    conditional("UpdateItem", result)
}

/// Splits a failed `TransactWriteItems` into a cancellation we can reason
/// about and everything else (already mapped to a `StoreError`).
pub(crate) fn transaction_error(
    op: &'static str,
    err: SdkError<TransactWriteItemsError, HttpResponse>,
) -> Result<Cancelled, StoreError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = err.as_service_error() {
        let reasons = cancelled.cancellation_reasons();
        let failed: Vec<usize> = reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Ok(Cancelled::Conditions(failed));
        }
        let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).filter(|c| *c != "None").collect();
        if codes.contains(&"TransactionConflict") {
            return Ok(Cancelled::Contended);
        }
        if codes.contains(&"ValidationError") {
            let refused = StoreError::corrupt(format!("DynamoDB {op} refused the request: ValidationError"));
            return Err(with_source(refused, err));
        }
        let cancelled =
            StoreError::unavailable_msg(format!("DynamoDB {op}: transaction cancelled ({})", codes.join(", ")));
        return Err(with_source(cancelled, err));
    }
    if err.as_service_error().and_then(|e| e.code()) == Some("TransactionConflictException") {
        return Ok(Cancelled::Contended);
    }
    Err(sdk_error(op, err))
}

/// Every item a query matches, across its pages.
pub(crate) async fn query_all(
    request: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
) -> Result<Vec<Item>, StoreError> {
    request.into_paginator().items().send().try_collect().await.map_err(|e| sdk_error("Query", e))
}

// ---------------------------------------------------------------- attributes

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn b(value: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(value))
}

fn missing(name: &str) -> StoreError {
    StoreError::corrupt(format!("item has no valid attribute '{name}'"))
}

/// A string attribute that must be present.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    opt_s(item, name)?.ok_or_else(|| missing(name))
}

/// A string attribute that may be absent (but not of another type).
pub(crate) fn opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(missing(name)),
    }
}

/// A blind-index attribute that must be present.
pub(crate) fn get_index(item: &Item, name: &str) -> Result<BlindIndex, StoreError> {
    BlindIndex::from_stored(get_s(item, name)?)
        .map_err(|e| StoreError::corrupt_from(format!("attribute '{name}' is not a blind index"), e))
}

/// A number attribute that must be present.
pub(crate) fn get_n<T: FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    opt_n(item, name)?.ok_or_else(|| missing(name))
}

/// A number attribute that may be absent.
pub(crate) fn opt_n<T: FromStr>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| missing(name)),
        Some(_) => Err(missing(name)),
    }
}

/// A binary attribute that must be present.
pub(crate) fn get_b(item: &Item, name: &str) -> Result<Vec<u8>, StoreError> {
    match item.get(name) {
        Some(AttributeValue::B(v)) => Ok(v.as_ref().to_vec()),
        _ => Err(missing(name)),
    }
}

/// Seconds since the epoch, the resolution timestamps are stored at.
pub(crate) fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_unix(secs: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| StoreError::corrupt_from("timestamp out of range", e))
}

/// A timestamp attribute (unix seconds) that must be present.
pub(crate) fn get_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    from_unix(get_n(item, name)?)
}

/// A JSON attribute that does not decode. serde's own message may quote the
/// offending value, so only the kind of error and its position are displayed
/// (serde's error is the source).
pub(crate) fn json_corrupt(what: &str, e: serde_json::Error) -> StoreError {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "i/o error",
        Category::Syntax => "not valid JSON",
        Category::Data => "unexpected shape",
        Category::Eof => "truncated",
    };
    let what = format!("{what}: {kind} at line {} column {}", e.line(), e.column());
    StoreError::corrupt_from(what, e)
}

/// Builds a `TransactWriteItem` part; a missing required field is our bug.
pub(crate) fn built<T>(part: &'static str, result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::unavailable(format!("DynamoDB request part {part} is incomplete"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_names_are_one_per_concern() {
        let t = TableNames::with_prefix("t1");
        assert_eq!(
            [t.contacts, t.consent, t.campaigns, t.send_ledger, t.suppression],
            ["t1-contacts", "t1-consent", "t1-campaigns", "t1-send-ledger", "t1-suppression"].map(String::from)
        );
    }

    #[test]
    fn unprocessed_keys_back_off_exponentially_to_a_cap_with_jitter() {
        use std::time::Duration;
        let b = Backoff::UNPROCESSED;
        let ceilings: Vec<u64> = (0..8).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(ceilings, [25, 50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.ceiling(40), Duration::from_secs(1), "no overflow far out");
        assert_eq!(b.delay(3, 0.0), Duration::ZERO);
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(3, 7.0), Duration::from_millis(200), "jitter never exceeds the ceiling");
        let total: Duration = (0..b.attempts - 1).map(|n| b.ceiling(n)).sum();
        assert!(total < Duration::from_secs(5), "{total:?}");
    }

    #[test]
    fn codes_are_classified_without_values() {
        assert!(matches!(classify_code("GetItem", Some("ThrottlingException")), StoreError::Unavailable { .. }));
        assert!(matches!(
            classify_code("GetItem", Some("ProvisionedThroughputExceededException")),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(classify_code("PutItem", Some("ConditionalCheckFailedException")), StoreError::Conflict(_)));
        assert!(matches!(classify_code("PutItem", Some("ValidationException")), StoreError::Corrupt { .. }));
        assert!(matches!(classify_code("PutItem", None), StoreError::Unavailable { .. }));
    }

    #[test]
    fn attribute_getters_reject_wrong_types() {
        let item: Item = HashMap::from([
            ("a".to_owned(), s("x")),
            ("n".to_owned(), n(42)),
            ("b".to_owned(), b(vec![1u8, 2])),
            ("bad".to_owned(), AttributeValue::Bool(true)),
        ]);
        assert_eq!(get_s(&item, "a").unwrap(), "x");
        assert_eq!(get_n::<u32>(&item, "n").unwrap(), 42);
        assert_eq!(get_b(&item, "b").unwrap(), vec![1, 2]);
        assert_eq!(opt_s(&item, "absent").unwrap(), None);
        assert!(matches!(get_s(&item, "bad"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(get_n::<u32>(&item, "a"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(get_s(&item, "absent"), Err(StoreError::Corrupt { .. })));
    }
}
