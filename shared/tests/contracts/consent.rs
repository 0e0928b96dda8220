//! `ConsentStore`: a per-contact, hash-chained, append-only ledger plus the
//! current status per (contact, category), written together.

use carepost::domain::{
    ConsentCategory, ConsentEntry, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ContactId,
    verify_chain,
};
use carepost::ports::{ConsentStore, StoreError};
use time::{Duration, OffsetDateTime};

use super::support::T0;

fn evidence(contact: ContactId, kind: ConsentEntryKind, categories: &[&str], at: OffsetDateTime) -> ConsentEvidence {
    ConsentEvidence {
        contact_id: contact,
        kind,
        categories: categories.iter().map(|c| ConsentCategory::parse(c).expect("valid category")).collect(),
        at,
        method: ConsentMethod::WebForm,
        form_id: Some("web-signup".into()),
        consent_text_sha256: Some("ab".repeat(32)),
        request_id: None,
        expires_at: None,
        imported: None,
        sealed_proof: vec![0xC0, 0x4E, 0x53, 0x7E],
    }
}

/// Chains a new entry onto the stored head and appends it.
async fn append_next(
    store: &dyn ConsentStore,
    evidence: ConsentEvidence,
    status: ConsentStatus,
) -> Result<ConsentEntry, StoreError> {
    let head = store.head(&evidence.contact_id).await?;
    let entry = ConsentEntry::chain(head.as_ref(), evidence);
    store.append(&entry, status).await?;
    Ok(entry)
}

fn assert_conflict(result: Result<(), StoreError>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected a Conflict, got {other:?}"),
    }
}

/// (category, status) pairs, sorted by category.
async fn statuses(store: &dyn ConsentStore, contact: &ContactId) -> Vec<(String, ConsentStatus)> {
    let mut out: Vec<_> =
        store.grants(contact).await.unwrap().into_iter().map(|g| (g.category.as_str().to_owned(), g.status)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub async fn consent_store_contract(store: &dyn ConsentStore) {
    an_entrys_expiry_becomes_the_states_and_a_later_entry_without_one_clears_it(store).await;
    appended_entries_chain_onto_the_head(store).await;
    an_entry_chained_onto_a_stale_head_is_a_conflict(store).await;
    a_second_first_entry_is_a_conflict(store).await;
    an_entry_that_skips_a_sequence_number_is_a_conflict(store).await;
    an_entry_that_does_not_link_to_the_heads_hash_is_a_conflict(store).await;
    grants_hold_the_latest_status_per_category(store).await;
    history_is_in_sequence_order_and_verifies(store).await;
    each_contact_has_its_own_ledger(store).await;
    an_unknown_contact_has_no_head_grants_or_history(store).await;
    the_grants_of_a_page_of_contacts_come_at_once_in_the_asked_categories(store).await;
}

pub async fn the_grants_of_a_page_of_contacts_come_at_once_in_the_asked_categories(store: &dyn ConsentStore) {
    let contacts: Vec<ContactId> = (0..120).map(|_| ContactId::new_random()).collect();
    for (n, contact) in contacts.iter().enumerate().filter(|(n, _)| n % 3 != 0) {
        let categories: &[&str] = if n % 2 == 0 { &["wellness-tips", "flu-shots"] } else { &["flu-shots"] };
        append_next(store, evidence(*contact, ConsentEntryKind::Granted, categories, T0), ConsentStatus::Active)
            .await
            .unwrap();
    }
    let asked = [ConsentCategory::parse("wellness-tips").unwrap(), ConsentCategory::parse("appointments").unwrap()];

    let grants = store.grants_of(&contacts, &asked).await.unwrap();

    let expected: Vec<&ContactId> =
        contacts.iter().enumerate().filter(|(n, _)| n % 3 != 0 && n % 2 == 0).map(|(_, c)| c).collect();
    assert_eq!(grants.len(), expected.len(), "only contacts with a grant in the asked categories");
    for contact in expected {
        let got = &grants[contact];
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].category.as_str(), got[0].status), ("wellness-tips", ConsentStatus::Active));
    }
}

pub async fn appended_entries_chain_onto_the_head(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let requested = ConsentEntry::chain(None, evidence(contact, ConsentEntryKind::Requested, &["wellness-tips"], T0));
    store.append(&requested, ConsentStatus::Pending).await.unwrap();
    assert_eq!(store.head(&contact).await.unwrap(), Some(requested.clone()));

    let granted = ConsentEntry::chain(
        Some(&requested),
        evidence(contact, ConsentEntryKind::Granted, &["wellness-tips"], T0 + Duration::minutes(5)),
    );
    store.append(&granted, ConsentStatus::Active).await.unwrap();

    assert_eq!(store.head(&contact).await.unwrap(), Some(granted.clone()));
    assert_eq!(granted.seq, 2);
    assert_eq!(granted.prev_hash, requested.hash);
    assert_eq!(store.history(&contact).await.unwrap(), vec![requested, granted]);
    assert_eq!(statuses(store, &contact).await, vec![("wellness-tips".to_owned(), ConsentStatus::Active)]);
}

