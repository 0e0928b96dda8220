//! `CampaignStore`: campaign records with conditional status transitions,
//! per-shard fan-out progress and event counters.

use std::collections::HashMap;

use carepost::domain::{CampaignCounter, CampaignId, CampaignStatus, ExclusionCounts, ShardProgress};
use carepost::ports::{CampaignCursor, CampaignRecord, CampaignStore, StoreError};

use super::support::T0;

fn campaign() -> CampaignRecord {
    CampaignRecord {
        id: CampaignId::new_random(),
        definition: r#"{"name":"Flu shots 2030","category":"flu-shots"}"#.to_owned(),
        status: CampaignStatus::Draft,
        shards: 4,
        created_at: T0,
        paused_reason: None,
    }
}

fn progress(shard: u16, emitted: u64, done: bool) -> ShardProgress {
    ShardProgress {
        shard,
        cursor: Some(format!("cursor-{shard}-{emitted}")),
        done,
        evaluated: emitted + 3,
        emitted,
        excluded: ExclusionCounts { no_consent: 2, suppressed: 1, ..Default::default() },
    }
}

/// Every counter's value, with counters never incremented read as zero.
async fn counter_values(store: &dyn CampaignStore, id: &CampaignId) -> HashMap<CampaignCounter, u64> {
    let mut values: HashMap<CampaignCounter, u64> = CampaignCounter::ALL.iter().map(|c| (*c, 0)).collect();
    for (counter, value) in store.counters(id).await.unwrap() {
        *values.get_mut(&counter).expect("known counter") += value;
    }
    values
}

async fn sorted_shards(store: &dyn CampaignStore, id: &CampaignId) -> Vec<ShardProgress> {
    let mut shards = store.shards(id).await.unwrap();
    shards.sort_by_key(|p| p.shard);
    shards
}

pub async fn campaign_store_contract(store: &dyn CampaignStore) {
    a_created_campaign_reads_back_unchanged(store).await;
    an_unknown_campaign_is_none(store).await;
    creating_a_campaign_twice_is_a_conflict_and_keeps_the_first(store).await;
    a_transition_from_the_current_status_moves_it(store).await;
    a_transition_from_another_status_changes_nothing(store).await;
    a_transition_of_an_unknown_campaign_changes_nothing(store).await;
    saving_a_shard_again_replaces_its_progress(store).await;
    increments_accumulate_per_counter_and_campaign(store).await;
    pausing_moves_a_running_campaign_and_records_why(store).await;
    window_counters_sum_the_buckets_from_the_one_given(store).await;
    the_list_is_newest_first_in_pages_that_meet_exactly(store).await;
}

/// Later than any other campaign of the suite, so these three are the newest.
async fn the_list_is_newest_first_in_pages_that_meet_exactly(store: &dyn CampaignStore) {
    let later = T0 + time::Duration::days(3650);
    let mut made = Vec::new();
    for (i, at) in
        [later, later + time::Duration::seconds(5), later + time::Duration::seconds(5)].into_iter().enumerate()
    {
        let record = CampaignRecord {
            created_at: at,
            definition: format!(r#"{{"name":"List {i}","category":"c"}}"#),
            ..campaign()
        };
        store.create(&record).await.unwrap();
        made.push(record);
    }
    // Newest first; a tie in time is broken by the ID, highest first.
    let mut expected = made.clone();
    expected.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id.to_string())));

    let first = store.list(None, 2).await.unwrap();
    let cursor = first.next.expect("a full page says where the next starts");
    let second = store.list(Some(cursor), 2).await.unwrap();

    assert_eq!(first.campaigns, expected[..2].to_vec());
    assert_eq!(CampaignCursor::parse(&cursor.to_string()), Some(cursor), "the cursor's text reads back");
    assert_eq!(second.campaigns.first(), Some(&expected[2]), "the next page starts right after the cursor");
    assert!(second.campaigns.iter().skip(1).all(|c| c.created_at < later), "then the older campaigns");
}

pub async fn pausing_moves_a_running_campaign_and_records_why(store: &dyn CampaignStore) {
    let (draft, running) = (campaign(), campaign());
    store.create(&draft).await.unwrap();
    store.create(&running).await.unwrap();
    store.transition(&running.id, CampaignStatus::Draft, CampaignStatus::Sending).await.unwrap();

    let paused = store.pause(&running.id, "bounce rate 7.5% over the last hour passed 5%").await.unwrap();
    let again = store.pause(&running.id, "a second reason").await.unwrap();
    let draft_paused = store.pause(&draft.id, "not running").await.unwrap();

    assert!(paused && !again && !draft_paused);
    let stored = store.get(&running.id).await.unwrap().unwrap();
    assert_eq!(stored.status, CampaignStatus::Paused);
    assert_eq!(stored.paused_reason.as_deref(), Some("bounce rate 7.5% over the last hour passed 5%"));
    let draft = store.get(&draft.id).await.unwrap().unwrap();
    assert_eq!((draft.status, draft.paused_reason), (CampaignStatus::Draft, None));
    assert!(store.transition(&running.id, CampaignStatus::Paused, CampaignStatus::Sending).await.unwrap());
}

