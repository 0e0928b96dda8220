//! Retention on the embedded store (DynamoDB's TTL does this in AWS): the
//! sweeper removes send-ledger rows, their event marks and contact activity
//! past the period, and never suppression (nor consent evidence, audit log
//! or campaign totals: its statements name only the three swept tables).

use std::time::Duration;

use carepost::adapters::embedded::{SqliteActivityStore, SqliteSendLedger, SqliteSuppressionList, Swept};
use carepost::domain::{CampaignCounter, CampaignId, ContactId, ProviderMessageId};
use carepost::ports::{
    ActivityStore, ClaimOutcome, Engagement, LedgerState, SendLedger, SuppressionList, SuppressionReason,
};

use super::support::{scratch, unique_index};

const DAY: Duration = Duration::from_secs(24 * 3600);
const RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);

async fn sent_row(ledger: &SqliteSendLedger, campaign: &CampaignId, contact: &ContactId, at: time::OffsetDateTime) {
    let ClaimOutcome::Claimed { attempt } = ledger.claim(campaign, contact, at, DAY).await.unwrap() else {
        panic!("fresh claim")
    };
    let sent = LedgerState::Sent { provider_message_id: ProviderMessageId::new(format!("m-{contact}")) };
    ledger.settle(campaign, contact, attempt, &sent).await.unwrap();
    assert!(ledger.first_event(campaign, contact, CampaignCounter::Delivered).await.unwrap());
}

#[tokio::test]
async fn the_sweeper_removes_expired_ledger_rows_and_activity_and_keeps_suppression() {
    let s = scratch();
    let ledger = SqliteSendLedger::new(s.db.clone());
    let activity = SqliteActivityStore::new(s.db.clone());
    let suppression = SqliteSuppressionList::new(s.db.clone());
    let campaign = CampaignId::new_random();
    let (old, fresh) = (ContactId::new_random(), ContactId::new_random());
    let now = time::OffsetDateTime::now_utc();
    // settle() stamps rows with the real clock: sweep as if 401 days had passed.
    sent_row(&ledger, &campaign, &old, now).await;
    activity.record_engagement(&old, Engagement::Open, now, now + RETENTION).await.unwrap();
    let old_index = unique_index();
    suppression.suppress(&old_index, SuppressionReason::HardBounce).await.unwrap();
    let later = now + RETENTION + DAY;
    sent_row(&ledger, &campaign, &fresh, now).await;

    let nothing = s.db.sweep_expired(now + DAY, RETENTION).await.unwrap();
    let swept = s.db.sweep_expired(later, RETENTION).await.unwrap();

    assert_eq!(nothing, Swept::default(), "nothing is due a day after");
    assert_eq!(swept, Swept { ledger_rows: 2, activity_rows: 1 });
    assert_eq!(ledger.state(&campaign, &old).await.unwrap(), None);
    assert_eq!(activity.activity(&old).await.unwrap(), None);
    assert_eq!(suppression.reason(&old_index).await.unwrap(), Some(SuppressionReason::HardBounce));
    // The event marks went with their rows: a re-created row counts afresh.
    sent_row(&ledger, &campaign, &old, later).await;
}
