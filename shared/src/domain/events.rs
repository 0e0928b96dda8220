//! Mail events from the provider (SES event publishing), reduced to what we
//! act on. Recipient addresses and headers in the event are never read.

use serde::Deserialize;

use super::{CampaignId, ContactId, ProviderMessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    Permanent,
    Transient,
    Undetermined,
    /// A transient bounce because the recipient's mail server could not
    /// take the message over TLS (the configuration set requires it): SES
    /// gave up with a 4.4.7 expiry whose diagnostic names TLS or the
    /// connection. Not the patient's fault: never suppresses, never counts
    /// toward the soft-bounce rule.
    TlsUnavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailEventKind {
    Send,
    Delivery,
    Bounce(BounceKind),
    Complaint,
    Reject,
    Open,
    Click,
    DeliveryDelay,
    RenderingFailure,
    Subscription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailEvent {
    pub provider_message_id: ProviderMessageId,
    pub kind: MailEventKind,
    /// The `campaign_id` and `contact_id` tags we set on the message (random
    /// IDs), which let a Send event settle a claim whose answer was lost.
    pub tagged: Option<(CampaignId, ContactId)>,
    /// An open or click by an image proxy or link scanner rather than a
    /// person (judged from the event's user agent, which is not kept).
    pub machine: bool,
    /// What the event says beyond its kind, reduced to IDs and fixed words.
    pub detail: EventDetail,
}

/// The parts of an event we keep, none of them PHI: SES's own vocabularies
/// (an unknown word becomes `Other`), topic names, a template name, and a
/// hash of a clicked link (its URL may carry personal data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDetail {
    /// Subscription: the recipient's new preferences.
    pub preferences: Option<TopicPreferences>,
    /// Reject and Rendering Failure: why, as an error type, and the template.
    pub failure: Option<ProviderFailure>,
    /// Click: which link of the message.
    pub link: Option<LinkKey>,
    /// Bounce: SES's `bounceSubType` (`General`, `NoEmail`, `MailboxFull` …).
    pub bounce_subtype: Option<String>,
    /// DeliveryDelay: SES's `delayType` (`MailboxFull`, `TransientCommunicationFailure` …).
    pub delay_type: Option<String>,
    /// A bounce for lack of TLS: the domain whose server could not do it
    /// (the address it was read from is not kept), for later sends.
    pub tls_gap_domain: Option<super::RecipientDomain>,
}

/// SES subscription management's `newTopicPreferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicPreferences {
    /// The recipient left the whole contact list.
    pub unsubscribe_all: bool,
    /// SES topic names whose new status is `OptOut`.
    pub opted_out: Vec<String>,
}

/// Why the provider could not send a message it had accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    /// `bad_content` (a virus or policy reject), `missing_attribute`
    /// (rendering), or `other`; never the provider's text, which can quote
    /// the recipient's data.
    pub error_type: &'static str,
    /// The SES template named by a Rendering Failure, if it is a valid SES
    /// template name.
    pub template: Option<String>,
}

/// One link of one message: a truncated SHA-256 of the clicked URL
/// (`h` + 16 hex digits) for provider clicks, or `n` + the link's number for
/// first-party tracking. Never the URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkKey(String);

