//! `Queue`: SQS semantics. Each suite takes a fresh, empty queue and the
//! settings it was created with (a short visibility timeout keeps the suites
//! quick: the tests below use 1 s and a `MaxReceiveCount` of 2). Suites that
//! wait for a timeout let time pass through `Time`: SQS keeps the wall
//! clock's time, so they sleep; the embedded queue keeps a `ManualClock`'s,
//! so they move it forward and take no time.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carepost::adapters::embedded::QueueSettings;
use carepost::ports::{ManualClock, Queue, QueueError, ReceivedMessage};

use super::support::unique;

/// How a suite lets time pass for the queue under test.
#[derive(Clone)]
pub enum Time {
    /// The queue reads the wall clock (SQS): sleep.
    Real,
    /// The queue reads this clock (the embedded queue): move it.
    Manual(Arc<ManualClock>),
}

impl Time {
    pub async fn pass(&self, by: Duration) {
        match self {
            Time::Real => tokio::time::sleep(by).await,
            Time::Manual(clock) => clock.advance(by),
        }
    }
}

/// A little longer than the visibility timeout, so a hidden message is visible again.
fn past(settings: QueueSettings) -> Duration {
    settings.visibility_timeout + Duration::from_millis(200)
}

async fn receive_now(queue: &dyn Queue, max: usize) -> Vec<ReceivedMessage> {
    queue.receive(max, Duration::ZERO).await.expect("receive")
}

async fn receive_one(queue: &dyn Queue) -> ReceivedMessage {
    let mut got = receive_now(queue, 10).await;
    assert_eq!(got.len(), 1, "expected exactly one visible message, got {got:?}");
    got.remove(0)
}

fn assert_stale(result: Result<(), QueueError>) {
    match result {
        Err(QueueError::StaleReceipt) => {}
        other => panic!("expected StaleReceipt, got {other:?}"),
    }
}

/// Runs every suite, each on a queue of its own from `fresh`.
pub async fn queue_contract<F, Fut>(mut fresh: F, settings: QueueSettings, time: &Time)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Arc<dyn Queue>>,
{
    sent_messages_are_received_once_each_and_gone_once_deleted(&*fresh().await).await;
    an_empty_batch_sends_nothing(&*fresh().await).await;
    a_received_message_stays_hidden_until_its_visibility_timeout_passes(&*fresh().await, settings, time).await;
    a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue(&*fresh().await, settings, time).await;
    redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count(&*fresh().await, settings, time).await;
    a_zero_visibility_timeout_makes_a_message_visible_at_once(&*fresh().await).await;
    a_longer_visibility_timeout_keeps_a_message_hidden(&*fresh().await, settings, time).await;
    a_stale_receipt_can_neither_delete_nor_change_visibility(&*fresh().await).await;
    a_batch_receive_returns_at_most_max_messages(&*fresh().await).await;
    a_delayed_message_stays_hidden_until_its_delay_passes(&*fresh().await, time).await;
    depth_counts_messages_in_flight_until_deleted(&*fresh().await).await;
    a_waiting_receive_returns_a_message_sent_during_the_wait(fresh().await).await;
    a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait(&*fresh().await).await;
}

pub async fn sent_messages_are_received_once_each_and_gone_once_deleted(queue: &dyn Queue) {
    let bodies: Vec<String> = (0..3).map(|i| format!("{{\"job\":{i}}}")).collect();
    queue.send_batch(&bodies).await.unwrap();

    let received = receive_now(queue, 10).await;

    let mut got: Vec<String> = received.iter().map(|m| m.body.expose().clone()).collect();
    got.sort();
    assert_eq!(got, bodies);
    assert!(received.iter().all(|m| m.receive_count == 1), "{received:?}");
    assert_eq!(received.iter().map(|m| &m.message_id).collect::<HashSet<_>>().len(), 3, "distinct message ids");
    assert_eq!(received.iter().map(|m| &m.receipt_handle).collect::<HashSet<_>>().len(), 3, "distinct receipts");
    for message in &received {
        queue.delete(&message.receipt_handle).await.unwrap();
    }
    assert_eq!(queue.depth().await.unwrap(), (0, 0));
    assert!(receive_now(queue, 10).await.is_empty());
}

pub async fn an_empty_batch_sends_nothing(queue: &dyn Queue) {
    queue.send_batch(&[]).await.unwrap();

    assert_eq!(queue.depth().await.unwrap(), (0, 0));
    assert!(receive_now(queue, 10).await.is_empty());
}

