//! The campaign lifecycle on in-memory stores and a manual clock: a
//! scheduled launch waits for its time without anyone sleeping.

use std::time::Duration;

use crate::app::test_support::Harness;
use crate::domain::{CampaignStatus, FanoutMessage};
use crate::ports::Clock;

#[tokio::test]
async fn a_scheduled_campaign_waits_for_its_time_then_fans_out() {
    let h = Harness::new();
    let launch_at = h.clock.now() + Duration::from_secs(3600);
    let at = launch_at.format(&time::format_description::well_known::Rfc3339).unwrap();
    let input = serde_json::from_value(serde_json::json!({
        "name": "Later", "category": "wellness-tips", "segment": {"exists": {"attr": "date_of_birth"}},
        "template": {"subject": "News", "html": "<p>Hello</p>", "text": "Hello"}, "launch_at": at
    }))
    .unwrap();
    let id = h.app.campaigns.create(input).await.unwrap();

    let launched = h.app.lifecycle.launch(&id).await.unwrap();
    let again = h.app.lifecycle.launch(&id).await.unwrap_err();
    let early = h.app.lifecycle.process_scheduled_launch(&id).await.unwrap();
    h.clock.advance(Duration::from_secs(3601));
    let on_time = h.app.lifecycle.process_scheduled_launch(&id).await.unwrap();

    assert_eq!(
        (launched, early, on_time),
        (CampaignStatus::Scheduled, CampaignStatus::Scheduled, CampaignStatus::FanningOut)
    );
    assert!(
        matches!(&again, crate::app::AppError::Conflict(m) if m.contains("already launched (it is scheduled)")),
        "a second launch is a conflict: {again:?}"
    );
    let shards = Harness::queued(&h.fanout_queue).await;
    let shard_jobs = shards.iter().filter(|b| matches!(FanoutMessage::parse(b), Ok(FanoutMessage::Shard(_)))).count();
    assert_eq!(shard_jobs, usize::from(h.app.settings.throughput.fanout_shards));
}

#[tokio::test]
async fn a_fanned_out_campaign_completes_only_when_every_job_is_settled() {
    let h = Harness::new();
    let (id, jobs) = fanned_out_to_two(&h).await;
    let again = h.app.lifecycle.launch(&id).await;
    assert!(matches!(again, Err(crate::app::AppError::Conflict(_))), "no second fan-out: {again:?}");
    assert_eq!(jobs.len(), 2);
    let first = crate::domain::SendJob::parse(&jobs[0]).unwrap();

    h.app.sender.process(&first).await.unwrap();
    let after_one = h.app.lifecycle.advance(&id).await.unwrap();
    h.app.sender.process(&crate::domain::SendJob::parse(&jobs[1]).unwrap()).await.unwrap();
    let after_both = h.app.lifecycle.advance(&id).await.unwrap();

    assert_eq!((after_one, after_both), (CampaignStatus::Sending, CampaignStatus::Completed));
}

/// A launched, fanned-out campaign to two patients; its send jobs.
async fn fanned_out_to_two(h: &Harness) -> (crate::domain::CampaignId, Vec<String>) {
    h.patient("jane.probe@example.org", &["wellness-tips"]).await;
    h.patient("sam.probe@example.org", &["wellness-tips"]).await;
    let input = serde_json::from_value(serde_json::json!({
        "name": "Now", "category": "wellness-tips", "segment": {"exists": {"attr": "date_of_birth"}},
        "template": {"subject": "News", "html": "<p>Hello</p>", "text": "Hello"}
    }))
    .unwrap();
    let id = h.app.campaigns.create(input).await.unwrap();
    h.app.lifecycle.launch(&id).await.unwrap();
    for body in Harness::queued(&h.fanout_queue).await {
        if let Ok(FanoutMessage::Shard(job)) = FanoutMessage::parse(&body) {
            h.app.fanout.process_shard(&job, None).await.unwrap();
        }
    }
    (id, Harness::queued(&h.send_queue).await)
}

async fn settled_tally(h: &Harness, id: &crate::domain::CampaignId) -> u64 {
    let counters = h.app.ports.campaigns.counters(id).await.unwrap();
    counters.iter().find(|(c, _)| *c == crate::domain::CampaignCounter::Settled).map_or(0, |(_, n)| *n)
}

#[tokio::test]
async fn the_batch_that_settles_the_last_job_completes_the_campaign_through_the_senders_tally() {
    let h = Harness::new();
    let (id, jobs) = fanned_out_to_two(&h).await;
    assert_eq!(jobs.len(), 2);

    let handled = h.work_send_queue().await;

    assert_eq!(handled, 2);
    assert_eq!(settled_tally(&h, &id).await, 2);
    let status = h.app.ports.campaigns.get(&id).await.unwrap().unwrap().status;
    assert_eq!(status, CampaignStatus::Completed);
}

#[tokio::test]
async fn a_tally_short_of_the_jobs_emitted_leaves_completion_to_the_full_count() {
    let h = Harness::new();
    let (id, jobs) = fanned_out_to_two(&h).await;
    // Both sent, but one as a process that died before writing its batch's tally.
    let mut lost = crate::app::BatchCounts::default();
    h.app.sender.process_counting(&crate::domain::SendJob::parse(&jobs[0]).unwrap(), &mut lost).await.unwrap();
    h.app.sender.process(&crate::domain::SendJob::parse(&jobs[1]).unwrap()).await.unwrap();

    let after_batch = h.app.lifecycle.advance_after_batch(&id).await.unwrap();
    let counted = h.app.lifecycle.advance(&id).await.unwrap();

    assert_eq!(settled_tally(&h, &id).await, 1);
    assert_eq!((after_batch, counted), (CampaignStatus::Sending, CampaignStatus::Completed));
}
