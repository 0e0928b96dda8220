//! The DynamoDB adapters against the same contract suites as the embedded
//! ones, over the real wire protocol to a moto server (`AWS_ENDPOINT_URL`).
//! Each test creates its own tables under a fresh prefix.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use carepost::adapters::aws::TableNames;
use carepost::adapters::aws::dynamodb::{
    DynamoActivityStore, DynamoAuditLog, DynamoCampaignStore, DynamoConsentStore, DynamoContactStore,
    DynamoIntakeStore, DynamoJourneyStore, DynamoSecretStore, DynamoSendLedger, DynamoSuppressionList, create_tables,
};
use carepost::domain::{
    CampaignId, ConsentCategory, ConsentEntry, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus,
    ContactId,
};
use carepost::error::Classify;
use carepost::ports::{
    ClaimOutcome, ConsentStore, ContactRecord, ContactStore, SendLedger, StoreError, SuppressionList, SuppressionReason,
};

use super::support::{T0, unique, unique_index};

async fn client() -> Client {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: start moto: make test does (scripts/with-moto.sh cargo test ...)");
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Client::new(&sdk)
}

/// A client and a fresh set of tables.
async fn tables() -> (Client, TableNames) {
    let client = client().await;
    let prefix = format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let names = TableNames::with_prefix(&prefix);
    create_tables(&client, &names).await.expect("tables are created");
    (client, names)
}

#[tokio::test]
async fn dynamodb_contact_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::contacts::contact_store_contract(&DynamoContactStore::new(client, t.contacts)).await;
}

#[tokio::test]
async fn dynamodb_consent_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::consent::consent_store_contract(&DynamoConsentStore::new(client, t.consent)).await;
}

#[tokio::test]
async fn dynamodb_suppression_list_passes_the_contract() {
    let (client, t) = tables().await;
    super::suppression::suppression_list_contract(&DynamoSuppressionList::new(client, t.suppression)).await;
}

#[tokio::test]
async fn dynamodb_campaign_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::campaigns::campaign_store_contract(&DynamoCampaignStore::new(client, t.campaigns)).await;
}

#[tokio::test]
async fn dynamodb_journey_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::journeys::journey_store_contract(&DynamoJourneyStore::new(client, t.journeys)).await;
}

#[tokio::test]
async fn dynamodb_intake_store_passes_the_contract_in_the_activity_table() {
    let (client, t) = tables().await;
    super::intake::intake_store_contract(&DynamoIntakeStore::new(client, t.activity)).await;
}

#[tokio::test]
async fn dynamodb_secure_message_store_passes_the_contract_in_the_activity_table() {
    let (client, t) = tables().await;
    let store = carepost::adapters::aws::dynamodb::DynamoSecureMessageStore::new(client, t.activity);
    super::secure_messages::secure_message_store_contract(&store).await;
}

#[tokio::test]
async fn dynamodb_activity_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::activity::activity_store_contract(&DynamoActivityStore::new(client, t.activity)).await;
}