pub async fn a_received_message_stays_hidden_until_its_visibility_timeout_passes(
    queue: &dyn Queue,
    settings: QueueSettings,
    time: &Time,
) {
    queue.send_batch(&[unique("job")]).await.unwrap();
    let first = receive_one(queue).await;

    let while_hidden = receive_now(queue, 10).await;
    time.pass(past(settings)).await;
    let again = receive_one(queue).await;

    assert!(while_hidden.is_empty(), "an in-flight message was handed out twice: {while_hidden:?}");
    assert_eq!((&again.message_id, again.body.expose()), (&first.message_id, first.body.expose()));
    assert_eq!(again.receive_count, 2);
    assert_ne!(again.receipt_handle, first.receipt_handle, "each receive gets a new receipt");
    queue.delete(&again.receipt_handle).await.unwrap();
}

/// Returns the body it dead-lettered, for adapters that can list their DLQ.
pub async fn a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue(
    queue: &dyn Queue,
    settings: QueueSettings,
    time: &Time,
) -> String {
    let body = unique("poison");
    queue.send_batch(std::slice::from_ref(&body)).await.unwrap();
    for n in 1..=settings.max_receive_count {
        if n > 1 {
            time.pass(past(settings)).await;
        }
        let message = receive_one(queue).await;
        assert_eq!((message.body.expose().as_str(), message.receive_count), (body.as_str(), n));
    }
    time.pass(past(settings)).await;

    let after_the_last_receive = receive_now(queue, 10).await;

    assert!(after_the_last_receive.is_empty(), "delivered beyond MaxReceiveCount: {after_the_last_receive:?}");
    assert_eq!(queue.depth().await.unwrap(), (0, 1), "(queue, dead-letter queue)");
    body
}

/// Redrive (the operator's, and reconciliation's) brings back the chosen
/// dead-lettered messages, with all their receives ahead of them again.
pub async fn redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count(
    queue: &dyn Queue,
    settings: QueueSettings,
    time: &Time,
) {
    let (stays, back) = (unique("stays"), unique("back"));
    queue.send_batch(&[stays.clone(), back.clone()]).await.unwrap();
    for n in 1..=settings.max_receive_count {
        if n > 1 {
            time.pass(past(settings)).await;
        }
        assert_eq!(receive_now(queue, 10).await.len(), 2, "receive {n}");
    }
    time.pass(past(settings)).await;
    assert!(receive_now(queue, 10).await.is_empty(), "both are dead-lettered");
    let chosen = back.clone();
    let select = move |body: &str| body == chosen;
    if let Some(counted) = queue.dead_lettered(&select).await.unwrap() {
        assert_eq!(counted, 1, "a queue that counts by body counts the chosen one only");
    }

    let moved = queue.redrive(&select).await.unwrap();

    assert_eq!(moved, 1);
    let again = receive_one(queue).await;
    assert_eq!((again.body.expose().as_str(), again.receive_count), (back.as_str(), 1));
    queue.delete(&again.receipt_handle).await.unwrap();
    assert_eq!(queue.depth().await.unwrap(), (0, 1), "the other stays in the dead-letter queue");
    assert_eq!(queue.redrive(&select).await.unwrap(), 0, "nothing chosen is left to move");
}

pub async fn a_zero_visibility_timeout_makes_a_message_visible_at_once(queue: &dyn Queue) {
    queue.send_batch(&[unique("job")]).await.unwrap();
    let first = receive_one(queue).await;

    queue.change_visibility(&first.receipt_handle, Duration::ZERO).await.unwrap();
    let again = receive_one(queue).await;

    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.receive_count, 2);
}

pub async fn a_longer_visibility_timeout_keeps_a_message_hidden(
    queue: &dyn Queue,
    settings: QueueSettings,
    time: &Time,
) {
    queue.send_batch(&[unique("job")]).await.unwrap();
    let first = receive_one(queue).await;

    queue.change_visibility(&first.receipt_handle, Duration::from_secs(30)).await.unwrap();
    time.pass(past(settings)).await;

    assert!(receive_now(queue, 10).await.is_empty(), "visible again after the default timeout");
    assert_eq!(queue.depth().await.unwrap(), (1, 0), "still in flight");
    queue.delete(&first.receipt_handle).await.unwrap();
}