pub async fn window_counters_sum_the_buckets_from_the_one_given(store: &dyn CampaignStore) {
    let (record, other) = (campaign(), campaign());
    store.create(&record).await.unwrap();
    store.create(&other).await.unwrap();
    let id = record.id;

    store.increment_window(&id, CampaignCounter::Delivered, 99, 50).await.unwrap();
    store.increment_window(&id, CampaignCounter::Delivered, 100, 3).await.unwrap();
    store.increment_window(&id, CampaignCounter::Delivered, 101, 4).await.unwrap();
    store.increment_window(&id, CampaignCounter::BouncedHard, 101, 1).await.unwrap();
    store.increment_window(&id, CampaignCounter::BouncedHard, 101, 1).await.unwrap();
    store.increment_window(&other.id, CampaignCounter::Delivered, 101, 9).await.unwrap();

    let both = [CampaignCounter::Delivered, CampaignCounter::BouncedHard];
    let window: HashMap<CampaignCounter, u64> = store.window(&id, &both, 100).await.unwrap().into_iter().collect();
    let everything: HashMap<CampaignCounter, u64> = store.window(&id, &both, 0).await.unwrap().into_iter().collect();
    let bounces_only = store.window(&id, &[CampaignCounter::BouncedHard], 0).await.unwrap();
    assert_eq!(window, HashMap::from([(CampaignCounter::Delivered, 7), (CampaignCounter::BouncedHard, 2)]));
    assert_eq!(everything[&CampaignCounter::Delivered], 57);
    assert_eq!(bounces_only, vec![(CampaignCounter::BouncedHard, 2)]);
    assert!(store.window(&id, &both, 102).await.unwrap().is_empty());
    assert_eq!(
        store.window_buckets(&id).await.unwrap(),
        vec![
            (99, CampaignCounter::Delivered, 50),
            (100, CampaignCounter::Delivered, 3),
            (101, CampaignCounter::BouncedHard, 2),
            (101, CampaignCounter::Delivered, 4),
        ],
        "in bucket order, then by counter name"
    );
}

pub async fn a_created_campaign_reads_back_unchanged(store: &dyn CampaignStore) {
    let record = campaign();

    store.create(&record).await.unwrap();

    assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
}

pub async fn an_unknown_campaign_is_none(store: &dyn CampaignStore) {
    let id = CampaignId::new_random();

    assert_eq!(store.get(&id).await.unwrap(), None);
    assert!(store.shards(&id).await.unwrap().is_empty());
    assert!(counter_values(store, &id).await.values().all(|&v| v == 0));
}

pub async fn creating_a_campaign_twice_is_a_conflict_and_keeps_the_first(store: &dyn CampaignStore) {
    let first = campaign();
    store.create(&first).await.unwrap();
    let second = CampaignRecord {
        definition: r#"{"name":"overwritten"}"#.to_owned(),
        status: CampaignStatus::Sending,
        ..first.clone()
    };

    let result = store.create(&second).await;

    assert!(matches!(result, Err(StoreError::Conflict(_))), "expected a Conflict, got {result:?}");
    assert_eq!(store.get(&first.id).await.unwrap(), Some(first));
}

pub async fn a_transition_from_the_current_status_moves_it(store: &dyn CampaignStore) {
    let record = campaign();
    store.create(&record).await.unwrap();

    let launched = store.transition(&record.id, CampaignStatus::Draft, CampaignStatus::FanningOut).await.unwrap();
    let sending = store.transition(&record.id, CampaignStatus::FanningOut, CampaignStatus::Sending).await.unwrap();

    assert!(launched && sending);
    let stored = store.get(&record.id).await.unwrap().unwrap();
    assert_eq!(stored, CampaignRecord { status: CampaignStatus::Sending, ..record });
}

pub async fn a_transition_from_another_status_changes_nothing(store: &dyn CampaignStore) {
    let record = campaign();
    store.create(&record).await.unwrap();
    assert!(store.transition(&record.id, CampaignStatus::Draft, CampaignStatus::FanningOut).await.unwrap());

    // A second launch races the first: its expected status is stale.
    let again = store.transition(&record.id, CampaignStatus::Draft, CampaignStatus::FanningOut).await.unwrap();
    let skip = store.transition(&record.id, CampaignStatus::Sending, CampaignStatus::Completed).await.unwrap();

    assert!(!again, "transition from a status the campaign has left");
    assert!(!skip, "transition from a status the campaign has not reached");
    assert_eq!(store.get(&record.id).await.unwrap().unwrap().status, CampaignStatus::FanningOut);
}

