use std::collections::HashMap;

use async_trait::async_trait;

use super::*;
use crate::ports::{
    AccountStanding, ConfigurationSetStanding, EventDestinationStanding, IdentityStanding, LookupError,
    MailFromStanding,
};

/// An account as a test sets it up; a `None` call does not answer.
#[derive(Clone)]
struct FakeAccount {
    account: Option<AccountStanding>,
    identity: Option<Option<IdentityStanding>>,
    set: Option<Option<ConfigurationSetStanding>>,
    destinations: Option<Vec<EventDestinationStanding>>,
}

fn denied(operation: &'static str) -> AccountError {
    AccountError { operation, code: "AccessDeniedException".into(), source: None }
}

#[async_trait]
impl SendingAccount for FakeAccount {
    async fn account(&self) -> Result<AccountStanding, AccountError> {
        self.account.clone().ok_or_else(|| denied("GetAccount"))
    }
    async fn identity(&self, _: &str) -> Result<Option<IdentityStanding>, AccountError> {
        self.identity.clone().ok_or_else(|| denied("GetEmailIdentity"))
    }
    async fn configuration_set(&self, _: &str) -> Result<Option<ConfigurationSetStanding>, AccountError> {
        self.set.clone().ok_or_else(|| denied("GetConfigurationSet"))
    }
    async fn event_destinations(&self, _: &str) -> Result<Vec<EventDestinationStanding>, AccountError> {
        self.destinations.clone().ok_or_else(|| denied("GetConfigurationSetEventDestinations"))
    }
}

struct FakeDns(Option<HashMap<String, Vec<String>>>);

#[async_trait]
impl TxtRecords for FakeDns {
    async fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let zone = self.0.as_ref().ok_or_else(|| LookupError { name: name.to_owned(), source: None })?;
        Ok(zone.get(name).cloned().unwrap_or_default())
    }
}

fn healthy() -> FakeAccount {
    FakeAccount {
        account: Some(AccountStanding {
            production_access: true,
            sending_enabled: true,
            max_send_rate: 14.0,
            max_24_hour_send: 50_000.0,
        }),
        identity: Some(Some(IdentityStanding {
            verified_for_sending: true,
            dkim: Some(Verification::Success),
            mail_from: Some(MailFromStanding { domain: "bounce.clinic.example".into(), status: Verification::Success }),
        })),
        set: Some(Some(ConfigurationSetStanding { tls_required: true, sending_enabled: true })),
        destinations: Some(vec![EventDestinationStanding {
            name: "carepost-events".into(),
            enabled: true,
            events: EXPECTED_EVENTS.map(String::from).to_vec(),
            to_event_bridge: true,
        }]),
    }
}

fn dmarc(records: &[&str]) -> FakeDns {
    FakeDns(Some(HashMap::from([(
        "_dmarc.clinic.example".to_owned(),
        records.iter().map(|r| r.to_string()).collect(),
    )])))
}

fn target(rate: u32) -> SendingTarget {
    SendingTarget {
        sender_domain: "clinic.example".into(),
        configuration_set: "carepost-mail".into(),
        send_rate_per_second: rate,
    }
}

async fn examine(account: FakeAccount, dns: FakeDns, rate: u32) -> Vec<Finding> {
    Doctor::new(Arc::new(account), Arc::new(dns)).examine(&target(rate)).await
}

fn verdict(findings: &[Finding], check: &str) -> Verdict {
    findings.iter().find(|f| f.check == check).unwrap_or_else(|| panic!("no {check} in {findings:?}")).verdict
}

fn finding<'a>(findings: &'a [Finding], check: &str) -> &'a Finding {
    findings.iter().find(|f| f.check == check).unwrap()
}

#[tokio::test]
async fn a_ready_account_passes_every_check_and_has_nothing_to_fix() {
    let findings = examine(healthy(), dmarc(&["v=DMARC1; p=quarantine; adkim=s"]), 10).await;

    assert_eq!(findings.len(), 9, "{findings:?}");
    assert!(findings.iter().all(|f| f.verdict == Verdict::Ok && f.fix.is_none()), "{findings:?}");
}