pub async fn a_stale_receipt_can_neither_delete_nor_change_visibility(queue: &dyn Queue) {
    queue.send_batch(&[unique("job")]).await.unwrap();
    let first = receive_one(queue).await;
    queue.change_visibility(&first.receipt_handle, Duration::ZERO).await.unwrap();
    let second = receive_one(queue).await;

    assert_stale(queue.delete(&first.receipt_handle).await);
    assert_stale(queue.change_visibility(&first.receipt_handle, Duration::ZERO).await);

    assert!(receive_now(queue, 10).await.is_empty(), "the stale receipt changed the visibility");
    queue.delete(&second.receipt_handle).await.unwrap();
    assert_stale(queue.delete(&second.receipt_handle).await);
    assert_eq!(queue.depth().await.unwrap(), (0, 0));
}

pub async fn a_batch_receive_returns_at_most_max_messages(queue: &dyn Queue) {
    let bodies: Vec<String> = (0..5).map(|_| unique("job")).collect();
    queue.send_batch(&bodies).await.unwrap();

    let first = receive_now(queue, 2).await;
    let rest = receive_now(queue, 10).await;

    assert_eq!(first.len(), 2);
    assert_eq!(rest.len(), 3);
    let all: HashSet<&String> = first.iter().chain(&rest).map(|m| m.body.expose()).collect();
    assert_eq!(all, bodies.iter().collect::<HashSet<_>>(), "each message exactly once");
}

pub async fn depth_counts_messages_in_flight_until_deleted(queue: &dyn Queue) {
    queue.send_batch(&[unique("job"), unique("job"), unique("job")]).await.unwrap();

    let in_flight = receive_one_of(queue).await;
    let while_in_flight = queue.depth().await.unwrap();
    queue.delete(&in_flight.receipt_handle).await.unwrap();

    assert_eq!(while_in_flight, (3, 0));
    assert_eq!(queue.depth().await.unwrap(), (2, 0));
}

async fn receive_one_of(queue: &dyn Queue) -> ReceivedMessage {
    let mut got = receive_now(queue, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

pub async fn a_waiting_receive_returns_a_message_sent_during_the_wait(queue: Arc<dyn Queue>) {
    let body = unique("late");
    let sender = {
        let (queue, body) = (queue.clone(), body.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            queue.send_batch(&[body]).await.unwrap();
        })
    };

    let got = queue.receive(10, Duration::from_millis(1_400)).await.unwrap();

    sender.await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.expose().as_str()).collect::<Vec<_>>(), vec![body.as_str()]);
}

pub async fn a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait(queue: &dyn Queue) {
    let wait = Duration::from_millis(300);
    let started = Instant::now();

    let got = queue.receive(10, wait).await.unwrap();

    assert!(got.is_empty());
    assert!(started.elapsed() >= wait - Duration::from_millis(50), "returned after {:?}", started.elapsed());
}

mod embedded {
    use std::sync::Arc;

    use carepost::adapters::embedded::{QueueSettings, SqliteQueue};
    use carepost::ports::{ManualClock, Queue};

    use super::super::support::{Scratch, scratch, unique};
    use super::Time;

    const SETTINGS: QueueSettings =
        QueueSettings { visibility_timeout: std::time::Duration::from_secs(1), max_receive_count: 2 };

    /// A fresh queue keeping the time of a clock only the test moves.
    fn queue() -> (Scratch, Arc<SqliteQueue>, Time) {
        let s = scratch();
        let clock = Arc::new(ManualClock::starting_now());
        let queue = Arc::new(SqliteQueue::new(s.db.clone(), &unique("send"), SETTINGS).with_clock(clock.clone()));
        (s, queue, Time::Manual(clock))
    }

    #[tokio::test]
    async fn sent_messages_are_received_once_each_and_gone_once_deleted() {
        let (_s, queue, _time) = queue();
        super::sent_messages_are_received_once_each_and_gone_once_deleted(&*queue).await;
    }

    #[tokio::test]
    async fn an_empty_batch_sends_nothing() {
        let (_s, queue, _time) = queue();
        super::an_empty_batch_sends_nothing(&*queue).await;
    }

    #[tokio::test]
    async fn a_received_message_stays_hidden_until_its_visibility_timeout_passes() {
        let (_s, queue, time) = queue();
        super::a_received_message_stays_hidden_until_its_visibility_timeout_passes(&*queue, SETTINGS, &time).await;
    }

