//! The KMS, SQS and SES v2 adapters on moto (`AWS_ENDPOINT_URL`, started by
//! `make test`), over the real AWS wire protocol: the port suites where they
//! apply, and what only these adapters promise.
//!
//! Every test that needs moto fails, never skips, when `AWS_ENDPOINT_URL` is
//! unset. Each test makes its own key, queues or message, so they run in
//! parallel on one moto server.

use std::net::TcpListener;

fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("AWS_ENDPOINT_URL is not set: start moto first (make test does)"),
    }
}

async fn sdk() -> aws_config::SdkConfig {
    endpoint();
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An endpoint on a loopback port nothing listens on.
fn closed_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

mod kms {
    use carepost::adapters::aws::kms::{KmsKeyProvider, classify_kms_error};
    use carepost::ports::{EncryptionContext, KeyProvider, KeyProviderError};

    use super::super::key_provider as suite;
    use super::{closed_endpoint, sdk};

    async fn client() -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&sdk().await)
    }

    async fn new_key(client: &aws_sdk_kms::Client) -> String {
        let created = client.create_key().description("carepost contract test").send().await.expect("CreateKey");
        created.key_metadata().expect("key metadata").key_id().to_owned()
    }

    async fn provider() -> KmsKeyProvider {
        let client = client().await;
        let key = new_key(&client).await;
        KmsKeyProvider::new(client, key)
    }

    fn context(contact: &str) -> EncryptionContext {
        EncryptionContext::new(&[("purpose", "contact"), ("contact_id", contact)])
    }

    fn assert_refused<T>(result: Result<T, KeyProviderError>, what: &str) {
        match result {
            Err(KeyProviderError::Refused { .. }) => {}
            Err(other) => panic!("{what}: expected Refused, got {other:?}"),
            Ok(_) => panic!("{what}: expected Refused, got a key"),
        }
    }

    #[tokio::test]
    async fn a_generated_data_key_decrypts_under_the_same_context() {
        suite::a_generated_data_key_decrypts_under_the_same_context(&provider().await).await;
    }

    #[tokio::test]
    async fn each_data_key_is_fresh() {
        suite::each_data_key_is_fresh(&provider().await).await;
    }

    #[tokio::test]
    async fn the_order_of_context_pairs_does_not_matter() {
        suite::the_order_of_context_pairs_does_not_matter(&provider().await).await;
    }

    #[tokio::test]
    async fn a_different_encryption_context_is_refused() {
        suite::a_different_encryption_context_is_refused(&provider().await).await;
    }

    #[tokio::test]
    async fn a_tampered_wrapped_key_is_refused() {
        suite::a_tampered_wrapped_key_is_refused(&provider().await).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_provider() {
        suite::key_provider_contract(&provider().await).await;
    }

    #[tokio::test]
    async fn rotation_through_an_alias_rotates_the_key_on_demand_in_kms() {
        let client = client().await;
        let key = new_key(&client).await;
        let alias = format!("alias/carepost-rotate-{}", uuid::Uuid::new_v4().simple());
        client.create_alias().alias_name(&alias).target_key_id(&key).send().await.expect("CreateAlias");
        let keys = KmsKeyProvider::new(client.clone(), alias);

        suite::a_key_wrapped_before_rotation_still_unwraps_after_it(&keys).await;

        let rotations = client.list_key_rotations().key_id(&key).send().await.expect("ListKeyRotations");
        let kinds: Vec<_> = rotations.rotations().iter().filter_map(|r| r.rotation_type().cloned()).collect();
        assert_eq!(kinds, vec![aws_sdk_kms::types::RotationType::OnDemand]);
    }

    #[tokio::test]
    async fn moto_refuses_a_decrypt_under_another_contacts_context() {
        let keys = provider().await;
        let data_key = keys.generate_data_key(&context("c-1")).await.unwrap();

        let result = keys.decrypt_data_key(&data_key.wrapped, &context("c-2")).await;

        assert_refused(result, "another contact's context");
        assert_eq!(keys.calls(), 2, "the refusal came from KMS, not from the adapter");
    }

    #[tokio::test]
    async fn every_generate_and_decrypt_is_counted() {
        let keys = provider().await;
        assert_eq!(keys.calls(), 0);

        let a = keys.generate_data_key(&context("c-1")).await.unwrap();
        let b = keys.generate_data_key(&context("c-2")).await.unwrap();
        keys.decrypt_data_key(&a.wrapped, &context("c-1")).await.unwrap();
        keys.decrypt_data_key(&b.wrapped, &context("c-2")).await.unwrap();
        let _refused = keys.decrypt_data_key(&b.wrapped, &context("c-1")).await;

        assert_eq!(keys.calls(), 5);
    }

    #[tokio::test]
    async fn a_data_key_wrapped_under_another_kms_key_is_refused() {
        let client = client().await;
        let (mine, theirs) = (new_key(&client).await, new_key(&client).await);
        let keys = KmsKeyProvider::new(client.clone(), mine);
        let other = KmsKeyProvider::new(client, theirs);
        let data_key = other.generate_data_key(&context("c-1")).await.unwrap();

        let result = keys.decrypt_data_key(&data_key.wrapped, &context("c-1")).await;

        assert_refused(result, "a data key wrapped under another KMS key");
    }

    #[tokio::test]
    async fn an_unknown_key_is_refused() {
        let keys = KmsKeyProvider::new(client().await, uuid::Uuid::new_v4().to_string());

        assert_refused(keys.generate_data_key(&context("c-1")).await, "a key that does not exist");
    }

    #[tokio::test]
    async fn an_unreachable_kms_is_unavailable_and_names_no_key_material() {
        let sdk = sdk().await;
        let config = aws_sdk_kms::config::Builder::from(&sdk).endpoint_url(closed_endpoint()).build();
        let keys = KmsKeyProvider::new(aws_sdk_kms::Client::from_conf(config), "alias/carepost");
        let wrapped = vec![0xA5u8; 64];

        let generated = keys.generate_data_key(&context("c-1")).await;
        let decrypted = keys.decrypt_data_key(&wrapped, &context("c-1")).await;

        for result in [generated.map(|_| ()), decrypted.map(|_| ())] {
            match result {
                Err(KeyProviderError::Unavailable { context: message, .. }) => {
                    assert!(message.starts_with("kms "), "{message}");
                    assert!(!message.to_lowercase().contains("a5a5"), "{message}");
                }
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
    }

    #[test]
    fn kms_error_codes_are_classified() {
        let refused = [
            "AccessDeniedException",
            "InvalidCiphertextException",
            "IncorrectKeyException",
            "NotFoundException",
            "DisabledException",
            "KMSInvalidStateException",
        ];
        let unavailable =
            ["ThrottlingException", "LimitExceededException", "KMSInternalException", "DependencyTimeoutException"];
        for code in refused {
            assert!(matches!(classify_kms_error("Decrypt", Some(code), Some(400)), KeyProviderError::Refused { .. }));
        }
        for code in unavailable {
            let e = classify_kms_error("Decrypt", Some(code), Some(400));
            assert!(matches!(e, KeyProviderError::Unavailable { .. }), "{code}: {e:?}");
        }
        assert!(matches!(classify_kms_error("Decrypt", None, Some(500)), KeyProviderError::Unavailable { .. }));
    }
}

mod sqs {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use carepost::adapters::aws::sqs::{SqsQueue, create_queue_pair};
    use carepost::adapters::embedded::QueueSettings;
    use carepost::ports::{Queue, QueueError};

    use super::super::queue::{self as suite, Time};
    use super::super::support::unique;
    use super::{closed_endpoint, sdk};

    /// The settings the queue suites use on SQLite, as SQS queue attributes.
    const SETTINGS: QueueSettings = QueueSettings { visibility_timeout: Duration::from_secs(1), max_receive_count: 2 };

    async fn client() -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&sdk().await)
    }

    async fn pair(client: &aws_sdk_sqs::Client) -> (String, String) {
        create_queue_pair(
            client,
            &unique("send"),
            SETTINGS.visibility_timeout.as_secs() as u32,
            SETTINGS.max_receive_count,
        )
        .await
        .expect("queue pair is created")
    }

    /// A fresh queue with its dead-letter queue, and the DLQ on its own.
    async fn queue() -> (Arc<SqsQueue>, SqsQueue) {
        let client = client().await;
        let (url, dlq) = pair(&client).await;
        (Arc::new(SqsQueue::new(client.clone(), url, Some(dlq.clone()))), SqsQueue::new(client, dlq, None))
    }

    async fn fresh() -> Arc<SqsQueue> {
        queue().await.0
    }

    fn assert_stale(result: Result<(), QueueError>, what: &str) {
        match result {
            Err(QueueError::StaleReceipt) => {}
            other => panic!("{what}: expected StaleReceipt, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn sent_messages_are_received_once_each_and_gone_once_deleted() {
        suite::sent_messages_are_received_once_each_and_gone_once_deleted(&*fresh().await).await;
    }

    #[tokio::test]
    async fn an_empty_batch_sends_nothing() {
        suite::an_empty_batch_sends_nothing(&*fresh().await).await;
    }

    #[tokio::test]
    async fn a_received_message_stays_hidden_until_its_visibility_timeout_passes() {
        suite::a_received_message_stays_hidden_until_its_visibility_timeout_passes(
            &*fresh().await,
            SETTINGS,
            &Time::Real,
        )
        .await;
    }

    #[tokio::test]
    async fn a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue() {
        let (queue, dead_letters) = queue().await;

        let body = suite::a_message_received_max_receive_count_times_goes_to_the_dead_letter_queue(
            &*queue,
            SETTINGS,
            &Time::Real,
        )
        .await;

        let moved = dead_letters.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(moved.iter().map(|m| m.body.expose().as_str()).collect::<Vec<_>>(), vec![body.as_str()]);
    }

    #[tokio::test]
    async fn redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count() {
        let (queue, dead_letters) = queue().await;

        suite::redrive_moves_back_only_the_chosen_dead_letters_with_a_fresh_receive_count(
            &*queue,
            SETTINGS,
            &Time::Real,
        )
        .await;

        assert_eq!(dead_letters.depth().await.unwrap(), (1, 0), "the DLQ holds the one not chosen");
    }

    #[tokio::test]
    async fn a_zero_visibility_timeout_makes_a_message_visible_at_once() {
        suite::a_zero_visibility_timeout_makes_a_message_visible_at_once(&*fresh().await).await;
    }

    #[tokio::test]
    async fn a_longer_visibility_timeout_keeps_a_message_hidden() {
        suite::a_longer_visibility_timeout_keeps_a_message_hidden(&*fresh().await, SETTINGS, &Time::Real).await;
    }

    #[tokio::test]
    async fn a_batch_receive_returns_at_most_max_messages() {
        suite::a_batch_receive_returns_at_most_max_messages(&*fresh().await).await;
    }

    #[tokio::test]
    async fn depth_counts_messages_in_flight_until_deleted() {
        suite::depth_counts_messages_in_flight_until_deleted(&*fresh().await).await;
    }

    #[tokio::test]
    async fn a_waiting_receive_returns_a_message_sent_during_the_wait() {
        suite::a_waiting_receive_returns_a_message_sent_during_the_wait(fresh().await).await;
    }

    #[tokio::test]
    async fn a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait() {
        suite::a_waiting_receive_on_an_empty_queue_returns_nothing_after_the_wait(&*fresh().await).await;
    }

    // Not run here: `a_stale_receipt_can_neither_delete_nor_change_visibility`.
    // SQS (and moto, faithfully) accepts an earlier receipt handle of a
    // message it still holds, and a repeated delete of a deleted message.
    // What holds on SQS is below.

    #[tokio::test]
    async fn an_invalid_receipt_handle_is_stale() {
        let queue = fresh().await;
        queue.send_batch(&[unique("job")]).await.unwrap();
        let _in_flight = queue.receive(1, Duration::ZERO).await.unwrap();

        assert_stale(queue.delete("not-a-receipt-handle").await, "delete");
        assert_stale(queue.change_visibility("not-a-receipt-handle", Duration::ZERO).await, "change visibility");
        assert_eq!(queue.depth().await.unwrap(), (1, 0), "nothing was deleted");
    }

    #[tokio::test]
    async fn moto_redrives_a_message_to_the_dead_letter_queue_after_max_receives() {
        let (queue, dead_letters) = queue().await;
        let body = unique("poison");
        queue.send_batch(std::slice::from_ref(&body)).await.unwrap();

        for n in 1..=SETTINGS.max_receive_count {
            let got = queue.receive(10, Duration::from_secs(3)).await.unwrap();
            assert_eq!(got.len(), 1, "receive {n}: {got:?}");
            assert_eq!(got[0].receive_count, n);
        }
        let after = queue.receive(10, Duration::from_millis(1_500)).await.unwrap();
        let moved = dead_letters.receive(10, Duration::from_secs(1)).await.unwrap();

        assert!(after.is_empty(), "delivered beyond MaxReceiveCount: {after:?}");
        assert_eq!(moved.iter().map(|m| m.body.expose().as_str()).collect::<Vec<_>>(), vec![body.as_str()]);
    }

    #[tokio::test]
    async fn more_than_ten_bodies_are_sent_in_batches_of_ten() {
        let queue = fresh().await;
        let bodies: Vec<String> = (0..23).map(|_| unique("job")).collect();

        queue.send_batch(&bodies).await.unwrap();

        assert_eq!(queue.depth().await.unwrap(), (23, 0));
        let mut got = HashSet::new();
        while got.len() < bodies.len() {
            let batch = queue.receive(25, Duration::ZERO).await.unwrap();
            assert!(!batch.is_empty() && batch.len() <= 10, "a receive returns 1 to 10 messages, got {}", batch.len());
            got.extend(batch.into_iter().map(|m| m.body.into_inner()));
        }
        assert_eq!(got, bodies.into_iter().collect::<HashSet<_>>());
    }

    #[tokio::test]
    async fn a_queue_without_a_dead_letter_queue_reports_zero_dead_letters() {
        let client = client().await;
        let (url, _dlq) = pair(&client).await;
        let queue = SqsQueue::new(client, url, None);

        queue.send_batch(&[unique("job"), unique("job")]).await.unwrap();

        assert_eq!(queue.depth().await.unwrap(), (2, 0));
    }

    #[tokio::test]
    async fn creating_a_queue_pair_sets_the_visibility_timeout_and_redrive_policy() {
        let client = client().await;
        let (url, dlq) = pair(&client).await;

        let attributes = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let get = |name: aws_sdk_sqs::types::QueueAttributeName| attributes.get(&name).cloned().unwrap_or_default();
        let redrive: serde_json::Value =
            serde_json::from_str(&get(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)).unwrap();

        assert!(dlq.ends_with("-dlq") && !url.ends_with("-dlq"), "{url} {dlq}");
        assert_eq!(get(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout), "1");
        assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "2");
        assert!(redrive["deadLetterTargetArn"].as_str().unwrap().ends_with("-dlq"), "{redrive}");
    }

    #[tokio::test]
    async fn an_unreachable_queue_is_unavailable() {
        let sdk = sdk().await;
        let config = aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(closed_endpoint()).build();
        let queue = SqsQueue::new(aws_sdk_sqs::Client::from_conf(config), "http://127.0.0.1:1/000000000000/q", None);

        let sent = queue.send_batch(&[unique("job")]).await;
        let deleted = queue.delete("receipt").await;

        assert!(matches!(sent, Err(QueueError::Unavailable { .. })), "{sent:?}");
        assert!(matches!(deleted, Err(QueueError::Unavailable { .. })), "{deleted:?}");
    }
}

mod ses {
    use carepost::adapters::aws::sesv2::{SesTransport, classify_ses_error, email_tags};
    use carepost::ports::{MailTransport, OutgoingMail, TransportErrorKind};
    use carepost::runtime::aws::ses_client;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::super::support::unique;
    use super::super::transport::{self as suite, mail};
    use super::{closed_endpoint, endpoint, sdk};

    /// The sender domain of `transport::mail`.
    const SENDER_DOMAIN: &str = "example.org";

    async fn client() -> aws_sdk_sesv2::Client {
        ses_client(&sdk().await)
    }

    /// Verifies the sender domain (moto refuses unverified senders).
    async fn verified(client: &aws_sdk_sesv2::Client) {
        client.create_email_identity().email_identity(SENDER_DOMAIN).send().await.expect("CreateEmailIdentity");
    }

    async fn transport() -> SesTransport {
        let client = client().await;
        verified(&client).await;
        SesTransport::new(client, None)
    }

    /// moto's record of the raw messages SES accepted: `ses.RawMessage` in
    /// `GET /moto-api/data.json` (SES v2 shares SES's backend).
    async fn moto_raw_messages() -> Vec<Value> {
        let url = endpoint();
        let authority = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let mut stream = tokio::net::TcpStream::connect(&authority).await.expect("moto is reachable");
        let request = format!("GET /moto-api/data.json HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP response") + 4;
        assert!(response.starts_with(b"HTTP/1.0 200") || response.starts_with(b"HTTP/1.1 200"), "moto data.json");
        let data: Value = serde_json::from_slice(&response[split..]).expect("data.json is JSON");
        data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn an_accepted_message_gets_a_provider_message_id() {
        suite::an_accepted_message_gets_a_provider_message_id(&transport().await).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_ses() {
        suite::mail_transport_contract(&transport().await).await;
    }

    #[tokio::test]
    async fn ses_records_the_raw_bytes_for_the_envelope_recipient_under_its_message_id() {
        let transport = transport().await;
        let message = mail(&format!("{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4()));

        let id = transport.send(&message).await.unwrap();

        let recorded = moto_raw_messages().await;
        let ours = recorded
            .iter()
            .find(|m| m["id"].as_str() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("message {} not in moto's ses.RawMessage", id.as_str()));
        assert_eq!(ours["raw_data"].as_str().unwrap().as_bytes(), message.raw.as_slice());
        assert_eq!(ours["source"], "clinic@example.org");
        let destinations: Vec<&str> =
            ours["destinations"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(!destinations.is_empty(), "{ours}");
        assert!(destinations.iter().all(|d| *d == "pat@example.org"), "{destinations:?}");
    }

    #[tokio::test]
    async fn a_send_with_a_configuration_set_is_accepted() {
        let client = client().await;
        verified(&client).await;
        let set = unique("carepost");
        client.create_configuration_set().configuration_set_name(&set).send().await.expect("CreateConfigurationSet");
        let transport = SesTransport::new(client, Some(set));

        let id = transport.send(&mail(&unique("key"))).await.unwrap();

        assert!(!id.as_str().is_empty());
    }

    /// Keeps the body of every request the client transmits, as the wire sees it.
    #[derive(Debug, Clone, Default)]
    struct CapturedBodies(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl aws_sdk_sesv2::config::Intercept for CapturedBodies {
        fn name(&self) -> &'static str {
            "CapturedBodies"
        }

        fn read_before_transmit(
            &self,
            context: &aws_sdk_sesv2::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
            _: &aws_sdk_sesv2::config::RuntimeComponents,
            _: &mut aws_sdk_sesv2::config::ConfigBag,
        ) -> Result<(), aws_sdk_sesv2::error::BoxError> {
            let body = context.request().body().bytes().map(|b| String::from_utf8_lossy(b).into_owned());
            self.0.lock().unwrap().push(body.unwrap_or_default());
            Ok(())
        }
    }

    #[tokio::test]
    async fn tracking_is_switched_per_message_on_the_wire_as_the_campaign_opted_in() {
        let client = client().await;
        verified(&client).await;
        let captured = CapturedBodies::default();
        let config = client.config().to_builder().interceptor(captured.clone()).build();
        let transport = SesTransport::new(aws_sdk_sesv2::Client::from_conf(config), None);
        let opens_only = carepost::domain::Tracking { opens: true, clicks: false };

        transport.send(&mail(&unique("key"))).await.unwrap();
        transport.send(&OutgoingMail { provider_tracking: opens_only, ..mail(&unique("key")) }).await.unwrap();

        let bodies = captured.0.lock().unwrap().clone();
        let tracking =
            |body: &str| serde_json::from_str::<Value>(body).unwrap()["ConfigurationOverrides"]["Tracking"].clone();
        assert_eq!(
            tracking(&bodies[0]),
            serde_json::json!({"OpenTrackingEnabled": "DISABLED", "ClickTrackingEnabled": "DISABLED"}),
            "not opted in: SES tracks nothing, whatever the configuration set says"
        );
        assert_eq!(
            tracking(&bodies[1]),
            serde_json::json!({"OpenTrackingEnabled": "ENABLED", "ClickTrackingEnabled": "DISABLED"})
        );
    }

    #[tokio::test]
    async fn an_unverified_sender_is_a_permanent_failure_that_names_no_address() {
        let transport = transport().await;
        let domain = format!("{}.example", unique("unverified"));
        let from = format!("clinic@{domain}");
        let message = OutgoingMail { from: from.clone(), ..mail(&unique("key")) };

        let error = transport.send(&message).await.unwrap_err();

        assert_eq!(error.kind, TransportErrorKind::Permanent, "{error}");
        assert_eq!(error.message, "ses SendEmail: MessageRejected");
        assert!(!error.to_string().contains(&domain) && !error.to_string().contains("pat@"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_ses_is_transient_because_nothing_was_sent() {
        let sdk = sdk().await;
        let config = aws_sdk_sesv2::config::Builder::from(&sdk)
            .endpoint_url(closed_endpoint())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        let transport = SesTransport::new(aws_sdk_sesv2::Client::from_conf(config), None);

        let error = transport.send(&mail(&unique("key"))).await.unwrap_err();

        assert_eq!(error.kind, TransportErrorKind::Transient, "{error}");
        assert!(!error.message.contains("pat@"), "{error}");
    }

    #[test]
    fn campaign_mail_is_tagged_with_ids_only() {
        let (campaign, contact) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());

        let tags = email_tags(&format!("{campaign}-{contact}"));

        assert_eq!(
            tags,
            vec![
                ("kind", "campaign".to_owned()),
                ("campaign_id", campaign.to_string()),
                ("contact_id", contact.to_string())
            ]
        );
        for (_, value) in &tags {
            assert!(value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'), "{value}");
        }
    }

    #[test]
    fn other_mail_keys_give_a_kind_tag_only() {
        assert_eq!(email_tags(&format!("confirm-{}", uuid::Uuid::new_v4())), vec![("kind", "confirmation".into())]);
        assert_eq!(email_tags("pat@example.org"), vec![("kind", "other".into())]);
        let not_uuids = format!("{}-{}", "x".repeat(36), "y".repeat(36));
        assert_eq!(email_tags(&not_uuids), vec![("kind", "other".into())]);
    }

    #[test]
    fn throttling_is_throttled() {
        use TransportErrorKind::Throttled;
        assert_eq!(classify_ses_error(Some("TooManyRequestsException"), None, Some(429)), Throttled);
        assert_eq!(classify_ses_error(Some("LimitExceededException"), None, Some(400)), Throttled);
        assert_eq!(classify_ses_error(Some("Throttling"), None, Some(400)), Throttled);
        assert_eq!(
            classify_ses_error(Some("MessageRejected"), Some("Maximum sending rate exceeded."), Some(400)),
            Throttled
        );
        assert_eq!(classify_ses_error(None, None, Some(429)), Throttled);
    }

    #[test]
    fn account_and_setup_problems_are_transient_so_messages_reach_the_dead_letter_queue() {
        for code in [
            "SendingPausedException",
            "AccountSuspendedException",
            "MailFromDomainNotVerifiedException",
            "NotFoundException",
        ] {
            assert_eq!(classify_ses_error(Some(code), None, Some(400)), TransportErrorKind::Transient, "{code}");
        }
        assert_eq!(classify_ses_error(Some("AccessDeniedException"), None, Some(403)), TransportErrorKind::Transient);
    }

    #[test]
    fn a_rejected_or_malformed_message_is_permanent() {
        for code in ["MessageRejected", "BadRequestException"] {
            assert_eq!(
                classify_ses_error(Some(code), Some("Email address is not verified."), Some(400)),
                TransportErrorKind::Permanent,
                "{code}"
            );
        }
    }

    #[test]
    fn a_server_error_may_have_been_accepted_so_it_is_ambiguous() {
        assert_eq!(classify_ses_error(Some("InternalFailure"), None, Some(500)), TransportErrorKind::Ambiguous);
        assert_eq!(classify_ses_error(None, None, Some(503)), TransportErrorKind::Ambiguous);
    }
}
