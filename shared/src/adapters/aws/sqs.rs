//! SQS as the queue: one queue URL, and optionally its dead-letter queue for
//! `depth`. The dead-letter move itself is SQS's redrive policy (see
//! `create_queue_pair`). Bodies carry IDs only; no message attributes are set.
//!
//! Error messages carry the operation and the SQS error code, never a body.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::sanitize_code;
use crate::ports::{BodyFilter, Queue, QueueError, ReceivedMessage};

/// SQS's limits: entries per `SendMessageBatch`, messages per `ReceiveMessage`
/// and the longest long poll.
const BATCH: usize = 10;
const LONGEST_POLL_SECS: u64 = 20;
/// Between short polls when the remaining wait is under a second.
const SHORT_POLL_PAUSE: Duration = Duration::from_millis(100);
/// Before the one retry of entries a batch send reported as failed.
const BATCH_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Dead-letter queues keep messages as long as SQS allows (14 days).
const DLQ_RETENTION_SECS: u32 = 1_209_600;

/// Whether an SQS error code means the receipt handle no longer refers to a
/// message we hold (deleted, received again, or never valid). Codes arrive
/// bare (`ReceiptHandleIsInvalid`), with a namespace (`com.amazonaws.sqs#…`)
/// or in the query form (`AWS.SimpleQueueService.MessageNotInflight`).
pub fn is_stale_receipt_code(code: &str) -> bool {
    let bare = code.rsplit(['#', '.']).next().unwrap_or(code);
    matches!(bare, "ReceiptHandleIsInvalid" | "MessageNotInflight" | "InvalidIdFormat")
}

fn describe<E: ProvideErrorMetadata>(operation: &str, err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) => format!("sqs {operation}: {}", sanitize_code(code)),
            None => format!("sqs {operation}: http {}", service.raw().status().as_u16()),
        },
        SdkError::TimeoutError(_) => format!("sqs {operation}: timeout"),
        SdkError::DispatchFailure(_) => format!("sqs {operation}: dispatch failure"),
        SdkError::ResponseError(_) => format!("sqs {operation}: unreadable response"),
        SdkError::ConstructionFailure(_) => format!("sqs {operation}: request could not be built"),
        _ => format!("sqs {operation}: failed"),
    }
}

/// Keeps the SDK error as the source; the display is `describe`'s.
fn unavailable<E>(operation: &str) -> impl Fn(SdkError<E, HttpResponse>) -> QueueError + '_
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |err| QueueError::unavailable(describe(operation, &err), err)
}