pub async fn an_entry_chained_onto_a_stale_head_is_a_conflict(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let first =
        append_next(store, evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0), ConsentStatus::Active)
            .await
            .unwrap();
    // Another writer reads the same head, then loses the race.
    let stale = ConsentEntry::chain(
        Some(&first),
        evidence(contact, ConsentEntryKind::Withdrawn, &["flu-shots"], T0 + Duration::hours(1)),
    );
    let winner = append_next(
        store,
        evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0 + Duration::minutes(30)),
        ConsentStatus::Active,
    )
    .await
    .unwrap();

    let result = store.append(&stale, ConsentStatus::Withdrawn).await;

    assert_conflict(result);
    assert_eq!(store.history(&contact).await.unwrap(), vec![first, winner]);
    assert_eq!(
        statuses(store, &contact).await,
        vec![("flu-shots".to_owned(), ConsentStatus::Active)],
        "a refused append must not change the status"
    );
}

pub async fn a_second_first_entry_is_a_conflict(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let first = ConsentEntry::chain(None, evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0));
    store.append(&first, ConsentStatus::Active).await.unwrap();
    let another_first = ConsentEntry::chain(
        None,
        evidence(contact, ConsentEntryKind::Withdrawn, &["flu-shots"], T0 + Duration::minutes(1)),
    );

    let result = store.append(&another_first, ConsentStatus::Withdrawn).await;

    assert_conflict(result);
    assert_eq!(store.history(&contact).await.unwrap(), vec![first]);
}

pub async fn an_entry_that_skips_a_sequence_number_is_a_conflict(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let first = ConsentEntry::chain(None, evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0));
    store.append(&first, ConsentStatus::Active).await.unwrap();
    let never_stored = ConsentEntry::chain(
        Some(&first),
        evidence(contact, ConsentEntryKind::Withdrawn, &["flu-shots"], T0 + Duration::minutes(1)),
    );
    let third = ConsentEntry::chain(
        Some(&never_stored),
        evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0 + Duration::minutes(2)),
    );

    let result = store.append(&third, ConsentStatus::Active).await;

    assert_conflict(result);
    assert_eq!(store.history(&contact).await.unwrap(), vec![first]);
}

/// "Directly follows the head" means the hash link too, not just the number:
/// an entry whose `prev_hash` is not the head's hash would break the chain.
pub async fn an_entry_that_does_not_link_to_the_heads_hash_is_a_conflict(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let first = ConsentEntry::chain(None, evidence(contact, ConsentEntryKind::Granted, &["flu-shots"], T0));
    store.append(&first, ConsentStatus::Active).await.unwrap();
    let forged_head = ConsentEntry::chain(None, evidence(contact, ConsentEntryKind::Requested, &["flu-shots"], T0));
    let unlinked = ConsentEntry::chain(
        Some(&forged_head),
        evidence(contact, ConsentEntryKind::Withdrawn, &["flu-shots"], T0 + Duration::minutes(1)),
    );
    assert_eq!(unlinked.seq, first.seq + 1, "fixture: the sequence number alone looks right");

    let result = store.append(&unlinked, ConsentStatus::Withdrawn).await;

    assert_conflict(result);
    assert_eq!(verify_chain(&store.history(&contact).await.unwrap()), Ok(()));
}

pub async fn grants_hold_the_latest_status_per_category(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let withdrawn_at = T0 + Duration::days(1);
    append_next(
        store,
        evidence(contact, ConsentEntryKind::Granted, &["flu-shots", "wellness-tips"], T0),
        ConsentStatus::Active,
    )
    .await
    .unwrap();

    append_next(
        store,
        evidence(contact, ConsentEntryKind::Withdrawn, &["flu-shots"], withdrawn_at),
        ConsentStatus::Withdrawn,
    )
    .await
    .unwrap();

    let mut grants = store.grants(&contact).await.unwrap();
    grants.sort_by(|a, b| a.category.cmp(&b.category));
    let summary: Vec<_> = grants.iter().map(|g| (g.category.as_str(), g.status, g.updated_at)).collect();
    assert_eq!(
        summary,
        vec![("flu-shots", ConsentStatus::Withdrawn, withdrawn_at), ("wellness-tips", ConsentStatus::Active, T0)]
    );
    assert!(!grants[0].allows_send(withdrawn_at));
    assert!(grants[1].allows_send(withdrawn_at));
}

pub async fn history_is_in_sequence_order_and_verifies(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let mut appended = Vec::new();
    for (i, (kind, status)) in [
        (ConsentEntryKind::Requested, ConsentStatus::Pending),
        (ConsentEntryKind::Granted, ConsentStatus::Active),
        (ConsentEntryKind::Withdrawn, ConsentStatus::Withdrawn),
        (ConsentEntryKind::Granted, ConsentStatus::Active),
    ]
    .into_iter()
    .enumerate()
    {
        let at = T0 + Duration::minutes(i as i64);
        appended.push(append_next(store, evidence(contact, kind, &["lab-results"], at), status).await.unwrap());
    }

    let history = store.history(&contact).await.unwrap();

    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(history, appended, "entries come back exactly as appended");
    assert_eq!(verify_chain(&history), Ok(()));
}