    #[tokio::test]
    async fn a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue() {
        let (_s, queue, time) = queue();

        let body =
            super::a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue(&*queue, SETTINGS, &time)
                .await;

        assert_eq!(queue.dead_letters().await.unwrap(), vec![body]);
    }

    #[tokio::test]
    async fn redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count() {
        let (_s, queue, time) = queue();

        super::redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count(&*queue, SETTINGS, &time)
            .await;

        assert_eq!(queue.dead_letters().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_zero_visibility_timeout_makes_a_message_visible_at_once() {
        let (_s, queue, _time) = queue();
        super::a_zero_visibility_timeout_makes_a_message_visible_at_once(&*queue).await;
    }

    #[tokio::test]
    async fn a_longer_visibility_timeout_keeps_a_message_hidden() {
        let (_s, queue, time) = queue();
        super::a_longer_visibility_timeout_keeps_a_message_hidden(&*queue, SETTINGS, &time).await;
    }

    #[tokio::test]
    async fn a_stale_receipt_can_neither_delete_nor_change_visibility() {
        let (_s, queue, _time) = queue();
        super::a_stale_receipt_can_neither_delete_nor_change_visibility(&*queue).await;
    }

    #[tokio::test]
    async fn a_batch_receive_returns_at_most_max_messages() {
        let (_s, queue, _time) = queue();
        super::a_batch_receive_returns_at_most_max_messages(&*queue).await;
    }

    #[tokio::test]
    async fn depth_counts_messages_in_flight_until_deleted() {
        let (_s, queue, _time) = queue();
        super::depth_counts_messages_in_flight_until_deleted(&*queue).await;
    }

    #[tokio::test]
    async fn a_waiting_receive_returns_a_message_sent_during_the_wait() {
        let (_s, queue, _time) = queue();
        super::a_waiting_receive_returns_a_message_sent_during_the_wait(queue).await;
    }

    #[tokio::test]
    async fn a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait() {
        let (_s, queue, _time) = queue();
        super::a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait(&*queue).await;
    }

    #[tokio::test]
    async fn queues_sharing_one_database_do_not_see_each_others_messages() {
        let s = scratch();
        let (fanout, send) = (
            SqliteQueue::new(s.db.clone(), &unique("fanout"), SETTINGS),
            SqliteQueue::new(s.db.clone(), &unique("send"), SETTINGS),
        );

        fanout.send_batch(&[unique("shard")]).await.unwrap();

        assert!(send.receive(10, std::time::Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(send.depth().await.unwrap(), (0, 0));
        assert_eq!(fanout.depth().await.unwrap(), (1, 0));
    }

    #[tokio::test]
    async fn a_queue_reopened_on_the_same_file_still_holds_its_messages() {
        let s = scratch();
        let name = unique("send");
        let body = unique("durable");
        SqliteQueue::new(s.db.clone(), &name, SETTINGS).send_batch(std::slice::from_ref(&body)).await.unwrap();

        let got = SqliteQueue::new(s.reopen(), &name, SETTINGS).receive(10, std::time::Duration::ZERO).await.unwrap();

        assert_eq!(got.iter().map(|m| m.body.expose().as_str()).collect::<Vec<_>>(), vec![body.as_str()]);
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_fresh_queues_in_one_database() {
        let s = scratch();
        let db = s.db.clone();
        let clock = Arc::new(ManualClock::starting_now());

        super::queue_contract(
            || {
                let queue = SqliteQueue::new(db.clone(), &unique("send"), SETTINGS).with_clock(clock.clone());
                let queue: Arc<dyn Queue> = Arc::new(queue);
                async move { queue }
            },
            SETTINGS,
            &Time::Manual(clock.clone()),
        )
        .await;
    }
}

pub async fn a_delayed_message_stays_hidden_until_its_delay_passes(queue: &dyn Queue, time: &Time) {
    queue.send_delayed("later", Duration::from_secs(2)).await.unwrap();

    let early = queue.receive(10, Duration::ZERO).await.unwrap();
    time.pass(Duration::from_millis(2_500)).await;
    let late = queue.receive(10, Duration::from_secs(2)).await.unwrap();

    assert!(early.is_empty(), "visible before its delay");
    assert_eq!(late.iter().map(|m| m.body.expose().as_str()).collect::<Vec<_>>(), ["later"]);
}