pub async fn a_transition_of_an_unknown_campaign_changes_nothing(store: &dyn CampaignStore) {
    let id = CampaignId::new_random();

    let moved = store.transition(&id, CampaignStatus::Draft, CampaignStatus::FanningOut).await.unwrap();

    assert!(!moved);
    assert_eq!(store.get(&id).await.unwrap(), None, "a transition must not create a campaign");
}

pub async fn saving_a_shard_again_replaces_its_progress(store: &dyn CampaignStore) {
    let (record, other) = (campaign(), campaign());
    store.create(&record).await.unwrap();
    store.create(&other).await.unwrap();
    store.save_shard(&record.id, &progress(0, 10, false)).await.unwrap();
    store.save_shard(&record.id, &progress(1, 7, true)).await.unwrap();
    store.save_shard(&other.id, &progress(0, 99, true)).await.unwrap();

    store.save_shard(&record.id, &progress(0, 25, true)).await.unwrap();

    assert_eq!(sorted_shards(store, &record.id).await, vec![progress(0, 25, true), progress(1, 7, true)]);
    assert_eq!(sorted_shards(store, &other.id).await, vec![progress(0, 99, true)]);
}

pub async fn increments_accumulate_per_counter_and_campaign(store: &dyn CampaignStore) {
    let (record, other) = (campaign(), campaign());
    store.create(&record).await.unwrap();
    store.create(&other).await.unwrap();

    store.increment(&record.id, CampaignCounter::Delivered, 1).await.unwrap();
    store.increment(&record.id, CampaignCounter::Delivered, 2).await.unwrap();
    store.increment(&record.id, CampaignCounter::Opened, 5).await.unwrap();
    store.increment(&other.id, CampaignCounter::Delivered, 40).await.unwrap();

    let values = counter_values(store, &record.id).await;
    assert_eq!(values[&CampaignCounter::Delivered], 3);
    assert_eq!(values[&CampaignCounter::Opened], 5);
    let rest: u64 = values
        .iter()
        .filter(|(c, _)| !matches!(c, CampaignCounter::Delivered | CampaignCounter::Opened))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(rest, 0, "counters never incremented read as zero: {values:?}");
    assert_eq!(counter_values(store, &other.id).await[&CampaignCounter::Delivered], 40);
}

mod embedded {
    use carepost::adapters::embedded::SqliteCampaignStore;

    use super::super::support::{Scratch, scratch};

    fn store() -> (Scratch, SqliteCampaignStore) {
        let s = scratch();
        let store = SqliteCampaignStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn a_created_campaign_reads_back_unchanged() {
        let (_s, store) = store();
        super::a_created_campaign_reads_back_unchanged(&store).await;
    }

    #[tokio::test]
    async fn an_unknown_campaign_is_none() {
        let (_s, store) = store();
        super::an_unknown_campaign_is_none(&store).await;
    }

    #[tokio::test]
    async fn creating_a_campaign_twice_is_a_conflict_and_keeps_the_first() {
        let (_s, store) = store();
        super::creating_a_campaign_twice_is_a_conflict_and_keeps_the_first(&store).await;
    }

    #[tokio::test]
    async fn a_transition_from_the_current_status_moves_it() {
        let (_s, store) = store();
        super::a_transition_from_the_current_status_moves_it(&store).await;
    }

    #[tokio::test]
    async fn a_transition_from_another_status_changes_nothing() {
        let (_s, store) = store();
        super::a_transition_from_another_status_changes_nothing(&store).await;
    }

    #[tokio::test]
    async fn a_transition_of_an_unknown_campaign_changes_nothing() {
        let (_s, store) = store();
        super::a_transition_of_an_unknown_campaign_changes_nothing(&store).await;
    }

    #[tokio::test]
    async fn saving_a_shard_again_replaces_its_progress() {
        let (_s, store) = store();
        super::saving_a_shard_again_replaces_its_progress(&store).await;
    }

    #[tokio::test]
    async fn increments_accumulate_per_counter_and_campaign() {
        let (_s, store) = store();
        super::increments_accumulate_per_counter_and_campaign(&store).await;
    }

    #[tokio::test]
    async fn pausing_moves_a_running_campaign_and_records_why() {
        let (_s, store) = store();
        super::pausing_moves_a_running_campaign_and_records_why(&store).await;
    }

    #[tokio::test]
    async fn window_counters_sum_the_buckets_from_the_one_given() {
        let (_s, store) = store();
        super::window_counters_sum_the_buckets_from_the_one_given(&store).await;
    }

    #[tokio::test]
    async fn the_list_is_newest_first_in_pages_that_meet_exactly() {
        let (_s, store) = store();
        super::the_list_is_newest_first_in_pages_that_meet_exactly(&store).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_store() {
        let (_s, store) = store();
        super::campaign_store_contract(&store).await;
    }
}
