//! Fan-out's branches on in-memory stores: exclusions by reason, and a
//! shard that runs out of time handing itself back to the queue.

use std::time::Instant;

use super::ShardOutcome;
use crate::app::test_support::Harness;
use crate::domain::{CampaignId, FanoutMessage, FanoutShardJob, SendJob};
use crate::ports::SuppressionReason;

async fn launched(h: &Harness) -> (CampaignId, FanoutShardJob) {
    let input = serde_json::from_value(serde_json::json!({
        "name": "Fan", "category": "wellness-tips", "segment": {"exists": {"attr": "date_of_birth"}},
        "template": {"subject": "News", "html": "<p>Hello</p>", "text": "Hello"}
    }))
    .unwrap();
    let id = h.app.campaigns.create(input).await.unwrap();
    h.app.lifecycle.launch(&id).await.unwrap();
    let bodies = Harness::queued(&h.fanout_queue).await;
    let job = bodies
        .iter()
        .find_map(|b| match FanoutMessage::parse(b) {
            Ok(FanoutMessage::Shard(job)) => Some(job),
            _ => None,
        })
        .expect("a shard job");
    (id, job)
}

#[tokio::test]
async fn fan_out_emits_only_consented_unsuppressed_contacts_and_counts_the_rest_by_reason() {
    let h = Harness::with(|s| s.throughput.fanout_shards = 1, |p| p);
    let included = h.patient("yes.probe@example.org", &["wellness-tips"]).await;
    h.patient("no-consent.probe@example.org", &[]).await;
    let suppressed = h.patient("suppressed.probe@example.org", &["wellness-tips"]).await;
    let record = h.app.ports.contacts.get(&suppressed).await.unwrap().unwrap();
    h.app.ports.suppression.suppress(&record.email_index, SuppressionReason::HardBounce).await.unwrap();
    let (campaign, job) = launched(&h).await;

    let outcome = h.app.fanout.process_shard(&job, None).await.unwrap();

    assert_eq!(outcome, ShardOutcome::Done);
    let jobs: Vec<SendJob> = Harness::queued(&h.send_queue).await.iter().map(|b| SendJob::parse(b).unwrap()).collect();
    assert_eq!(jobs, vec![SendJob { campaign_id: campaign, contact_id: included }]);
    let report = h.app.reports.campaign_report(&campaign).await.unwrap();
    assert_eq!((report.evaluated, report.audience), (3, 1));
    assert_eq!((report.excluded.no_consent, report.excluded.suppressed), (1, 1));
}

#[tokio::test]
async fn a_shard_out_of_time_hands_itself_back_to_the_queue_and_emits_nothing() {
    let h = Harness::with(|s| s.throughput.fanout_shards = 1, |p| p);
    h.patient("yes.probe@example.org", &["wellness-tips"]).await;
    let (_, job) = launched(&h).await;
    let before = Harness::queued(&h.fanout_queue).await.len();

    let outcome = h.app.fanout.process_shard(&job, Some(Instant::now())).await.unwrap();

    assert_eq!(outcome, ShardOutcome::Continued);
    assert_eq!(Harness::queued(&h.fanout_queue).await.len(), before + 1);
    assert!(Harness::queued(&h.send_queue).await.is_empty());
}
