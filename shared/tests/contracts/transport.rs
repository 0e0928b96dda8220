//! `MailTransport`: hands a complete message to the provider and returns the
//! provider's ID for it. The outbox adds idempotent hand-over per key; SMTP
//! classifies failures so the sender knows whether to retry.

use carepost::ports::{MailTransport, OutgoingMail};

use super::support::unique;

pub fn mail(key: &str) -> OutgoingMail {
    let message_id = format!("<{}@carepost.test>", unique("msg"));
    let raw = format!(
        "From: Clinic <clinic@example.org>\r\nTo: pat@example.org\r\nSubject: Your flu shot\r\n\
         Message-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Book your flu shot today.\r\n"
    );
    OutgoingMail {
        key: key.to_owned(),
        message_id,
        from: "clinic@example.org".into(),
        to: "pat@example.org".into(),
        raw: raw.into_bytes(),
        provider_tracking: Default::default(),
        tls_optional: false,
    }
}

pub async fn mail_transport_contract(transport: &dyn MailTransport) {
    an_accepted_message_gets_a_provider_message_id(transport).await;
}

pub async fn an_accepted_message_gets_a_provider_message_id(transport: &dyn MailTransport) {
    let message = mail(&unique("key"));

    let id = transport.send(&message).await.unwrap();

    assert!(!id.as_str().is_empty());
}

mod outbox {
    use std::path::Path;

    use carepost::adapters::embedded::OutboxTransport;
    use carepost::domain::ProviderMessageId;
    use carepost::ports::{MailTransport, OutgoingMail};

    use super::super::support::{scratch, unique};
    use super::mail;

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn an_accepted_message_gets_a_provider_message_id() {
        let s = scratch();
        let outbox = OutboxTransport::new(&s.dir.path().join("outbox")).unwrap();
        super::an_accepted_message_gets_a_provider_message_id(&outbox).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_outbox() {
        let s = scratch();
        let outbox = OutboxTransport::new(&s.dir.path().join("outbox")).unwrap();
        super::mail_transport_contract(&outbox).await;
    }

    #[tokio::test]
    async fn a_sent_message_is_written_as_key_dot_eml_with_its_raw_bytes() {
        let s = scratch();
        let outbox = OutboxTransport::new(&s.dir.path().join("outbox")).unwrap();
        let message = mail("campaign-1-contact-1");

        let id = outbox.send(&message).await.unwrap();

        assert_eq!(id, ProviderMessageId::new(message.message_id.clone()));
        assert_eq!(files(outbox.dir()), vec!["campaign-1-contact-1.eml"]);
        assert_eq!(std::fs::read(outbox.dir().join("campaign-1-contact-1.eml")).unwrap(), message.raw);
    }

    #[tokio::test]
    async fn sending_the_same_key_twice_keeps_one_file_with_the_first_content() {
        let s = scratch();
        let outbox = OutboxTransport::new(&s.dir.path().join("outbox")).unwrap();
        let first = mail("campaign-1-contact-1");
        let retry =
            OutgoingMail { raw: b"Subject: a re-rendered copy\r\n\r\nnot this\r\n".to_vec(), ..mail(&first.key) };

        outbox.send(&first).await.unwrap();
        let again = outbox.send(&retry).await;

        assert!(again.is_ok(), "a repeated hand-over is accepted, not an error: {again:?}");
        assert_eq!(files(outbox.dir()), vec!["campaign-1-contact-1.eml"], "no second file, no partial left");
        assert_eq!(std::fs::read(outbox.dir().join("campaign-1-contact-1.eml")).unwrap(), first.raw);
    }

    #[tokio::test]
    async fn a_key_with_path_characters_stays_inside_the_outbox() {
        let s = scratch();
        let outbox = OutboxTransport::new(&s.dir.path().join("outbox")).unwrap();

        outbox.send(&mail("../../escaped")).await.unwrap();

        let written = files(outbox.dir());
        assert_eq!(written.len(), 1, "{written:?}");
        assert!(written[0].ends_with("escaped.eml"), "{written:?}");
        let outside = [s.dir.path().to_owned(), s.dir.path().parent().unwrap().to_owned()];
        for dir in outside {
            assert!(!dir.join("escaped.eml").exists(), "written outside the outbox, in {}", dir.display());
        }
    }

    #[tokio::test]
    async fn opening_an_outbox_clears_partial_files_but_keeps_messages() {
        let s = scratch();
        let dir = s.dir.path().join("outbox");
        let outbox = OutboxTransport::new(&dir).unwrap();
        outbox.send(&mail("kept")).await.unwrap();
        std::fs::write(dir.join(format!("crashed.{}.partial", unique("x"))), b"half a mess").unwrap();

        let reopened = OutboxTransport::new(&dir).unwrap();

        assert_eq!(files(reopened.dir()), vec!["kept.eml"]);
    }
}

mod smtp {
    use std::net::TcpListener;

    use carepost::adapters::embedded::smtp::SmtpSettingsError;
    use carepost::adapters::embedded::{SmtpSecurity, SmtpSettings, SmtpTransport};
    use carepost::ports::{MailTransport, OutgoingMail, TransportErrorKind};

    use super::mail;

    fn loopback(port: u16) -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurity::InsecureLoopback,
            username: None,
            password: None,
        }
    }

    /// A loopback port nothing listens on.
    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn plain_smtp_to_a_remote_host_is_refused() {
        let settings = SmtpSettings { host: "smtp.example.org".into(), ..loopback(25) };

        let result = SmtpTransport::new(&settings);

        assert!(matches!(result, Err(SmtpSettingsError::InsecureRemote(ref h)) if h == "smtp.example.org"));
    }

    #[tokio::test]
    async fn an_invalid_envelope_address_is_a_permanent_failure() {
        let transport = SmtpTransport::new(&loopback(closed_port())).unwrap();
        let message = OutgoingMail { to: "not an address".into(), ..mail("k") };

        let error = transport.send(&message).await.unwrap_err();

        assert_eq!(error.kind, TransportErrorKind::Permanent, "{error}");
    }

    #[tokio::test]
    async fn a_relay_that_refuses_connections_is_a_transient_failure() {
        let transport = SmtpTransport::new(&loopback(closed_port())).unwrap();

        let error = transport.send(&mail("k")).await.unwrap_err();

        assert_eq!(error.kind, TransportErrorKind::Transient, "{error}");
    }
}
