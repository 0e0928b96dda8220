//! `carepost doctor`: checks a deployed account against what sending needs
//! and says what to fix. Each check reads one thing (the SES account, the
//! sending identity, the configuration set, its event destination, the
//! domain's DMARC record) and gives a verdict with what it saw; a check
//! whose source did not answer says so rather than guessing.

use std::sync::Arc;

use crate::ports::{AccountError, SendingAccount, TxtRecords, Verification};

/// What the stack sends with: its `SenderDomain`, configuration set and
/// `SendRatePerSecond`.
#[derive(Debug, Clone, PartialEq)]
pub struct SendingTarget {
    pub sender_domain: String,
    pub configuration_set: String,
    pub send_rate_per_second: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    /// Something must change before campaigns go out as they should.
    Fix,
    /// The source did not answer (permissions, or a service that does not
    /// serve the call); nothing is known either way.
    Unknown,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was seen, in a line.
    pub seen: String,
    /// What to do, for `Fix` (and for `Unknown`: how to let it be checked).
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, seen: impl Into<String>) -> Self {
        Self { check, verdict: Verdict::Ok, seen: seen.into(), fix: None }
    }

    fn fix(check: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, verdict: Verdict::Fix, seen: seen.into(), fix: Some(fix.into()) }
    }

    fn unknown(check: &'static str, error: &AccountError) -> Self {
        let fix = if error.code.contains("AccessDenied") {
            format!(
                "allow ses:{} to the caller (the stack's OperatorPolicyArn does), then run doctor again",
                error.operation
            )
        } else {
            format!("SES did not serve {}: check the region (--region) and run doctor again", error.operation)
        };
        Self { check, verdict: Verdict::Unknown, seen: error.to_string(), fix: Some(fix) }
    }
}

/// The SES event types the stack's consumer reads (the template's
/// `MailEventDestination` publishes all of them).
pub const EXPECTED_EVENTS: [&str; 10] = [
    "SEND",
    "REJECT",
    "BOUNCE",
    "COMPLAINT",
    "DELIVERY",
    "OPEN",
    "CLICK",
    "RENDERING_FAILURE",
    "DELIVERY_DELAY",
    "SUBSCRIPTION",
];

pub struct Doctor {
    account: Arc<dyn SendingAccount>,
    dns: Arc<dyn TxtRecords>,
}

impl Doctor {
    pub fn new(account: Arc<dyn SendingAccount>, dns: Arc<dyn TxtRecords>) -> Self {
        Self { account, dns }
    }

    /// Every check, in the order an operator fixes them.
    pub async fn examine(&self, target: &SendingTarget) -> Vec<Finding> {
        let mut findings = self.account_checks(target).await;
        findings.extend(self.identity_checks(target).await);
        findings.extend(self.configuration_set_checks(target).await);
        findings.push(self.dmarc_check(target).await);
        findings
    }

    async fn account_checks(&self, target: &SendingTarget) -> Vec<Finding> {
        let account = match self.account.account().await {
            Ok(account) => account,
            Err(e) => {
                return ["production access", "sending enabled", "send rate"]
                    .map(|check| Finding::unknown(check, &e))
                    .to_vec();
            }
        };
        let production = if account.production_access {
            Finding::ok("production access", "granted")
        } else {
            Finding::fix(
                "production access",
                "the account is in the SES sandbox: mail reaches verified addresses only",
                "request production access (SES console, Account dashboard; or aws sesv2 put-account-details \
                 --production-access-enabled ...)",
            )
        };
        let enabled = if account.sending_enabled {
            Finding::ok("sending enabled", "yes")
        } else {
            Finding::fix(
                "sending enabled",
                "sending is paused for the whole account",
                "read why on the SES account dashboard (a review or a suspension), then aws sesv2 \
                 put-account-sending-attributes --sending-enabled",
            )
        };
        let quota = account.max_send_rate;
        let wanted = f64::from(target.send_rate_per_second);
        let rate = if quota >= wanted {
            Finding::ok(
                "send rate",
                format!(
                    "SendRatePerSecond {} within the account's {}/s ({} a day)",
                    target.send_rate_per_second,
                    trim(quota),
                    trim(account.max_24_hour_send)
                ),
            )
        } else {
            let fitting = quota.floor().max(1.0);
            Finding::fix(
                "send rate",
                format!(
                    "SendRatePerSecond {} is above the account's {}/s: SES would throttle every second",
                    target.send_rate_per_second,
                    trim(quota)
                ),
                format!(
                    "sam deploy --parameter-overrides SendRatePerSecond={}, or ask AWS for a higher sending quota",
                    trim(fitting)
                ),
            )
        };
        vec![production, enabled, rate]
    }

