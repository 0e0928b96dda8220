//! Mail events from the provider (SES event publishing), reduced to what we
//! act on. Recipient addresses and headers in the event are never read.

use serde::Deserialize;

use super::{CampaignId, ContactId, ProviderMessageId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceKind {
    Permanent,
    Transient,
    Undetermined,
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
}

#[derive(Deserialize)]
struct BouncePart {
    #[serde(rename = "bounceType")]
    bounce_type: Option<String>,
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
        let kind = match event_type.as_str() {
            "Send" => MailEventKind::Send,
            "Delivery" => MailEventKind::Delivery,
            "Bounce" => MailEventKind::Bounce(match envelope.bounce.and_then(|b| b.bounce_type).as_deref() {
                Some("Permanent") => BounceKind::Permanent,
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
        let agent = envelope.open.or(envelope.click).and_then(|a| a.user_agent);
        let machine = matches!(kind, MailEventKind::Open | MailEventKind::Click)
            && super::engagement::is_machine(agent.as_deref(), false);
        Ok(MailEvent { provider_message_id: ProviderMessageId::new(mail.message_id), kind, tagged, machine })
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
}
