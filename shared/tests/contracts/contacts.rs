//! `ContactStore`: records keyed by ID, unique by email index and external
//! ID, scanned in disjoint shards with opaque cursors. Every suite creates its
//! own contacts, so the suites may share one store that already holds rows.

use std::collections::HashMap;

use carepost::domain::{ContactId, ExternalId};
use carepost::ports::{ContactRecord, ContactStore, ScanPage, ShardSpec, StoreError};
use time::Duration;

use super::support::{T0, unique, unique_index};

/// A contact with a unique email index and external ID.
pub fn contact(id: ContactId) -> ContactRecord {
    ContactRecord {
        id,
        external_id: Some(ExternalId::parse(&unique("crm")).expect("valid external id")),
        email_index: unique_index(),
        sealed: [b"sealed:".as_slice(), id.as_bytes()].concat(),
        updated_at: T0,
    }
}

/// Every page of one shard, following the cursors until the store says the
/// shard is exhausted; checks that each page honours the limit.
async fn scan_pages(store: &dyn ContactStore, shard: ShardSpec, limit: usize) -> Vec<ScanPage> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100_000 {
        let page = store.scan_shard(shard, cursor.as_deref(), limit).await.expect("scan_shard");
        assert!(page.records.len() <= limit, "a page of {} exceeds the limit {limit}", page.records.len());
        let next = page.next.clone();
        pages.push(page);
        match next {
            None => return pages,
            Some(next) => {
                assert_ne!(Some(&next), cursor.as_ref(), "the cursor of {shard:?} did not move");
                cursor = Some(next);
            }
        }
    }
    panic!("scan of {shard:?} never ended");
}

async fn scan_all(store: &dyn ContactStore, shard: ShardSpec, limit: usize) -> Vec<ContactRecord> {
    scan_pages(store, shard, limit).await.into_iter().flat_map(|p| p.records).collect()
}

/// How often each contact was returned by a full scan split `total` ways.
async fn scan_counts(store: &dyn ContactStore, total: u16, limit: usize) -> HashMap<ContactId, usize> {
    let mut seen: HashMap<ContactId, usize> = HashMap::new();
    for index in 0..total {
        for record in scan_all(store, ShardSpec { index, total }, limit).await {
            *seen.entry(record.id).or_default() += 1;
        }
    }
    seen
}

