//! The audience estimate and the campaign lifecycle on the embedded stack:
//! a dry run's counts, by reason, equal what the campaign then does; the
//! frequency cap holds at fan-out and at send; cancel stops a campaign
//! within a batch; `carepost campaign watch` follows one to its end.

use base64::Engine;
use carepost::config::FrequencyCap;
use carepost::domain::{ContactId, ExternalId, ProfileInput};
use carepost::synthetic::sign_up_directly;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{TestApp, carepost_binary, spawn_app_with};

/// A marketing newsletter: not PHI-personalized and without a purpose, so
/// the frequency cap applies.
async fn newsletter(test: &TestApp, segment: Value) -> String {
    let body = json!({
        "name": "Newsletter", "category": "wellness-tips", "segment": segment,
        "template": {"subject": "News from the clinic", "html": "<p>Hello</p>", "text": "Hello {{ unsubscribe_url }}"}
    });
    let (status, created) = test.client.admin(Method::POST, "/v1/campaigns", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_owned()
}

/// `count` patients signed up for `category` (confirmed or not), with `conditions`.
async fn patients(
    test: &TestApp,
    group: &str,
    count: usize,
    category: &str,
    confirm: bool,
    conditions: &[&str],
) -> Vec<ContactId> {
    let app = &test.stack.app;
    let mut ids = Vec::new();
    for n in 0..count {
        let email = format!("{group}.{n}@example.org");
        let id = sign_up_directly(app, &email, category, confirm).await.unwrap();
        if !conditions.is_empty() {
            let input = ProfileInput {
                conditions: Some(conditions.iter().map(|c| (*c).to_owned()).collect()),
                ..Default::default()
            };
            let external = ExternalId::parse(&format!("{group}-{n}")).unwrap();
            app.contacts.upsert("test", external, &email, &input).await.unwrap();
        }
        ids.push(id);
    }
    ids
}

async fn withdraw(test: &TestApp, ids: &[ContactId], body: Value) {
    for id in ids {
        let (status, _) =
            test.client.admin(Method::POST, &format!("/v1/contacts/{id}/consent/withdraw"), Some(body.clone())).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_dry_run_counts_by_reason_equal_what_the_campaign_then_does() {
    let test = spawn_app_with(|c| {
        c.knobs.frequency_cap = Some(FrequencyCap::parse("1/7").unwrap());
        c.knobs.min_cell_size = 11;
    })
    .await;
    let suppressed = patients(&test, "suppressed", 15, "wellness-tips", true, &["copd"]).await;
    patients(&test, "other-topic", 15, "appointment-reminders", true, &["copd"]).await;
    patients(&test, "pending", 15, "wellness-tips", false, &["copd"]).await;
    let withdrawn = patients(&test, "withdrawn", 5, "wellness-tips", true, &["copd"]).await;
    patients(&test, "capped", 20, "wellness-tips", true, &["asthma"]).await;
    patients(&test, "no-conditions", 15, "wellness-tips", true, &[]).await;
    patients(&test, "elsewhere", 15, "wellness-tips", true, &["hypertension"]).await;
    patients(&test, "reached", 30, "wellness-tips", true, &["copd"]).await;
    withdraw(&test, &suppressed, json!({"all": true})).await;
    withdraw(&test, &withdrawn, json!({"categories": ["wellness-tips"]})).await;
    // Last week's newsletter reached the asthma group: the cap (1 in 7 days) now holds them back.
    let earlier = newsletter(&test, json!({"in": {"attr": "conditions", "values": ["asthma"]}})).await;
    test.client.launch(&earlier).await;
    assert_eq!(test.client.wait_completed(&earlier, std::time::Duration::from_secs(60)).await.unwrap()["sent"], 20);
    let campaign = newsletter(&test, json!({"in": {"attr": "conditions", "values": ["copd", "asthma"]}})).await;

    let (status, estimate) = test.client.admin(Method::POST, &format!("/v1/campaigns/{campaign}/dry-run"), None).await;
    let untouched = test.client.report(&campaign).await;
    test.client.launch(&campaign).await;
    let report = test.client.wait_completed(&campaign, std::time::Duration::from_secs(60)).await.unwrap();

    assert_eq!(status, StatusCode::OK, "{estimate}");
    assert_eq!(
        (untouched["evaluated"].as_u64(), untouched["status"].as_str()),
        (Some(0), Some("draft")),
        "a dry run sends nothing"
    );
    assert_eq!(estimate["evaluated"], 130);
    assert_eq!(estimate["included"], 30);
    let expected = json!({"suppressed": 15, "no_consent": 15, "consent_pending": 15, "consent_withdrawn": "fewer than 11",
        "no_hipaa_authorization": 0, "frequency_cap": 20, "missing_attribute": 15, "not_in_segment": 15});
    assert_eq!(estimate["excluded"], expected);
    // What the campaign did, reason by reason, under the same small-cell rule.
    assert_eq!(report["excluded"], expected, "{report}");
    assert_eq!((report["audience"].as_u64(), report["sent"].as_u64()), (Some(30), Some(30)), "{report}");
    let (_, audit) = test.client.admin(Method::GET, "/v1/audit?after=0&limit=1000", None).await;
    assert!(audit["entries"].as_array().unwrap().iter().any(|e| e["event"]["action"] == "campaign.dry_run"));
}

#[tokio::test]
async fn a_dry_run_that_outlasts_its_budget_resumes_from_a_sealed_token_to_the_same_counts() {
    let test = spawn_app_with(|c| {
        c.knobs.dry_run_budget_seconds = 0;
        c.knobs.throughput.fanout_shards = 1;
    })
    .await;
    patients(&test, "reached", 260, "wellness-tips", true, &["copd"]).await;
    patients(&test, "other-topic", 15, "appointment-reminders", true, &["copd"]).await;
    let campaign = newsletter(&test, json!({"in": {"attr": "conditions", "values": ["copd"]}})).await;
    let other = newsletter(&test, json!({"in": {"attr": "conditions", "values": ["asthma"]}})).await;
    let path = format!("/v1/campaigns/{campaign}/dry-run");

    let (first_status, first) = test.client.admin(Method::POST, &path, None).await;
    let token = first["resume"].as_str().unwrap_or_default().to_owned();
    let (_, last) = test.client.admin(Method::POST, &path, Some(json!({"resume": token}))).await;
    let mut tampered = token.clone().into_bytes();
    tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let (tampered_status, tampered_body) =
        test.client.admin(Method::POST, &path, Some(json!({"resume": tampered}))).await;
    let other_path = format!("/v1/campaigns/{other}/dry-run");
    let (swapped_status, _) = test.client.admin(Method::POST, &other_path, Some(json!({"resume": token}))).await;
    let (unknown_status, _) = test.client.admin(Method::POST, &path, Some(json!({"cursor": "x"}))).await;
    let args = [
        "campaign",
        "estimate",
        &campaign,
        "--output",
        "json",
        "--url",
        &test.client.base,
        "--token",
        &test.client.token,
    ];
    let output = tokio::process::Command::new(carepost_binary()).args(args).output().await.unwrap();

    assert_eq!(first_status, StatusCode::OK, "{first}");
    assert_eq!((first["complete"].as_bool(), first["evaluated"].as_u64()), (Some(false), Some(250)), "{first}");
    assert!(first.get("excluded").is_none() && first.get("included").is_none(), "no partial count is shown: {first}");
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("excluded"), "the token's counts are encrypted");
    assert_eq!((last["complete"].as_bool(), last["evaluated"].as_u64()), (Some(true), Some(275)), "{last}");
    assert_eq!((last["included"].as_u64(), last["excluded"]["no_consent"].as_u64()), (Some(260), Some(15)));
    assert_eq!(tampered_status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(tampered_body.to_string().contains("resume"), "{tampered_body}");
    assert_eq!(swapped_status, StatusCode::UNPROCESSABLE_ENTITY, "a token holds for its own campaign only");
    assert!(unknown_status.is_client_error());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed, last, "the CLI follows the resume tokens to the same estimate");
}

#[tokio::test]
async fn two_newsletters_at_once_never_pass_the_frequency_cap() {
    let test = spawn_app_with(|c| c.knobs.frequency_cap = Some(FrequencyCap::parse("1/7").unwrap())).await;
    patients(&test, "twice", 40, "wellness-tips", true, &["copd"]).await;
    let everyone = json!({"exists": {"attr": "conditions"}});
    let (a, b) = (newsletter(&test, everyone.clone()).await, newsletter(&test, everyone).await);

    // Whichever holds a patient back (fan-out seeing the other's send, or the
    // atomic claim at send when both fanned out first), each gets one.
    test.client.launch(&a).await;
    test.client.launch(&b).await;
    let ra = test.client.wait_completed(&a, std::time::Duration::from_secs(60)).await.unwrap();
    let rb = test.client.wait_completed(&b, std::time::Duration::from_secs(60)).await.unwrap();

    let sent = ra["sent"].as_u64().unwrap() + rb["sent"].as_u64().unwrap();
    let held_back = ra["skipped_at_send"].as_u64().unwrap()
        + rb["skipped_at_send"].as_u64().unwrap()
        + ra["excluded"]["frequency_cap"].as_u64().unwrap()
        + rb["excluded"]["frequency_cap"].as_u64().unwrap();
    assert_eq!((sent, held_back), (40, 40), "each patient got one of the two: {ra} {rb}");
}

#[tokio::test]
async fn cancel_stops_a_sending_campaign_within_a_batch_and_watch_follows_one_to_its_end() {
    let test = spawn_app_with(|c| c.knobs.throughput.send_rate_per_second = 20).await;
    patients(&test, "slow", 200, "wellness-tips", true, &["copd"]).await;
    let cancelled = newsletter(&test, json!({"exists": {"attr": "conditions"}})).await;
    test.client.launch(&cancelled).await;
    loop {
        if test.client.report(&cancelled).await["sent"].as_u64().unwrap() >= 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (status, body) = test.client.admin(Method::POST, &format!("/v1/campaigns/{cancelled}/cancel"), None).await;
    let sent_at_cancel = test.client.report(&cancelled).await["sent"].as_u64().unwrap();
    let mut report = test.client.report(&cancelled).await;
    for _ in 0..200 {
        if report["remaining"] == 0 && report["audience"] == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        report = test.client.report(&cancelled).await;
    }
    let (again, _) = test.client.admin(Method::POST, &format!("/v1/campaigns/{cancelled}/cancel"), None).await;

    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("cancelled")));
    assert_eq!(again, StatusCode::OK, "cancelling twice is harmless");
    let sent = report["sent"].as_u64().unwrap();
    assert!(
        sent < 200 && sent <= sent_at_cancel + 12,
        "at most a batch per sender after the cancel: {sent_at_cancel} then {report}"
    );
    assert_eq!(report["status"], "cancelled");
    assert_eq!(report["skipped_at_send"].as_u64().unwrap() + sent, report["audience"].as_u64().unwrap());

    // A second campaign, followed by `carepost campaign watch` to its end.
    let watched = newsletter(&test, json!({"in": {"attr": "conditions", "values": ["copd"]}})).await;
    test.client.launch(&watched).await;
    let args = ["campaign", "watch", &watched, "--url", &test.client.base, "--token", &test.client.token];
    let output = tokio::process::Command::new(carepost_binary()).args(args).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("campaign completed: 200 sent of an audience of 200"), "{stdout}");
    let (status, _) = test.client.admin(Method::POST, &format!("/v1/campaigns/{watched}/cancel"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a completed campaign cannot be cancelled");
}

#[tokio::test]
async fn a_scheduled_campaign_waits_for_its_time_and_a_cancelled_one_never_starts() {
    let test = spawn_app_with(|_| {}).await;
    patients(&test, "scheduled", 12, "wellness-tips", true, &["copd"]).await;
    let at = |seconds: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let create = |launch_at: String| {
        json!({"name": "Flu clinic", "category": "wellness-tips", "segment": {"exists": {"attr": "conditions"}},
               "launch_at": launch_at,
               "template": {"subject": "Flu clinic", "html": "<p>Hello</p>", "text": "Hello {{ unsubscribe_url }}"}})
    };
    let (_, soon) = test.client.admin(Method::POST, "/v1/campaigns", Some(create(at(3)))).await;
    let (_, later) = test.client.admin(Method::POST, "/v1/campaigns", Some(create(at(3600)))).await;
    let (soon, later) = (soon["id"].as_str().unwrap().to_owned(), later["id"].as_str().unwrap().to_owned());

    let (status, launched) = test.client.admin(Method::POST, &format!("/v1/campaigns/{soon}/launch"), None).await;
    let waiting = test.client.report(&soon).await;
    test.client.launch(&later).await;
    let (_, cancelled) = test.client.admin(Method::POST, &format!("/v1/campaigns/{later}/cancel"), None).await;
    let done = test.client.wait_completed(&soon, std::time::Duration::from_secs(60)).await.unwrap();

    assert_eq!((status, launched["status"].as_str()), (StatusCode::ACCEPTED, Some("scheduled")), "{launched}");
    assert_eq!((waiting["status"].as_str(), waiting["evaluated"].as_u64()), (Some("scheduled"), Some(0)));
    assert!(waiting["launch_at"].is_string());
    assert_eq!(done["sent"], 12);
    assert_eq!(cancelled["status"], "cancelled");
    let never = test.client.report(&later).await;
    assert_eq!((never["status"].as_str(), never["evaluated"].as_u64()), (Some("cancelled"), Some(0)));
}