    async fn identity_checks(&self, target: &SendingTarget) -> Vec<Finding> {
        let domain = &target.sender_domain;
        let identity = match self.account.identity(domain).await {
            Ok(Some(identity)) => identity,
            Ok(None) => {
                return vec![Finding::fix(
                    "identity",
                    format!("no SES identity for {domain}"),
                    "deploy with --parameter-overrides CreateSenderIdentity=true, then publish the stack's \
                     SenderDkimRecord and SenderMailFrom outputs in DNS",
                )];
            }
            Err(e) => return ["identity", "DKIM", "MAIL FROM"].map(|check| Finding::unknown(check, &e)).to_vec(),
        };
        let verified = if identity.verified_for_sending {
            Finding::ok("identity", format!("{domain} verified for sending"))
        } else {
            Finding::fix(
                "identity",
                format!("{domain} is not verified for sending yet"),
                "publish the three DKIM CNAME records (stack outputs SenderDkimRecord1-3); SES verifies once they resolve",
            )
        };
        let dkim = match &identity.dkim {
            Some(Verification::Success) => Finding::ok("DKIM", "signing, records verified"),
            Some(status) => Finding::fix(
                "DKIM",
                format!("DKIM is {}", status.as_str()),
                "publish the stack outputs SenderDkimRecord1-3 as CNAME records exactly as shown",
            ),
            None => Finding::fix(
                "DKIM",
                "DKIM signing is not set up",
                "deploy with CreateSenderIdentity=true (Easy DKIM, 2048-bit) and publish its CNAME records",
            ),
        };
        let mail_from = match &identity.mail_from {
            Some(from) if from.status == Verification::Success => {
                Finding::ok("MAIL FROM", format!("{} verified", from.domain))
            }
            Some(from) => Finding::fix(
                "MAIL FROM",
                format!("{} is {}", from.domain, from.status.as_str()),
                "publish the stack outputs SenderMailFromMxRecord and SenderMailFromSpfRecord",
            ),
            None => Finding::fix(
                "MAIL FROM",
                "no custom MAIL FROM domain: SPF passes for amazonses.com, not for the sender's domain",
                "deploy with CreateSenderIdentity=true (MailFromSubdomain) and publish its MX and SPF records",
            ),
        };
        vec![verified, dkim, mail_from]
    }

    async fn configuration_set_checks(&self, target: &SendingTarget) -> Vec<Finding> {
        let name = &target.configuration_set;
        let tls = match self.account.configuration_set(name).await {
            Ok(Some(set)) if set.tls_required => Finding::ok("TLS policy", format!("{name}: TlsPolicy REQUIRE")),
            Ok(Some(_)) => Finding::fix(
                "TLS policy",
                format!("{name}: TlsPolicy OPTIONAL, so SES may hand PHI to a server in clear text"),
                format!(
                    "aws sesv2 put-configuration-set-delivery-options --configuration-set-name {name} --tls-policy \
                     REQUIRE (the template sets REQUIRE: a redeploy restores it)"
                ),
            ),
            Ok(None) => {
                return vec![Finding::fix(
                    "configuration set",
                    format!("no configuration set {name}"),
                    "deploy the stack, or pass the stack's ConfigurationSetName output",
                )];
            }
            Err(e) => Finding::unknown("TLS policy", &e),
        };
        let events = match self.account.event_destinations(name).await {
            Ok(destinations) => {
                let published = |event: &str| {
                    destinations.iter().any(|d| d.enabled && d.to_event_bridge && d.events.iter().any(|e| e == event))
                };
                let missing: Vec<&str> = EXPECTED_EVENTS.into_iter().filter(|e| !published(e)).collect();
                if missing.is_empty() {
                    Finding::ok("event destination", "every event type published to EventBridge")
                } else {
                    Finding::fix(
                        "event destination",
                        format!("not published to an enabled EventBridge destination: {}", missing.join(", ")),
                        "redeploy the stack: its MailEventDestination publishes every event type to EventBridge, whose SesEventsRule feeds the queue",
                    )
                }
            }
            Err(e) => Finding::unknown("event destination", &e),
        };
        vec![tls, events]
    }

    async fn dmarc_check(&self, target: &SendingTarget) -> Finding {
        let name = format!("_dmarc.{}", target.sender_domain);
        let records = match self.dns.txt(&name).await {
            Ok(records) => records,
            Err(e) => {
                return Finding {
                    check: "DMARC",
                    verdict: Verdict::Unknown,
                    seen: e.to_string(),
                    fix: Some("run doctor where DNS resolves, or give --dns-server".to_owned()),
                };
            }
        };
        let dmarc: Vec<&String> =
            records.iter().filter(|r| r.trim_start().to_ascii_lowercase().starts_with("v=dmarc1")).collect();
        let publish = "publish the stack output SenderDmarcRecord (one TXT record)";
        match dmarc.as_slice() {
            [] => Finding::fix("DMARC", format!("no DMARC record at {name}"), publish),
            [record] => match dmarc_policy(record) {
                Some(policy @ ("quarantine" | "reject")) => Finding::ok("DMARC", format!("{name}: p={policy}")),
                Some("none") => Finding::ok("DMARC", format!("{name}: p=none (reports only; quarantine protects)")),
                _ => Finding::fix("DMARC", format!("{name}: the record has no valid p= policy"), publish),
            },
            // RFC 7489 6.6.3: more than one record means no DMARC at all.
            _ => Finding::fix(
                "DMARC",
                format!("{} DMARC records at {name}: receivers ignore them all", dmarc.len()),
                "keep one DMARC record",
            ),
        }
    }
}

/// The `p=` tag of a DMARC record, lower-cased.
fn dmarc_policy(record: &str) -> Option<&'static str> {
    let value = record
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .find_map(|(k, v)| (k.trim().eq_ignore_ascii_case("p")).then(|| v.trim().to_ascii_lowercase()))?;
    ["none", "quarantine", "reject"].into_iter().find(|p| *p == value)
}

/// A rate as SES gives it (a float), without a useless ".0".
fn trim(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value}") }
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;