/// For calls that take a receipt handle: a stale one is `StaleReceipt`.
fn receipt_error<E>(operation: &str) -> impl Fn(SdkError<E, HttpResponse>) -> QueueError + '_
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |err| match &err {
        SdkError::ServiceError(service) if service.err().code().is_some_and(is_stale_receipt_code) => {
            QueueError::StaleReceipt
        }
        _ => QueueError::unavailable(describe(operation, &err), err),
    }
}

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
    dead_letter_url: Option<String>,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>, dead_letter_url: Option<String>) -> Self {
        Self { client, url: url.into(), dead_letter_url }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dead_letter_url(&self) -> Option<&str> {
        self.dead_letter_url.as_deref()
    }

    /// Sends one chunk of at most ten bodies; returns the entry IDs SQS
    /// reported as failed, with the code of the first failure.
    async fn send_chunk(
        &self,
        entries: Vec<SendMessageBatchRequestEntry>,
    ) -> Result<Vec<(String, String)>, QueueError> {
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(unavailable("SendMessageBatch"))?;
        Ok(output.failed().iter().map(|f| (f.id().to_owned(), sanitize_code(f.code()))).collect())
    }

    async fn count(&self, url: &str) -> Result<u64, QueueError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(unavailable("GetQueueAttributes"))?;
        let attributes = output.attributes();
        let number = |name: QueueAttributeName| -> u64 {
            attributes.and_then(|a| a.get(&name)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Ok(number(QueueAttributeName::ApproximateNumberOfMessages)
            + number(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
    }

    async fn receive_once(&self, max: i32, wait_secs: i32) -> Result<Vec<ReceivedMessage>, QueueError> {
        const OP: &str = "ReceiveMessage";
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(unavailable(OP))?;
        output
            .messages()
            .iter()
            .map(|m| {
                let (Some(message_id), Some(receipt_handle)) = (m.message_id(), m.receipt_handle()) else {
                    return Err(QueueError::unavailable_msg(format!(
                        "sqs {OP}: a message without id or receipt handle"
                    )));
                };
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Ok(ReceivedMessage {
                    message_id: message_id.to_owned(),
                    body: m.body().unwrap_or_default().to_owned().into(),
                    receipt_handle: receipt_handle.to_owned(),
                    receive_count,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), QueueError> {
        const OP: &str = "SendMessageBatch";
        for chunk in bodies.chunks(BATCH) {
            let entry = |i: usize| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&chunk[i])
                    .build()
                    .map_err(|e| QueueError::unavailable(format!("sqs {OP}: request could not be built"), e))
            };
            let entries = (0..chunk.len()).map(entry).collect::<Result<Vec<_>, _>>()?;
            let failed = self.send_chunk(entries).await?;
            if failed.is_empty() {
                continue;
            }
            tokio::time::sleep(BATCH_RETRY_PAUSE).await;
            let retry = failed
                .iter()
                .map(|(id, _)| id.parse::<usize>().ok().filter(|i| *i < chunk.len()).map(entry))
                .collect::<Option<Result<Vec<_>, _>>>()
                .ok_or_else(|| QueueError::unavailable_msg(format!("sqs {OP}: a failed entry with an unknown id")))??;
            let still_failed = self.send_chunk(retry).await?;
            if let Some((_, code)) = still_failed.first() {
                return Err(QueueError::unavailable_msg(format!(
                    "sqs {OP}: {} of {} entries failed twice ({code})",
                    still_failed.len(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max = max.min(BATCH) as i32;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            // SQS long-polls in whole seconds, up to 20; a shorter rest is
            // covered by short polls, so a receive waits as long as asked.
            let wait_secs = remaining.as_secs().min(LONGEST_POLL_SECS) as i32;
            let got = self.receive_once(max, wait_secs).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            if wait_secs == 0 {
                tokio::time::sleep((deadline - now).min(SHORT_POLL_PAUSE)).await;
            }
        }
    }

    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError> {
        // Whole seconds, rounded up so a short delay is not none.
        let seconds = (delay.as_secs() + u64::from(delay.subsec_nanos() > 0)).min(crate::ports::MAX_DELAY.as_secs());
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds as i32)
            .send()
            .await
            .map_err(unavailable("SendMessage"))?;
        Ok(())
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(receipt_error("DeleteMessage"))?;
        Ok(())
    }

    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError> {
        // SQS takes whole seconds, at most 12 hours; a fraction rounds up so
        // a short back-off never becomes none.
        let seconds = (timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0)).min(43_200) as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(receipt_error("ChangeMessageVisibility"))?;
        Ok(())
    }

    /// Receives from the dead-letter queue and sends the chosen bodies back
    /// (then deletes them there): SQS's own message move task moves a whole
    /// queue, not one campaign's jobs, and moto does not implement it. The
    /// messages not chosen stay hidden for the dead-letter queue's
    /// visibility timeout and then reappear there, unchanged.
    async fn redrive(&self, select: &BodyFilter) -> Result<u64, QueueError> {
        let Some(url) = &self.dead_letter_url else { return Ok(0) };
        let dlq = SqsQueue::new(self.client.clone(), url.clone(), None);
        let mut moved = 0u64;
        loop {
            let batch = dlq.receive_once(BATCH as i32, 0).await?;
            if batch.is_empty() {
                return Ok(moved);
            }
            for message in batch.iter().filter(|m| select(m.body.expose())) {
                // Sent before it is deleted: at worst a job runs twice, and the ledger absorbs it.
                self.send_batch(std::slice::from_ref(&message.body.expose().to_owned())).await?;
                dlq.delete(&message.receipt_handle).await?;
                moved += 1;
            }
        }
    }

    async fn dead_lettered(&self, _select: &BodyFilter) -> Result<Option<u64>, QueueError> {
        Ok(None)
    }

    async fn depth(&self) -> Result<(u64, u64), QueueError> {
        let queue = self.count(&self.url).await?;
        let dead = match &self.dead_letter_url {
            Some(url) => self.count(url).await?,
            None => 0,
        };
        Ok((queue, dead))
    }
}

/// Creates `{name}-dlq` and `{name}`, the second redriving to the first after
/// `max_receive_count` receives; returns (queue URL, dead-letter queue URL).
/// Creating an existing pair with the same settings returns its URLs. For
/// tests and local setup; deployed queues come from the SAM template.
pub async fn create_queue_pair(
    client: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout_secs: u32,
    max_receive_count: u32,
) -> Result<(String, String), QueueError> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .attributes(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECS.to_string())
        .send()
        .await
        .map_err(unavailable("CreateQueue"))?
        .queue_url
        .ok_or_else(|| QueueError::unavailable_msg("sqs CreateQueue: no queue URL in the answer"))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(unavailable("GetQueueAttributes"))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| QueueError::unavailable_msg("sqs GetQueueAttributes: no QueueArn in the answer"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receive_count.to_string(),
    });
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout_secs.to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(unavailable("CreateQueue"))?
        .queue_url
        .ok_or_else(|| QueueError::unavailable_msg("sqs CreateQueue: no queue URL in the answer"))?;
    Ok((queue_url, dlq_url))
}

#[cfg(test)]
mod tests {
    use super::is_stale_receipt_code;

    #[test]
    fn stale_receipt_codes_are_recognised_in_every_form() {
        for code in [
            "ReceiptHandleIsInvalid",
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "com.amazonaws.sqs#ReceiptHandleIsInvalid",
        ] {
            assert!(is_stale_receipt_code(code), "{code}");
        }
        assert!(!is_stale_receipt_code("AWS.SimpleQueueService.NonExistentQueue"));
        assert!(!is_stale_receipt_code("InvalidParameterValue"));
    }
}
