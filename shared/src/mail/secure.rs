//! The two emails of a secure message, neither with any PHI: the notice
//! (who sent a message and where to read it, never what it says or whom it
//! is for beyond the address it goes to) and the one-time code. Both are
//! marked `TLS-Required: No`: they exist for servers that cannot do TLS.

use super::mime::{MailingList, MessageParts, build_message, message_id};
use super::{BuildMessageError, html_escape};
use crate::domain::{EmailAddress, Sender};

/// The notice: the sender's name, the page's link and, for list mail, the
/// unsubscribe link and the postal address.
pub struct Notice<'a> {
    pub from: &'a Sender,
    pub to: &'a EmailAddress,
    /// Unique per message (the campaign and contact IDs), for the Message-ID.
    pub key: &'a str,
    pub page_url: &'a str,
    pub days: u64,
    pub list: Option<MailingList<'a>>,
    pub postal_address: Option<&'a str>,
}

pub fn notice_message(n: Notice<'_>) -> Result<Vec<u8>, BuildMessageError> {
    let subject = format!("A secure message from {}", n.from.name);
    let intro = format!(
        "{} sent you a message. Your email provider does not offer the secure connection it needs, so it is kept \
         for you on our site instead.",
        n.from.name
    );
    let how = format!(
        "To read it, open the link, ask for a code (we email it to this address) and enter it with your date of \
         birth. The link works for {} days.",
        n.days
    );
    let mut text = format!("{intro}\n\nRead the message: {}\n\n{how}\n", n.page_url);
    let mut html = format!(
        "<p>{}</p><p><a href=\"{}\">Read the message</a></p><p>{}</p>",
        html_escape(&intro),
        html_escape(n.page_url),
        html_escape(&how)
    );
    if let Some(list) = &n.list {
        text.push_str(&format!("\nUnsubscribe: {}\n", list.unsubscribe_url));
        html.push_str(&format!("<p><a href=\"{}\">Unsubscribe</a></p>", html_escape(list.unsubscribe_url)));
    }
    if let Some(address) = n.postal_address {
        text.push_str(&format!("{address}\n"));
        html.push_str(&format!("<p>{}</p>", html_escape(address)));
    }
    build_message(MessageParts {
        from: n.from,
        to: n.to,
        subject: &subject,
        message_id: &message_id(&format!("notice.{}", n.key), n.from),
        list: n.list,
        text,
        html,
        tls_optional: true,
    })
}

/// The one-time code for a secure message's page.
pub fn code_message(
    from: &Sender,
    to: &EmailAddress,
    key: &str,
    code: &str,
    minutes: i64,
) -> Result<Vec<u8>, BuildMessageError> {
    let line = format!("Your code for the secure message from {} is {code}.", from.name);
    let rest = format!("It works for {minutes} minutes. If you did not ask for it, you can ignore this email.");
    build_message(MessageParts {
        from,
        to,
        subject: "Your code for a secure message",
        message_id: &message_id(&format!("code.{key}"), from),
        list: None,
        text: format!("{line}\n\n{rest}\n"),
        html: format!("<p>{}</p><p>{}</p>", html_escape(&line), html_escape(&rest)),
        tls_optional: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        Sender { name: "Clinic".into(), address: EmailAddress::parse("news@clinic.example").unwrap() }
    }

    #[test]
    fn the_notice_names_the_sender_and_the_link_and_may_travel_without_tls() {
        let to = EmailAddress::parse("pat@example.org").unwrap();
        let raw = notice_message(Notice {
            from: &sender(),
            to: &to,
            key: "c.k",
            page_url: "https://mail.clinic.example/s/TOKEN",
            days: 30,
            list: None,
            postal_address: Some("1 Main Street"),
        })
        .unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("TLS-Required: No"), "{text}");
        assert!(text.contains("Subject: A secure message from Clinic"), "{text}");
        assert!(text.contains("https://mail.clinic.example/s/TOKEN"));
        assert!(text.contains("1 Main Street"));
    }

    #[test]
    fn the_code_email_holds_the_code_and_nothing_of_the_message() {
        let to = EmailAddress::parse("pat@example.org").unwrap();
        let raw = code_message(&sender(), &to, "c.k.1", "482913", 10).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains("482913") && text.contains("TLS-Required: No"), "{text}");
    }
}