#[tokio::test]
async fn a_sandboxed_paused_account_and_a_rate_above_the_quota_each_name_their_fix() {
    let mut account = healthy();
    account.account = Some(AccountStanding {
        production_access: false,
        sending_enabled: false,
        max_send_rate: 1.0,
        max_24_hour_send: 200.0,
    });

    let findings = examine(account, dmarc(&["v=DMARC1; p=reject"]), 14).await;

    assert_eq!(verdict(&findings, "production access"), Verdict::Fix);
    assert_eq!(verdict(&findings, "sending enabled"), Verdict::Fix);
    let rate = finding(&findings, "send rate");
    assert_eq!(rate.verdict, Verdict::Fix);
    assert!(rate.seen.contains("SendRatePerSecond 14") && rate.seen.contains("1/s"), "{}", rate.seen);
    assert!(rate.fix.as_deref().unwrap().contains("SendRatePerSecond=1"), "{:?}", rate.fix);
}

#[tokio::test]
async fn an_unverified_identity_without_dkim_or_mail_from_is_three_fixes() {
    let mut account = healthy();
    account.identity = Some(Some(IdentityStanding {
        verified_for_sending: false,
        dkim: Some(Verification::Pending),
        mail_from: None,
    }));

    let findings = examine(account, dmarc(&["v=DMARC1; p=none"]), 10).await;

    assert_eq!(verdict(&findings, "identity"), Verdict::Fix);
    assert!(finding(&findings, "DKIM").seen.contains("PENDING"));
    assert!(finding(&findings, "MAIL FROM").fix.as_deref().unwrap().contains("MailFromSubdomain"));
    assert_eq!(verdict(&findings, "DMARC"), Verdict::Ok, "p=none is published DMARC, if weak");
}

#[tokio::test]
async fn a_missing_identity_says_how_to_create_it() {
    let mut account = healthy();
    account.identity = Some(None);

    let findings = examine(account, dmarc(&["v=DMARC1; p=reject"]), 10).await;

    let identity = finding(&findings, "identity");
    assert_eq!(identity.verdict, Verdict::Fix);
    assert!(identity.fix.as_deref().unwrap().contains("CreateSenderIdentity=true"));
    assert!(findings.iter().all(|f| f.check != "DKIM"), "nothing to say of DKIM without an identity");
}

#[tokio::test]
async fn an_optional_tls_policy_and_missing_event_types_are_fixes_naming_them() {
    let mut account = healthy();
    account.set = Some(Some(ConfigurationSetStanding { tls_required: false, sending_enabled: true }));
    account.destinations = Some(vec![EventDestinationStanding {
        name: "partial".into(),
        enabled: true,
        events: vec!["SEND".into(), "BOUNCE".into()],
        to_event_bridge: true,
    }]);

    let findings = examine(account, dmarc(&["v=DMARC1; p=reject"]), 10).await;

    let tls = finding(&findings, "TLS policy");
    assert_eq!(tls.verdict, Verdict::Fix);
    assert!(tls.fix.as_deref().unwrap().contains("--tls-policy REQUIRE"));
    let events = finding(&findings, "event destination");
    assert_eq!(events.verdict, Verdict::Fix);
    assert!(events.seen.contains("COMPLAINT") && events.seen.contains("DELIVERY_DELAY"), "{}", events.seen);
    assert!(!events.seen.contains("BOUNCE"), "{}", events.seen);
}

#[tokio::test]
async fn a_disabled_destination_publishes_nothing() {
    let mut account = healthy();
    account.destinations.as_mut().unwrap()[0].enabled = false;

    let findings = examine(account, dmarc(&["v=DMARC1; p=reject"]), 10).await;

    assert_eq!(verdict(&findings, "event destination"), Verdict::Fix);
}

#[tokio::test]
async fn calls_that_are_not_answered_are_unknown_not_guessed() {
    let account = FakeAccount { account: None, identity: None, set: None, destinations: None };

    let findings = examine(account, FakeDns(None), 10).await;

    assert_eq!(findings.len(), 9, "{findings:?}");
    assert!(findings.iter().all(|f| f.verdict == Verdict::Unknown), "{findings:?}");
    assert!(finding(&findings, "send rate").fix.as_deref().unwrap().contains("allow ses:GetAccount"));
}

#[tokio::test]
async fn dmarc_missing_doubled_or_without_a_policy_is_a_fix() {
    for records in
        [vec![], vec!["v=spf1 -all"], vec!["v=DMARC1; p=reject", "v=DMARC1; p=none"], vec!["v=DMARC1; rua=x"]]
    {
        let findings = examine(healthy(), dmarc(&records), 10).await;

        assert_eq!(verdict(&findings, "DMARC"), Verdict::Fix, "{records:?}");
    }
}
