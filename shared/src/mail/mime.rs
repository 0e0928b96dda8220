//! MIME with lettre: multipart/alternative (text first, then HTML), a stable
//! Message-ID, and RFC 8058 one-click unsubscribe headers. lettre encodes
//! every header value, so a CR or LF inside an attribute cannot start a new
//! header.

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart, header};

use crate::domain::{EmailAddress, Sender};

#[derive(Clone)]
struct ListUnsubscribe(String);

impl header::Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Clone)]
struct ListUnsubscribePost;

impl header::Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}

pub struct MessageParts<'a> {
    pub from: &'a Sender,
    pub to: &'a EmailAddress,
    pub subject: &'a str,
    pub message_id: &'a str,
    /// https URL for one-click unsubscribe; `None` for transactional mail
    /// such as a consent confirmation.
    pub unsubscribe_url: Option<&'a str>,
    pub text: String,
    pub html: String,
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
    let mut builder = Message::builder()
        .from(mailbox(Some(&parts.from.name), &parts.from.address)?)
        .to(mailbox(None, parts.to)?)
        .subject(parts.subject.replace(['\r', '\n'], " "))
        .message_id(Some(parts.message_id.to_owned()));
    if let Some(url) = parts.unsubscribe_url {
        let ok =
            (url.starts_with("https://") || url.starts_with("http://127.0.0.1") || url.starts_with("http://localhost"))
                && !url.contains(|c: char| c.is_whitespace() || c == '<' || c == '>' || c.is_control());
        if !ok {
            return Err(BuildMessageError::UnsubscribeUrl);
        }
        builder = builder.header(ListUnsubscribe(format!("<{url}>"))).header(ListUnsubscribePost);
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(parts.text))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(parts.html));
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
            message_id: "<a.b@carepost>",
            unsubscribe_url: Some("https://c.example/u/tok"),
            text: "t".into(),
            html: "<p>h</p>".into(),
        })
        .unwrap();
        let h = headers(&raw);
        assert_eq!(h.iter().filter(|l| l.starts_with("List-Unsubscribe:")).count(), 1);
        assert!(h.contains(&"List-Unsubscribe: <https://c.example/u/tok>".to_owned()));
        assert!(h.contains(&"List-Unsubscribe-Post: List-Unsubscribe=One-Click".to_owned()));
        assert!(h.contains(&"Message-ID: <a.b@carepost>".to_owned()));
    }

    #[test]
    fn a_line_break_in_the_subject_does_not_add_a_header() {
        let to = EmailAddress::parse("p@example.org").unwrap();
        let raw = build_message(MessageParts {
            from: &sender(),
            to: &to,
            subject: "Hi\r\nBcc: evil@example.org",
            message_id: "<x@carepost>",
            unsubscribe_url: None,
            text: "t".into(),
            html: "h".into(),
        })
        .unwrap();
        assert!(!headers(&raw).iter().any(|l| l.to_ascii_lowercase().starts_with("bcc:")));
    }

    #[test]
    fn a_non_https_unsubscribe_url_is_refused() {
        let to = EmailAddress::parse("p@example.org").unwrap();
        let result = build_message(MessageParts {
            from: &sender(),
            to: &to,
            subject: "s",
            message_id: "<x@carepost>",
            unsubscribe_url: Some("http://evil.example/u"),
            text: "t".into(),
            html: "h".into(),
        });
        assert!(matches!(result, Err(BuildMessageError::UnsubscribeUrl)));
    }
}
