//! MIME with lettre: multipart/alternative (text first, then HTML as a
//! complete document), a stable Message-ID under the sender's domain, and
//! for campaign mail List-Id, Feedback-ID and RFC 8058 one-click
//! unsubscribe headers. lettre encodes
//! every header value, so a CR or LF inside an attribute cannot start a new
//! header.

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};

use crate::domain::{EmailAddress, Sender};

/// A header whose value is one line of text we built (lettre encodes it).
macro_rules! text_header {
    ($type:ident, $name:literal) => {
        #[derive(Clone)]
        struct $type(String);

        impl header::Header for $type {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok(Self(s.to_owned()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(ListUnsubscribe, "List-Unsubscribe");
text_header!(ListUnsubscribePost, "List-Unsubscribe-Post");
text_header!(ListId, "List-Id");
text_header!(FeedbackId, "Feedback-ID");
text_header!(TlsRequired, "TLS-Required");

/// What marks a campaign message as list mail (RFC 2369, 2919 and 8058) and
/// names its campaign for mailbox providers' feedback loops. No PHI: a
/// category slug, a campaign ID and the sender's domain.
pub struct MailingList<'a> {
    /// https URL for one-click unsubscribe.
    pub unsubscribe_url: &'a str,
    /// The topic the patient subscribed to (the list), e.g. `wellness-tips`.
    pub category: &'a str,
    /// The campaign, for the `Feedback-ID` (Gmail's feedback loop groups by it).
    pub campaign_id: String,
}

/// A Message-ID under the sender's own domain (`<local@clinic.example>`):
/// providers distrust IDs whose right side is not a domain.
pub fn message_id(local: &str, from: &Sender) -> String {
    format!("<{local}@{}>", sender_domain(from))
}

fn sender_domain(from: &Sender) -> &str {
    from.address.as_str().rsplit_once('@').map(|(_, domain)| domain).unwrap_or("invalid")
}

/// The HTML part as a complete document (doctype, language, title): mail
/// clients and filters treat a bare fragment as a sign of bulk mail. A
/// template that is already a document is left as it is.
pub fn html_document(subject: &str, body: &str) -> String {
    let head = body.trim_start().get(..9).unwrap_or("").to_ascii_lowercase();
    if head == "<!doctype" || head.starts_with("<html") {
        return body.to_owned();
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n</head>\n\
         <body>\n{body}\n</body>\n</html>\n",
        super::html_escape(subject)
    )
}

pub struct MessageParts<'a> {
    pub from: &'a Sender,
    pub to: &'a EmailAddress,
    pub subject: &'a str,
    pub message_id: &'a str,
    /// The list headers of campaign mail; `None` for transactional mail
    /// such as a consent confirmation.
    pub list: Option<MailingList<'a>>,
    pub text: String,
    pub html: String,
    /// A message without PHI that may travel without TLS (a secure
    /// message's notice or code): `TLS-Required: No` (RFC 8689) asks relays
    /// to deliver it where TLS fails.
    pub tls_optional: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildMessageError {
    #[error("address is not usable in a header")]
    Address,
    #[error("unsubscribe URL must be https (or http on loopback) without spaces or angle brackets")]
    UnsubscribeUrl,
    #[error("message could not be built")]
    Build,
}

fn mailbox(name: Option<&str>, address: &EmailAddress) -> Result<Mailbox, BuildMessageError> {
    let address = address.as_str().parse().map_err(|_| BuildMessageError::Address)?;
    // A display name never contains line breaks, whatever was configured.
    let name = name.map(|n| n.replace(['\r', '\n'], " "));
    Ok(Mailbox::new(name, address))
}

pub fn build_message(parts: MessageParts<'_>) -> Result<Vec<u8>, BuildMessageError> {
    let subject = parts.subject.replace(['\r', '\n'], " ");
    let mut builder = Message::builder()
        .from(mailbox(Some(&parts.from.name), &parts.from.address)?)
        .to(mailbox(None, parts.to)?)
        .subject(subject.clone())
        .message_id(Some(parts.message_id.to_owned()));
    if let Some(list) = &parts.list {
        let url = list.unsubscribe_url;
        let ok =
            (url.starts_with("https://") || url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost"))
                && !url.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c.is_control());
        if !ok {
            return Err(BuildMessageError::UnsubscribeUrl);
        }
        let domain = sender_domain(parts.from);
        builder = builder
            .header(ListUnsubscribe(format!("<{url}>")))
            .header(ListUnsubscribePost("List-Unsubscribe=One-Click".to_owned()))
            .header(ListId(format!("<{}.{domain}>", list.category)))
            .header(FeedbackId(format!("{}:{}:campaign:carepost", list.campaign_id, list.category)));
    }
    if parts.tls_optional {
        builder = builder.header(TlsRequired("No".to_owned()));
    }
    let html = html_document(&subject, &parts.html);
    let body = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(parts.text))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html));
    let message = builder.multipart(body).map_err(|_| BuildMessageError::Build)?;
    Ok(message.formatted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender { name: "Clinic".into(), address: EmailAddress::parse("news@clinic.example").unwrap() }
    }

    fn headers(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap().to_owned();
        head.split("\r\n").filter(|l| !l.starts_with([' ', '\t'])).map(|l| l.to_owned()).collect()
    }

    #[test]
    fn the_message_carries_one_click_unsubscribe_headers() {
        let to = EmailAddress::parse("p@example.org").unwrap();
        let raw = build_message(MessageParts {
            from: &sender(),
            to: &to,
            subject: "Hello",
            message_id: &message_id("a.b", &sender()),
            list: Some(MailingList {
                unsubscribe_url: "https://c.example/u/tok",
                category: "wellness-tips",
                campaign_id: "c1".into(),
            }),
            text: "t".into(),
            html: "<p>h</p>".into(),
            tls_optional: false,
        })
        .unwrap();
        let h = headers(&raw);
        assert_eq!(h.iter().filter(|l| l.starts_with("List-Unsubscribe:")).count(), 1);
        assert!(h.contains(&"List-Unsubscribe: <https://c.example/u/tok>".to_owned()));
        assert!(h.contains(&"List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_owned()));
        assert!(h.contains(&"Message-ID: <a.b@clinic.example>".to_owned()), "{h:?}");
        assert!(h.contains(&"List-Id: <wellness-tips.clinic.example>".to_owned()), "{h:?}");
        assert!(h.contains(&"Feedback-ID: c1:wellness-tips:campaign:carepost".to_owned()), "{h:?}");
    }

    #[test]
    fn a_line_break_in_the_subject_does_not_add_a_header() {
        let to = EmailAddress::parse("p@example.org").unwrap();
        let raw = build_message(MessageParts {
            from: &sender(),
            to: &to,
            subject: "Hi\r\nBcc: evil@example.org",
            message_id: "<x@clinic.example>",
            list: None,
            text: "t".into(),
            html: "h".into(),
            tls_optional: false,
        })
        .unwrap();
        assert!(!headers(&raw).iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")));
    }

    #[test]
    fn the_html_part_is_a_complete_document_titled_by_the_subject() {
        let fragment = html_document("Tips & news", "<p>Hi</p>");
        let document = "<!doctype html><html lang=\"es\"><body>Hola</body></html>";

        assert!(fragment.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"), "{fragment}");
        assert!(fragment.contains("<title>Tips &amp; news</title>"));
        assert!(fragment.contains("<body>\n<p>Hi</p>\n</body>"));
        assert_eq!(html_document("s", document), document, "a template that is a document is kept");
    }

    #[test]
    fn a_non_https_unsubscribe_url_is_refused() {
        let to = EmailAddress::parse("p@example.org").unwrap();
        let result = build_message(MessageParts {
            from: &sender(),
            to: &to,
            subject: "s",
            message_id: "<x@clinic.example>",
            list: Some(MailingList {
                unsubscribe_url: "http://evil.example/u",
                category: "news",
                campaign_id: "c".into(),
            }),
            text: "t".into(),
            html: "h".into(),
            tls_optional: false,
        });
        assert!(matches!(result, Err(BuildMessageError::UnsubscribeUrl)));
    }
}
