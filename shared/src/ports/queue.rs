//! Port: queues.

use super::*;

/// The longest delay a message can be sent with (SQS: 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// `Sensitive`: the events queue carries SES events, with the recipient's
    /// address and the subject.
    pub body: crate::domain::Sensitive<String>,
    pub receipt_handle: String,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
}

/// A queue with SQS semantics: at-least-once, visibility timeout, receive
/// count, and a dead-letter queue after `MaxReceiveCount` receives.
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send_batch(&self, bodies: &[String]) -> Result<(), QueueError>;
    /// Sends one message that becomes visible only after `delay`, at most
    /// `MAX_DELAY` (SQS's limit); longer waits are the caller's to chain.
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<(), QueueError>;
    /// Up to `max` visible messages, waiting up to `wait` for the first one.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;
    /// Makes a received message visible again after `timeout` (back-off).
    async fn change_visibility(&self, receipt_handle: &str, timeout: Duration) -> Result<(), QueueError>;
    /// Approximate number of messages: (visible or in flight, in the dead-letter queue).
    async fn depth(&self) -> Result<(u64, u64), QueueError>;
    /// Moves the dead-letter queue's messages whose body `select` accepts
    /// back into this queue, visible at once with a fresh receive count;
    /// returns how many moved. Others stay where they are.
    async fn redrive(&self, select: &BodyFilter) -> Result<u64, QueueError>;
    /// How many dead-lettered messages `select` accepts, where the queue can
    /// tell without receiving them (`None` on SQS: only its depth is known).
    async fn dead_lettered(&self, select: &BodyFilter) -> Result<Option<u64>, QueueError>;
}

/// Picks messages by body (a job's campaign, say).
pub type BodyFilter = dyn Fn(&str) -> bool + Send + Sync;
