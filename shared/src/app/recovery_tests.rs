//! Stalled campaigns and their way back, on in-memory stores and a manual clock.

use std::time::Duration;

use crate::app::test_support::Harness;
use crate::domain::SendJob;
use crate::ports::{LedgerState, TransportErrorKind};

#[tokio::test]
async fn a_job_released_by_an_outage_is_stalled_once_its_retries_are_over_and_reconciliation_sends_it_once() {
    let h = Harness::new();
    let contact = h.patient("jane.outage@example.org", &["wellness-tips"]).await;
    let id = h.sending_campaign("wellness-tips").await;
    let job = SendJob { campaign_id: id, contact_id: contact };
    h.transport.fail_next(&[TransportErrorKind::Transient]);
    assert!(h.app.sender.process(&job).await.is_err(), "the outage releases the claim");

    let while_retrying = h.app.lifecycle.stalled(&id).await.unwrap();
    // Past the claim's lease (a visibility timeout) and the longest back-off after it.
    h.clock.advance(h.app.lifecycle.reconcile_interval() + h.app.settings.throughput.visibility_timeout() * 2);
    let stalled = h.app.lifecycle.stalled(&id).await.unwrap().expect("stalled once no retry can be waiting");
    let requeued = h.app.lifecycle.reconcile(&id).await.unwrap();
    let jobs = Harness::queued(&h.send_queue).await;
    h.app.sender.process(&SendJob::parse(&jobs[0]).unwrap()).await.unwrap();
    let again = h.app.sender.process(&SendJob::parse(&jobs[0]).unwrap()).await.unwrap();

    assert_eq!(while_retrying, None, "a job still in its back-off is not stalled");
    assert_eq!(stalled.stranded, 1);
    assert!(stalled.reason.contains("carepost campaign redrive"), "{}", stalled.reason);
    assert_eq!(requeued, 1);
    assert_eq!(jobs.len(), 1);
    assert_eq!(again, crate::app::send::SendOutcome::AlreadyDone, "a repeated job is not sent again");
    assert_eq!(h.transport.accepted().len(), 1, "exactly one email");
    assert!(matches!(h.ledger().state(&id, &contact).await.unwrap(), Some(LedgerState::Sent { .. })));
    assert_eq!(h.app.lifecycle.stalled(&id).await.unwrap(), None);
}

#[tokio::test]
async fn redrive_requeues_a_stranded_row_at_once_and_a_sent_row_never() {
    let h = Harness::new();
    let sent = h.patient("sam.sent@example.org", &["wellness-tips"]).await;
    let stuck = h.patient("ana.stuck@example.org", &["wellness-tips"]).await;
    let id = h.sending_campaign("wellness-tips").await;
    h.app.sender.process(&SendJob { campaign_id: id, contact_id: sent }).await.unwrap();
    h.transport.fail_next(&[TransportErrorKind::Transient]);
    let _ = h.app.sender.process(&SendJob { campaign_id: id, contact_id: stuck }).await;
    h.clock.advance(Duration::from_secs(1));

    let outcome = h.app.lifecycle.redrive(&id).await.unwrap();
    let jobs: Vec<SendJob> =
        Harness::queued(&h.send_queue).await.iter().filter_map(|b| SendJob::parse(b).ok()).collect();

    assert_eq!(outcome.requeued, 1);
    assert_eq!(jobs, vec![SendJob { campaign_id: id, contact_id: stuck }]);
}