fn assert_conflict(result: Result<(), StoreError>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

pub async fn contact_store_contract(store: &dyn ContactStore) {
    a_stored_contact_reads_back_unchanged(store).await;
    an_unknown_contact_is_not_found_by_any_key(store).await;
    a_contact_is_found_by_its_email_index_and_its_external_id(store).await;
    a_second_contact_with_the_same_email_index_is_a_conflict(store).await;
    a_second_contact_with_the_same_external_id_is_a_conflict(store).await;
    contacts_without_an_external_id_do_not_conflict(store).await;
    putting_a_contact_again_updates_it_in_place(store).await;
    paging_through_every_shard_sees_each_contact_exactly_once(store).await;
    resuming_from_a_saved_cursor_returns_the_same_next_page(store).await;
    a_deleted_contact_is_gone_by_every_key_and_frees_them(store).await;
    resealing_replaces_only_the_sealed_bytes_it_expected(store).await;
}

pub async fn resealing_replaces_only_the_sealed_bytes_it_expected(store: &dyn ContactStore) {
    let original = contact(ContactId::new_random());
    store.put(&original).await.unwrap();
    let resealed = b"sealed under the rotated key".to_vec();

    let replaced = store.replace_sealed(&original.id, &original.sealed, &resealed).await.unwrap();
    let stale = store.replace_sealed(&original.id, &original.sealed, b"an older re-seal").await.unwrap();
    let missing = store.replace_sealed(&ContactId::new_random(), &original.sealed, &resealed).await.unwrap();

    assert_eq!((replaced, stale, missing), (true, false, false));
    let stored = store.get(&original.id).await.unwrap().unwrap();
    assert_eq!(stored, ContactRecord { sealed: resealed, ..original.clone() }, "only the sealed bytes change");
    assert_eq!(store.find_by_email_index(&original.email_index).await.unwrap().map(|r| r.id), Some(original.id));
}

pub async fn a_deleted_contact_is_gone_by_every_key_and_frees_them(store: &dyn ContactStore) {
    let gone = contact(ContactId::new_random());
    store.put(&gone).await.unwrap();

    let deleted = store.delete(&gone.id).await.unwrap();
    let again = store.delete(&gone.id).await.unwrap();

    assert_eq!((deleted, again), (true, false));
    assert_eq!(store.get(&gone.id).await.unwrap(), None);
    assert_eq!(store.find_by_email_index(&gone.email_index).await.unwrap(), None);
    assert_eq!(store.find_by_external_id(gone.external_id.as_ref().unwrap()).await.unwrap(), None);
    // Its email index and external ID are free for a new contact.
    let successor = ContactRecord { id: ContactId::new_random(), ..gone.clone() };
    store.put(&successor).await.unwrap();
    assert_eq!(store.find_by_email_index(&gone.email_index).await.unwrap().map(|r| r.id), Some(successor.id));
}

pub async fn a_stored_contact_reads_back_unchanged(store: &dyn ContactStore) {
    let record = contact(ContactId::new_random());

    store.put(&record).await.unwrap();

    assert_eq!(store.get(&record.id).await.unwrap(), Some(record));
}

pub async fn an_unknown_contact_is_not_found_by_any_key(store: &dyn ContactStore) {
    let absent = contact(ContactId::new_random());

    let by_id = store.get(&absent.id).await.unwrap();
    let by_index = store.find_by_email_index(&absent.email_index).await.unwrap();
    let by_external = store.find_by_external_id(absent.external_id.as_ref().unwrap()).await.unwrap();

    assert_eq!((by_id, by_index, by_external), (None, None, None));
}

pub async fn a_contact_is_found_by_its_email_index_and_its_external_id(store: &dyn ContactStore) {
    let wanted = contact(ContactId::new_random());
    let other = contact(ContactId::new_random());
    store.put(&other).await.unwrap();
    store.put(&wanted).await.unwrap();

    let by_index = store.find_by_email_index(&wanted.email_index).await.unwrap();
    let by_external = store.find_by_external_id(wanted.external_id.as_ref().unwrap()).await.unwrap();

    assert_eq!(by_index, Some(wanted.clone()));
    assert_eq!(by_external, Some(wanted));
}

pub async fn a_second_contact_with_the_same_email_index_is_a_conflict(store: &dyn ContactStore) {
    let first = contact(ContactId::new_random());
    store.put(&first).await.unwrap();
    let second = ContactRecord { email_index: first.email_index.clone(), ..contact(ContactId::new_random()) };

    let result = store.put(&second).await;

    assert_conflict(result);
    assert_eq!(store.get(&second.id).await.unwrap(), None, "the losing contact must not be stored");
    assert_eq!(store.find_by_email_index(&first.email_index).await.unwrap(), Some(first));
}

pub async fn a_second_contact_with_the_same_external_id_is_a_conflict(store: &dyn ContactStore) {
    let first = contact(ContactId::new_random());
    store.put(&first).await.unwrap();
    let second = ContactRecord { external_id: first.external_id.clone(), ..contact(ContactId::new_random()) };

    let result = store.put(&second).await;

    assert_conflict(result);
    assert_eq!(store.get(&second.id).await.unwrap(), None, "the losing contact must not be stored");
    assert_eq!(store.find_by_external_id(first.external_id.as_ref().unwrap()).await.unwrap(), Some(first));
}

pub async fn contacts_without_an_external_id_do_not_conflict(store: &dyn ContactStore) {
    let first = ContactRecord { external_id: None, ..contact(ContactId::new_random()) };
    let second = ContactRecord { external_id: None, ..contact(ContactId::new_random()) };

    store.put(&first).await.unwrap();
    store.put(&second).await.unwrap();

    assert_eq!(store.get(&first.id).await.unwrap(), Some(first));
    assert_eq!(store.get(&second.id).await.unwrap(), Some(second));
}

pub async fn putting_a_contact_again_updates_it_in_place(store: &dyn ContactStore) {
    let original = contact(ContactId::new_random());
    store.put(&original).await.unwrap();
    let updated = ContactRecord {
        external_id: Some(ExternalId::parse(&unique("crm")).unwrap()),
        email_index: unique_index(),
        sealed: b"re-sealed".to_vec(),
        updated_at: T0 + Duration::hours(1),
        ..original.clone()
    };

    store.put(&updated).await.unwrap();

    assert_eq!(store.get(&original.id).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.find_by_email_index(&updated.email_index).await.unwrap(), Some(updated.clone()));
    assert_eq!(store.find_by_email_index(&original.email_index).await.unwrap(), None, "old email index freed");
    assert_eq!(store.find_by_external_id(original.external_id.as_ref().unwrap()).await.unwrap(), None);
    let rows = scan_all(store, ShardSpec { index: 0, total: 1 }, 100).await;
    let scanned: Vec<&ContactRecord> = rows.iter().filter(|r| r.id == original.id).collect();
    assert_eq!(scanned, vec![&updated], "one row for the contact, with its new content");
}

pub async fn paging_through_every_shard_sees_each_contact_exactly_once(store: &dyn ContactStore) {
    let mine: Vec<ContactRecord> = (0..20).map(|_| contact(ContactId::new_random())).collect();
    for record in &mine {
        store.put(record).await.unwrap();
    }

    for total in [1, 3, 8] {
        let seen = scan_counts(store, total, 2).await;

        for record in &mine {
            assert_eq!(seen.get(&record.id), Some(&1), "{:?} split {total} ways", record.id);
        }
        assert!(seen.values().all(|&n| n == 1), "split {total} ways, some contact came back twice");
    }
}

pub async fn resuming_from_a_saved_cursor_returns_the_same_next_page(store: &dyn ContactStore) {
    for _ in 0..7 {
        store.put(&contact(ContactId::new_random())).await.unwrap();
    }
    let shard = ShardSpec { index: 0, total: 1 };
    let first = store.scan_shard(shard, None, 3).await.unwrap();
    let cursor = first.next.clone().expect("seven contacts do not fit in a page of three");

    // A fan-out worker saved the cursor, crashed, and a second one resumes.
    let resumed = store.scan_shard(shard, Some(&cursor), 3).await.unwrap();
    let resumed_again = store.scan_shard(shard, Some(&cursor), 3).await.unwrap();

    assert_eq!(resumed, resumed_again);
    let earlier: Vec<ContactId> = first.records.iter().map(|r| r.id).collect();
    assert!(resumed.records.iter().all(|r| !earlier.contains(&r.id)), "a resumed page repeats an earlier contact");
}

mod embedded {
    #[tokio::test]
    async fn resealing_replaces_only_the_sealed_bytes_it_expected() {
        let s = super::super::support::scratch();
        let store = carepost::adapters::embedded::SqliteContactStore::new(s.db.clone());
        super::resealing_replaces_only_the_sealed_bytes_it_expected(&store).await;
    }

    #[tokio::test]
    async fn a_deleted_contact_is_gone_by_every_key_and_frees_them() {
        let s = super::super::support::scratch();
        let store = carepost::adapters::embedded::SqliteContactStore::new(s.db.clone());
        super::a_deleted_contact_is_gone_by_every_key_and_frees_them(&store).await;
    }

    use carepost::adapters::embedded::SqliteContactStore;
    use carepost::domain::ContactId;
    use carepost::ports::{ContactRecord, ContactStore, ShardSpec};

    use super::super::support::{Scratch, scratch};
    use super::contact;

    /// A random contact ID whose bucket is `bucket`.
    fn id_in_bucket(bucket: u16) -> ContactId {
        let mut bytes = *ContactId::new_random().as_bytes();
        bytes[..2].copy_from_slice(&bucket.to_be_bytes());
        ContactId::from_bytes(bytes)
    }

    fn store() -> (Scratch, SqliteContactStore) {
        let s = scratch();
        let store = SqliteContactStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn a_stored_contact_reads_back_unchanged() {
        let (_s, store) = store();
        super::a_stored_contact_reads_back_unchanged(&store).await;
    }

    #[tokio::test]
    async fn an_unknown_contact_is_not_found_by_any_key() {
        let (_s, store) = store();
        super::an_unknown_contact_is_not_found_by_any_key(&store).await;
    }

    #[tokio::test]
    async fn a_contact_is_found_by_its_email_index_and_its_external_id() {
        let (_s, store) = store();
        super::a_contact_is_found_by_its_email_index_and_its_external_id(&store).await;
    }

    #[tokio::test]
    async fn a_second_contact_with_the_same_email_index_is_a_conflict() {
        let (_s, store) = store();
        super::a_second_contact_with_the_same_email_index_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn a_second_contact_with_the_same_external_id_is_a_conflict() {
        let (_s, store) = store();
        super::a_second_contact_with_the_same_external_id_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn contacts_without_an_external_id_do_not_conflict() {
        let (_s, store) = store();
        super::contacts_without_an_external_id_do_not_conflict(&store).await;
    }

    #[tokio::test]
    async fn putting_a_contact_again_updates_it_in_place() {
        let (_s, store) = store();
        super::putting_a_contact_again_updates_it_in_place(&store).await;
    }

    #[tokio::test]
    async fn resuming_from_a_saved_cursor_returns_the_same_next_page() {
        let (_s, store) = store();
        super::resuming_from_a_saved_cursor_returns_the_same_next_page(&store).await;
    }

    /// The embedded adapter's own promise: shard `i` of `n` is the bucket
    /// range `[i·65536/n, (i+1)·65536/n)`, in ID order.
    #[tokio::test]
    async fn embedded_shards_are_ranges_of_id_buckets_in_id_order() {
        let (_s, store) = store();
        let total: u16 = 4;
        // Six contacts per shard (buckets spread over the whole range), put in shuffled order.
        let mine: Vec<ContactRecord> =
            (0..24u16).rev().map(|b| contact(id_in_bucket((b / 6) * 16_384 + (b % 6) * 100 + 5))).collect();
        for record in &mine {
            store.put(record).await.unwrap();
        }

        for index in 0..total {
            let scanned: Vec<ContactId> =
                super::scan_all(&store, ShardSpec { index, total }, 4).await.iter().map(|r| r.id).collect();

            let range =
                u32::from(index) * 65_536 / u32::from(total)..(u32::from(index) + 1) * 65_536 / u32::from(total);
            let mut expected: Vec<ContactId> =
                mine.iter().map(|r| r.id).filter(|id| range.contains(&u32::from(id.bucket()))).collect();
            expected.sort();
            assert_eq!(expected.len(), 6, "fixture: six contacts in shard {index}");
            assert_eq!(scanned, expected, "shard {index}");
        }
    }

    #[tokio::test]
    async fn paging_through_every_shard_sees_each_contact_exactly_once() {
        let (_s, store) = store();
        super::paging_through_every_shard_sees_each_contact_exactly_once(&store).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_store() {
        let (_s, store) = store();
        super::contact_store_contract(&store).await;
    }
}