pub async fn each_contact_has_its_own_ledger(store: &dyn ConsentStore) {
    let (ada, bo) = (ContactId::new_random(), ContactId::new_random());
    for minutes in 0..2 {
        append_next(
            store,
            evidence(ada, ConsentEntryKind::Granted, &["flu-shots"], T0 + Duration::minutes(minutes)),
            ConsentStatus::Active,
        )
        .await
        .unwrap();
    }

    let first_of_bo = ConsentEntry::chain(None, evidence(bo, ConsentEntryKind::Requested, &["lab-results"], T0));
    store.append(&first_of_bo, ConsentStatus::Pending).await.unwrap();

    assert_eq!(store.history(&bo).await.unwrap(), vec![first_of_bo]);
    assert_eq!(statuses(store, &bo).await, vec![("lab-results".to_owned(), ConsentStatus::Pending)]);
    assert_eq!(store.history(&ada).await.unwrap().len(), 2);
    assert_eq!(statuses(store, &ada).await, vec![("flu-shots".to_owned(), ConsentStatus::Active)]);
}

pub async fn an_unknown_contact_has_no_head_grants_or_history(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();

    assert_eq!(store.head(&contact).await.unwrap(), None);
    assert!(store.grants(&contact).await.unwrap().is_empty());
    assert!(store.history(&contact).await.unwrap().is_empty());
}

pub async fn an_entrys_expiry_becomes_the_states_and_a_later_entry_without_one_clears_it(store: &dyn ConsentStore) {
    let contact = ContactId::new_random();
    let category = ConsentCategory::hipaa_authorization();
    let mut granted = evidence(contact, ConsentEntryKind::Granted, &[category.as_str()], T0);
    granted.expires_at = Some(T0 + Duration::days(365));

    append_next(store, granted, ConsentStatus::Active).await.unwrap();
    let while_granted = store.grants(&contact).await.unwrap();
    let revoked = evidence(contact, ConsentEntryKind::Withdrawn, &[category.as_str()], T0 + Duration::days(2));
    append_next(store, revoked, ConsentStatus::Withdrawn).await.unwrap();
    let after = store.grants(&contact).await.unwrap();

    assert_eq!(while_granted.len(), 1);
    assert_eq!(while_granted[0].expires_at, Some(T0 + Duration::days(365)));
    assert_eq!((after[0].status, after[0].expires_at), (ConsentStatus::Withdrawn, None));
    let history = store.history(&contact).await.unwrap();
    assert_eq!(history[0].evidence.expires_at, Some(T0 + Duration::days(365)), "kept in the evidence");
    assert_eq!(verify_chain(&history), Ok(()));
}

mod embedded {
    use carepost::adapters::embedded::SqliteConsentStore;

    use super::super::support::{Scratch, scratch};

    fn store() -> (Scratch, SqliteConsentStore) {
        let s = scratch();
        let store = SqliteConsentStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn the_grants_of_a_page_of_contacts_come_at_once_in_the_asked_categories() {
        let (_s, store) = store();
        super::the_grants_of_a_page_of_contacts_come_at_once_in_the_asked_categories(&store).await;
    }

    #[tokio::test]
    async fn an_entrys_expiry_becomes_the_states_and_a_later_entry_without_one_clears_it() {
        let (_s, store) = store();
        super::an_entrys_expiry_becomes_the_states_and_a_later_entry_without_one_clears_it(&store).await;
    }

    #[tokio::test]
    async fn appended_entries_chain_onto_the_head() {
        let (_s, store) = store();
        super::appended_entries_chain_onto_the_head(&store).await;
    }

    #[tokio::test]
    async fn an_entry_chained_onto_a_stale_head_is_a_conflict() {
        let (_s, store) = store();
        super::an_entry_chained_onto_a_stale_head_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn a_second_first_entry_is_a_conflict() {
        let (_s, store) = store();
        super::a_second_first_entry_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn an_entry_that_skips_a_sequence_number_is_a_conflict() {
        let (_s, store) = store();
        super::an_entry_that_skips_a_sequence_number_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn an_entry_that_does_not_link_to_the_heads_hash_is_a_conflict() {
        let (_s, store) = store();
        super::an_entry_that_does_not_link_to_the_heads_hash_is_a_conflict(&store).await;
    }

    #[tokio::test]
    async fn grants_hold_the_latest_status_per_category() {
        let (_s, store) = store();
        super::grants_hold_the_latest_status_per_category(&store).await;
    }

    #[tokio::test]
    async fn history_is_in_sequence_order_and_verifies() {
        let (_s, store) = store();
        super::history_is_in_sequence_order_and_verifies(&store).await;
    }

    #[tokio::test]
    async fn each_contact_has_its_own_ledger() {
        let (_s, store) = store();
        super::each_contact_has_its_own_ledger(&store).await;
    }

    #[tokio::test]
    async fn an_unknown_contact_has_no_head_grants_or_history() {
        let (_s, store) = store();
        super::an_unknown_contact_has_no_head_grants_or_history(&store).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_store() {
        let (_s, store) = store();
        super::consent_store_contract(&store).await;
    }
}