#[tokio::test]
async fn dynamodb_send_ledger_rows_carry_their_expiry_for_ttl() {
    let (client, t) = tables().await;
    let retention = Duration::from_secs(30 * 24 * 3600);
    let ledger = DynamoSendLedger::new(client.clone(), t.send_ledger.clone()).with_retention(retention);
    let (campaign, contact) = (CampaignId::new_random(), ContactId::new_random());
    let before = time::OffsetDateTime::now_utc();
    let ClaimOutcome::Claimed { attempt } =
        ledger.claim(&campaign, &contact, before, Duration::from_secs(60)).await.unwrap()
    else {
        panic!("fresh claim")
    };
    let sent = carepost::ports::LedgerState::Sent {
        provider_message_id: carepost::domain::ProviderMessageId::new("m-ttl".to_owned()),
    };

    ledger.settle(&campaign, &contact, attempt, &sent).await.unwrap();

    let item = client
        .get_item()
        .table_name(&t.send_ledger)
        .key("campaign_id", aws_sdk_dynamodb::types::AttributeValue::S(campaign.to_string()))
        .key("contact_id", aws_sdk_dynamodb::types::AttributeValue::S(contact.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    let expected = (before + retention).unix_timestamp();
    assert!((expected..expected + 60).contains(&expires), "expires_at {expires} is 30 days after the settle");
}

#[tokio::test]
async fn dynamodb_audit_log_passes_the_contract() {
    let (client, t) = tables().await;
    super::audit::audit_log_contract(&DynamoAuditLog::new(client, t.audit_log)).await;
}

#[tokio::test]
async fn dynamodb_send_ledger_passes_the_contract() {
    let (client, t) = tables().await;
    super::ledger::ledger_contract(&DynamoSendLedger::new(client, t.send_ledger)).await;
}

#[tokio::test]
async fn dynamodb_secret_store_passes_the_contract() {
    let (client, t) = tables().await;
    super::secrets::secret_store_contract(&DynamoSecretStore::new(client, t.campaigns)).await;
}

// ---------------------------------------------------------------- DynamoDB-specific

#[tokio::test]
async fn dynamodb_creating_the_tables_twice_is_harmless() {
    let (client, t) = tables().await;

    create_tables(&client, &t).await.expect("existing tables are left alone");
}

#[tokio::test]
async fn dynamodb_racing_claims_have_exactly_one_winner() {
    let (client, t) = tables().await;
    let ledger: Arc<dyn SendLedger> = Arc::new(DynamoSendLedger::new(client, t.send_ledger));
    let (campaign, contact) = (CampaignId::new_random(), ContactId::new_random());
    let lease = Duration::from_secs(30);
    ledger.claim(&campaign, &contact, T0, lease).await.unwrap();

    // Eight senders find the lease lapsed at once; one may take over.
    let later = T0 + 2 * lease;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.claim(&campaign, &contact, later, lease).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap());
    }

    let winners: Vec<_> = outcomes.iter().filter(|o| matches!(o, ClaimOutcome::Claimed { .. })).collect();
    assert_eq!(winners, vec![&ClaimOutcome::Claimed { attempt: 2 }], "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, ClaimOutcome::Claimed { .. } | ClaimOutcome::Busy)));
}

#[tokio::test]
async fn dynamodb_racing_first_claims_have_exactly_one_winner() {
    let (client, t) = tables().await;
    let ledger: Arc<dyn SendLedger> = Arc::new(DynamoSendLedger::new(client, t.send_ledger));
    let (campaign, contact) = (CampaignId::new_random(), ContactId::new_random());

    let racers: Vec<_> = (0..8)
        .map(|_| {
            let ledger = ledger.clone();
            tokio::spawn(async move { ledger.claim(&campaign, &contact, T0, Duration::from_secs(30)).await.unwrap() })
        })
        .collect();
    let mut claimed = 0;
    for racer in racers {
        match racer.await.unwrap() {
            ClaimOutcome::Claimed { attempt } => {
                assert_eq!(attempt, 1);
                claimed += 1;
            }
            ClaimOutcome::Busy => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!(claimed, 1);
}

#[tokio::test]
async fn dynamodb_racing_consent_appends_have_exactly_one_winner() {
    let (client, t) = tables().await;
    let store: Arc<dyn ConsentStore> = Arc::new(DynamoConsentStore::new(client, t.consent));
    let contact = ContactId::new_random();
    let evidence = |minutes: i64| ConsentEvidence {
        contact_id: contact,
        kind: ConsentEntryKind::Granted,
        categories: vec![ConsentCategory::parse("flu-shots").unwrap()],
        at: T0 + time::Duration::minutes(minutes),
        method: ConsentMethod::Api,
        form_id: None,
        consent_text_sha256: None,
        request_id: None,
        expires_at: None,
        imported: None,
        sealed_proof: vec![1, 2, 3],
    };
    let first = ConsentEntry::chain(None, evidence(0));
    store.append(&first, ConsentStatus::Active).await.unwrap();

    let racers: Vec<_> = (1..=6)
        .map(|i| {
            let (store, entry) = (store.clone(), ConsentEntry::chain(Some(&first), evidence(i)));
            tokio::spawn(async move { store.append(&entry, ConsentStatus::Withdrawn).await })
        })
        .collect();
    let mut won = 0;
    for racer in racers {
        match racer.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    assert_eq!(won, 1);
    assert_eq!(store.history(&contact).await.unwrap().len(), 2);
}

#[tokio::test]
async fn dynamodb_an_email_index_given_up_can_be_taken_by_another_contact() {
    let (client, t) = tables().await;
    let store = DynamoContactStore::new(client, t.contacts);
    let first = super::contacts::contact(ContactId::new_random());
    store.put(&first).await.unwrap();
    let moved = ContactRecord { email_index: unique_index(), external_id: None, ..first.clone() };
    store.put(&moved).await.unwrap();

    let heir = ContactRecord {
        email_index: first.email_index.clone(),
        external_id: first.external_id.clone(),
        ..super::contacts::contact(ContactId::new_random())
    };
    store.put(&heir).await.unwrap();

    assert_eq!(store.find_by_email_index(&first.email_index).await.unwrap(), Some(heir.clone()));
    assert_eq!(store.find_by_external_id(first.external_id.as_ref().unwrap()).await.unwrap(), Some(heir));
    assert_eq!(store.find_by_email_index(&moved.email_index).await.unwrap(), Some(moved));
}

#[tokio::test]
async fn dynamodb_racing_puts_of_one_new_contact_both_land_without_leaking_guards() {
    let (client, t) = tables().await;
    let store: Arc<dyn ContactStore> = Arc::new(DynamoContactStore::new(client, t.contacts));
    let id = ContactId::new_random();
    let versions: Vec<ContactRecord> = (0..4).map(|_| super::contacts::contact(id)).collect();

    let racers: Vec<_> = versions
        .iter()
        .cloned()
        .map(|v| {
            let store = store.clone();
            tokio::spawn(async move { store.put(&v).await })
        })
        .collect();
    for racer in racers {
        racer.await.unwrap().expect("each put lands in turn");
    }

    let last = store.get(&id).await.unwrap().expect("stored");
    for v in &versions {
        let by_index = store.find_by_email_index(&v.email_index).await.unwrap();
        let by_external = store.find_by_external_id(v.external_id.as_ref().unwrap()).await.unwrap();
        if v.email_index == last.email_index {
            assert_eq!((by_index, by_external), (Some(last.clone()), Some(last.clone())));
        } else {
            assert_eq!((by_index, by_external), (None, None), "a superseded version's keys are freed");
        }
    }
}

#[tokio::test]
async fn dynamodb_a_missing_table_is_a_transient_error() {
    let client = client().await;
    let list = DynamoSuppressionList::new(client, unique("no-such-table"));

    let index = unique_index();
    let error = list.reason(&index).await.expect_err("the table does not exist");
    let suppress = list.suppress(&index, SuppressionReason::Complaint).await.expect_err("no table");

    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    assert!(error.is_transient() && suppress.is_transient());
    assert!(!error.to_string().contains(index.as_str()), "error text carries no key values: {error}");
}