impl LinkKey {
    pub fn of_url(url: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, url.as_bytes());
        LinkKey(format!("h{}", hex::encode(&digest.as_ref()[..8])))
    }

    pub fn of_number(number: u16) -> Self {
        LinkKey(format!("n{number}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SES's bounce subtypes (`bounce.bounceSubType`).
const BOUNCE_SUBTYPES: &[&str] = &[
    "Undetermined",
    "General",
    "NoEmail",
    "Suppressed",
    "OnAccountSuppressionList",
    "MailboxFull",
    "MessageTooLarge",
    "ContentRejected",
    "AttachmentRejected",
];

/// SES's delay types (`deliveryDelay.delayType`).
const DELAY_TYPES: &[&str] = &[
    "InternalFailure",
    "General",
    "MailboxFull",
    "SpamDetected",
    "RecipientServerError",
    "IPFailure",
    "TransientCommunicationFailure",
    "BYOIPHostNameLookupUnavailable",
    "Undetermined",
    "SendingDeferral",
];

/// `value` if SES's vocabulary has it, else `Other`: nothing else is kept.
fn known(value: Option<String>, vocabulary: &[&str]) -> Option<String> {
    value.map(|v| if vocabulary.contains(&v.as_str()) { v } else { "Other".to_owned() })
}

/// An SES template name (letters, digits, `_` and `-`, at most 64), or none.
fn template_name(value: Option<String>) -> Option<String> {
    value.filter(|v| {
        (1..=64).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Never the input: the event carries the recipient's address and the
/// subject, so its text is a scrubbed parse error or a fixed rule.
#[derive(Debug, thiserror::Error)]
#[error("not a mail event we understand: {0}")]
pub struct ParseMailEventError(String);

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "eventType", alias = "notificationType")]
    event_type: Option<String>,
    mail: Option<MailPart>,
    bounce: Option<BouncePart>,
    open: Option<AgentPart>,
    click: Option<AgentPart>,
    subscription: Option<SubscriptionPart>,
    reject: Option<RejectPart>,
    failure: Option<FailurePart>,
    #[serde(rename = "deliveryDelay")]
    delivery_delay: Option<DelayPart>,
    /// SNS wraps the event as a JSON string in `Message`.
    #[serde(rename = "Message")]
    sns_message: Option<String>,
    /// EventBridge puts it in `detail`.
    detail: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MailPart {
    #[serde(rename = "messageId")]
    message_id: String,
    #[serde(default)]
    tags: std::collections::HashMap<String, Vec<String>>,
}

impl MailPart {
    fn tagged(&self) -> Option<(CampaignId, ContactId)> {
        let first = |k: &str| self.tags.get(k).and_then(|v| v.first()).map(String::as_str);
        Some((CampaignId::parse(first("campaign_id")?).ok()?, ContactId::parse(first("contact_id")?).ok()?))
    }
}

#[derive(Deserialize)]
struct AgentPart {
    #[serde(rename = "userAgent")]
    user_agent: Option<String>,
    /// Click only; hashed at once, never kept.
    link: Option<String>,
}

#[derive(Deserialize)]
struct BouncePart {
    #[serde(rename = "bounceType")]
    bounce_type: Option<String>,
    #[serde(rename = "bounceSubType")]
    bounce_subtype: Option<String>,
    /// Read only to recognise a TLS failure, then dropped: the remote
    /// server's text may quote the address.
    #[serde(rename = "bouncedRecipients", default)]
    bounced_recipients: Vec<BouncedRecipientPart>,
}

#[derive(Deserialize)]
struct BouncedRecipientPart {
    #[serde(rename = "diagnosticCode")]
    diagnostic_code: Option<String>,
    /// Read only for its domain, then dropped.
    #[serde(rename = "emailAddress")]
    email_address: Option<String>,
}

impl BouncePart {
    /// Whether a recipient bounced for lack of TLS, and the first such
    /// recipient's domain when its address parses.
    fn tls_unavailable(&self) -> (bool, Option<super::RecipientDomain>) {
        let mut failed =
            self.bounced_recipients.iter().filter(|r| r.diagnostic_code.as_deref().is_some_and(is_tls_failure));
        let Some(first) = failed.next() else { return (false, None) };
        let domain =
            first.email_address.as_deref().and_then(|a| super::EmailAddress::parse(a).ok()).map(|a| a.domain());
        (true, domain)
    }
}

/// SES's diagnostic when TLS is required and the recipient's server could
/// not do it: the message expires (`4.4.7`) after retries, the last error
/// naming TLS, STARTTLS or the failed connection.
fn is_tls_failure(diagnostic: &str) -> bool {
    let lower = diagnostic.to_ascii_lowercase();
    lower.contains("4.4.7") && (lower.contains("tls") || lower.contains("failed to establish connection"))
}

#[derive(Deserialize)]
struct SubscriptionPart {
    #[serde(rename = "newTopicPreferences")]
    new_topic_preferences: Option<PreferencesPart>,
}

#[derive(Deserialize)]
struct PreferencesPart {
    #[serde(rename = "unsubscribeAll", default)]
    unsubscribe_all: bool,
    #[serde(rename = "topicSubscriptionStatus", default)]
    topic_subscription_status: Vec<TopicStatusPart>,
}

#[derive(Deserialize)]
struct TopicStatusPart {
    #[serde(rename = "topicName")]
    topic_name: Option<String>,
    #[serde(rename = "subscriptionStatus")]
    subscription_status: Option<String>,
}

#[derive(Deserialize)]
struct RejectPart {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct FailurePart {
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
    #[serde(rename = "templateName")]
    template_name: Option<String>,
}

#[derive(Deserialize)]
struct DelayPart {
    #[serde(rename = "delayType")]
    delay_type: Option<String>,
}

impl MailEvent {
    /// Parses an SES event as SES publishes it, wrapped by SNS, or as an
    /// EventBridge `detail`.
    pub fn parse(body: &str) -> Result<MailEvent, ParseMailEventError> {
        let envelope: Envelope =
            serde_json::from_str(body).map_err(|e| ParseMailEventError(super::scrub::parse_error(&e).to_string()))?;
        if let Some(inner) = envelope.sns_message {
            return MailEvent::parse(&inner);
        }
        if let Some(detail) = envelope.detail {
            return MailEvent::parse(&detail.to_string());
        }
        let event_type = envelope.event_type.ok_or_else(|| ParseMailEventError("no eventType".into()))?;
        let mail = envelope.mail.ok_or_else(|| ParseMailEventError("no mail.messageId".into()))?;
        let (bounce_type, bounce_subtype, (tls_unavailable, tls_domain)) = match envelope.bounce {
            Some(b) => {
                let tls = b.tls_unavailable();
                (b.bounce_type, b.bounce_subtype, tls)
            }
            None => (None, None, (false, None)),
        };
        let kind = match event_type.as_str() {
            "Send" => MailEventKind::Send,
            "Delivery" => MailEventKind::Delivery,
            "Bounce" => MailEventKind::Bounce(match bounce_type.as_deref() {
                Some("Permanent") => BounceKind::Permanent,
                Some("Transient") if tls_unavailable => BounceKind::TlsUnavailable,
                Some("Transient") => BounceKind::Transient,
                _ => BounceKind::Undetermined,
            }),
            "Complaint" => MailEventKind::Complaint,
            "Reject" => MailEventKind::Reject,
            "Open" => MailEventKind::Open,
            "Click" => MailEventKind::Click,
            "DeliveryDelay" => MailEventKind::DeliveryDelay,
            "Rendering Failure" | "RenderingFailure" => MailEventKind::RenderingFailure,
            "Subscription" => MailEventKind::Subscription,
            // Not echoed: the message's text is never the input's.
            _ => return Err(ParseMailEventError("unknown event type".into())),
        };
        let tagged = mail.tagged();
        let link = envelope.click.as_ref().and_then(|c| c.link.as_deref()).map(LinkKey::of_url);
        let agent = envelope.open.or(envelope.click).and_then(|a| a.user_agent);
        let machine = matches!(kind, MailEventKind::Open | MailEventKind::Click)
            && super::engagement::is_machine(agent.as_deref(), false);
        let failure = match kind {
            MailEventKind::Reject => Some(ProviderFailure {
                error_type: match envelope.reject.and_then(|r| r.reason).as_deref() {
                    Some("Bad content") => "bad_content",
                    _ => "other",
                },
                template: None,
            }),
            MailEventKind::RenderingFailure => {
                let (message, template) = match envelope.failure {
                    Some(f) => (f.error_message, f.template_name),
                    None => (None, None),
                };
                Some(ProviderFailure {
                    error_type: match message.as_deref() {
                        Some(m) if m.contains("is not present in the rendering data") => "missing_attribute",
                        _ => "other",
                    },
                    template: template_name(template),
                })
            }
            _ => None,
        };
        let preferences = match kind {
            MailEventKind::Subscription => {
                let new = envelope.subscription.and_then(|s| s.new_topic_preferences);
                Some(match new {
                    Some(p) => TopicPreferences {
                        unsubscribe_all: p.unsubscribe_all,
                        opted_out: p
                            .topic_subscription_status
                            .into_iter()
                            .filter(|t| t.subscription_status.as_deref() == Some("OptOut"))
                            .filter_map(|t| t.topic_name)
                            .collect(),
                    },
                    // An old-style event without preferences: the list-level unsubscribe.
                    None => TopicPreferences { unsubscribe_all: true, opted_out: Vec::new() },
                })
            }
            _ => None,
        };
        let detail = EventDetail {
            preferences,
            failure,
            link: link.filter(|_| kind == MailEventKind::Click),
            bounce_subtype: known(bounce_subtype, BOUNCE_SUBTYPES).filter(|_| matches!(kind, MailEventKind::Bounce(_))),
            tls_gap_domain: tls_domain.filter(|_| kind == MailEventKind::Bounce(BounceKind::TlsUnavailable)),
            delay_type: known(envelope.delivery_delay.and_then(|d| d.delay_type), DELAY_TYPES),
        };
        Ok(MailEvent { provider_message_id: ProviderMessageId::new(mail.message_id), kind, tagged, machine, detail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permanent_bounce_wrapped_by_sns_is_understood() {
        let inner = r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent"},"mail":{"messageId":"m-1"}}"#;
        let sns = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        let event = MailEvent::parse(&sns).unwrap();
        assert_eq!(event.kind, MailEventKind::Bounce(BounceKind::Permanent));
        assert_eq!(event.provider_message_id.as_str(), "m-1");
    }

    #[test]
    fn a_message_expired_for_lack_of_tls_is_a_tls_bounce_and_the_diagnostic_is_not_kept() {
        let expired = r#"{"eventType":"Bounce","mail":{"messageId":"m-20"},"bounce":{"bounceType":"Transient",
            "bounceSubType":"General","bouncedRecipients":[{"emailAddress":"jane.probe@example.org",
            "diagnosticCode":"smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes.<421 4.4.0 Failed to establish connection>"}]}}"#;
        let starttls =
            expired.replace("Failed to establish connection", "TLS required but not offered by jane.probe@example.org");
        for body in [expired.to_owned(), starttls] {
            let event = MailEvent::parse(&body).unwrap();
            assert_eq!(event.kind, MailEventKind::Bounce(BounceKind::TlsUnavailable));
            assert!(!format!("{event:?}").contains("jane.probe"), "the diagnostic is never kept");
            assert_eq!(
                event.detail.tls_gap_domain.as_ref().map(|d| d.as_str()),
                Some("example.org"),
                "only the domain"
            );
        }
    }

    #[test]
    fn a_full_mailbox_or_an_expiry_for_another_reason_stays_an_ordinary_soft_bounce() {
        let full = r#"{"eventType":"Bounce","mail":{"messageId":"m-21"},"bounce":{"bounceType":"Transient",
            "bounceSubType":"MailboxFull","bouncedRecipients":[{"diagnosticCode":"smtp; 452 4.2.2 Mailbox full"}]}}"#;
        let dns = r#"{"eventType":"Bounce","mail":{"messageId":"m-22"},"bounce":{"bounceType":"Transient",
            "bouncedRecipients":[{"diagnosticCode":"smtp; 554 4.4.7 Message expired <421 4.4.0 Unable to lookup DNS>"}]}}"#;
        let permanent_tls = r#"{"eventType":"Bounce","mail":{"messageId":"m-23"},"bounce":{"bounceType":"Permanent",
            "bouncedRecipients":[{"diagnosticCode":"smtp; 554 4.4.7 TLS"}]}}"#;
        assert_eq!(MailEvent::parse(full).unwrap().kind, MailEventKind::Bounce(BounceKind::Transient));
        assert_eq!(MailEvent::parse(dns).unwrap().detail.tls_gap_domain, None, "no TLS failure, no domain to remember");
        assert_eq!(MailEvent::parse(dns).unwrap().kind, MailEventKind::Bounce(BounceKind::Transient));
        assert_eq!(MailEvent::parse(permanent_tls).unwrap().kind, MailEventKind::Bounce(BounceKind::Permanent));
    }

    #[test]
    fn an_eventbridge_delivery_is_understood() {
        let body = r#"{"detail-type":"Email Delivered","detail":{"eventType":"Delivery","mail":{"messageId":"m-2"}}}"#;
        assert_eq!(MailEvent::parse(body).unwrap().kind, MailEventKind::Delivery);
    }

    #[test]
    fn the_campaign_and_contact_tags_are_read() {
        let body = r#"{"eventType":"Send","mail":{"messageId":"m-3","tags":{
            "campaign_id":["7c0d3f5e-2a9b-4c1e-9f3a-1b2c3d4e5f60"],"contact_id":["3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"]}}}"#;
        let event = MailEvent::parse(body).unwrap();
        assert_eq!(event.tagged.unwrap().1.to_string(), "3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b");
    }

    #[test]
    fn an_open_through_an_image_proxy_is_a_machine_open() {
        let proxy = r#"{"eventType":"Open","mail":{"messageId":"m-4"},
            "open":{"userAgent":"Mozilla/5.0 (via ggpht.com GoogleImageProxy)","ipAddress":"192.0.2.1"}}"#;
        let person = r#"{"eventType":"Click","mail":{"messageId":"m-5"},
            "click":{"userAgent":"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15","link":"https://x"}}"#;
        assert!(MailEvent::parse(proxy).unwrap().machine);
        assert!(!MailEvent::parse(person).unwrap().machine);
    }

    #[test]
    fn a_parse_error_never_quotes_the_event() {
        let bodies = [
            r#"{"eventType":"Bounce","mail":{"messageId":"m-1","destination":"jane.probe@example.org"},"bounce":"x"}"#,
            r#"{"eventType":"Bounce","mail":{"messageId":["jane.probe@example.org"]}}"#,
            r#"{"eventType":"jane.probe@example.org","mail":{"messageId":"m-1"}}"#,
            r#"{"eventType":"Send","mail":{"messageId":"m-1","tags":"jane.probe@example.org"}}"#,
            r#"{"eventType":"Send","mail":{"messageId":"jane.probe@example.org""#,
        ];
        for body in bodies {
            let e = MailEvent::parse(body).unwrap_err();
            assert!(!format!("{e} {e:?}").contains("jane.probe"), "{e}");
        }
    }

    #[test]
    fn an_unknown_type_is_an_error_not_a_panic() {
        assert!(MailEvent::parse(r#"{"eventType":"Nope","mail":{"messageId":"x"}}"#).is_err());
        assert!(MailEvent::parse("not json").is_err());
    }

    #[test]
    fn a_subscription_event_names_the_topics_opted_out_and_whether_all_were_left() {
        let one = r#"{"eventType":"Subscription","mail":{"messageId":"m-6"},"subscription":{"contactList":"carepost",
            "newTopicPreferences":{"unsubscribeAll":false,"topicSubscriptionStatus":[
              {"topicName":"wellness-tips","subscriptionStatus":"OptOut"},
              {"topicName":"condition-updates","subscriptionStatus":"OptIn"}]},
            "oldTopicPreferences":{"unsubscribeAll":false,"topicSubscriptionStatus":[]}}}"#;
        let all = r#"{"eventType":"Subscription","mail":{"messageId":"m-7"},"subscription":{
            "newTopicPreferences":{"unsubscribeAll":true,"topicSubscriptionStatus":[]}}}"#;

        let one = MailEvent::parse(one).unwrap().detail.preferences.unwrap();
        let all = MailEvent::parse(all).unwrap().detail.preferences.unwrap();

        assert_eq!(one, TopicPreferences { unsubscribe_all: false, opted_out: vec!["wellness-tips".into()] });
        assert!(all.unsubscribe_all && all.opted_out.is_empty());
    }

    #[test]
    fn a_reject_and_a_rendering_failure_keep_an_error_type_and_the_template_never_the_text() {
        let reject = r#"{"eventType":"Reject","mail":{"messageId":"m-8"},"reject":{"reason":"Bad content"}}"#;
        let rendering = r#"{"eventType":"Rendering Failure","mail":{"messageId":"m-9"},"failure":{
            "errorMessage":"Attribute 'jane.probe@example.org' is not present in the rendering data.",
            "templateName":"carepost-template"}}"#;
        let odd_template = r#"{"eventType":"Rendering Failure","mail":{"messageId":"m-9"},"failure":{
            "errorMessage":"boom jane.probe@example.org","templateName":"jane.probe@example.org"}}"#;

        let reject = MailEvent::parse(reject).unwrap().detail.failure.unwrap();
        let rendering = MailEvent::parse(rendering).unwrap();
        let odd = MailEvent::parse(odd_template).unwrap();

        assert_eq!(reject, ProviderFailure { error_type: "bad_content", template: None });
        assert_eq!(
            rendering.detail.failure,
            Some(ProviderFailure { error_type: "missing_attribute", template: Some("carepost-template".into()) })
        );
        assert_eq!(odd.detail.failure, Some(ProviderFailure { error_type: "other", template: None }));
        assert!(!format!("{rendering:?} {odd:?}").contains("jane.probe"));
    }

    #[test]
    fn a_click_is_known_by_a_hash_of_its_link_never_the_url() {
        let click = |link: &str| {
            MailEvent::parse(&format!(
                r#"{{"eventType":"Click","mail":{{"messageId":"m-10"}},"click":{{"link":"{link}"}}}}"#
            ))
            .unwrap()
        };
        let (a, again, b) = (
            click("https://clinic.example/flu?who=jane.probe"),
            click("https://clinic.example/flu?who=jane.probe"),
            click("https://clinic.example/covid"),
        );

        assert_eq!(a.detail.link, again.detail.link);
        assert_ne!(a.detail.link, b.detail.link);
        let key = a.detail.link.clone().unwrap();
        assert!(key.as_str().starts_with('h') && key.as_str().len() == 17, "{key:?}");
        assert!(!format!("{a:?}").contains("jane.probe"));
    }

    #[test]
    fn the_bounce_subtype_and_delay_type_are_kept_from_sess_vocabulary_only() {
        let bounce = r#"{"eventType":"Bounce","mail":{"messageId":"m-11"},
            "bounce":{"bounceType":"Permanent","bounceSubType":"NoEmail"}}"#;
        let delay = r#"{"eventType":"DeliveryDelay","mail":{"messageId":"m-12"},
            "deliveryDelay":{"delayType":"MailboxFull"}}"#;
        let odd = r#"{"eventType":"Bounce","mail":{"messageId":"m-13"},
            "bounce":{"bounceType":"Transient","bounceSubType":"jane.probe@example.org"}}"#;

        assert_eq!(MailEvent::parse(bounce).unwrap().detail.bounce_subtype.as_deref(), Some("NoEmail"));
        assert_eq!(MailEvent::parse(delay).unwrap().detail.delay_type.as_deref(), Some("MailboxFull"));
        assert_eq!(MailEvent::parse(odd).unwrap().detail.bounce_subtype.as_deref(), Some("Other"));
    }
}
