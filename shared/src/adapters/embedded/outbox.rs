//! The outbox transport: each accepted message becomes `<key>.eml` in a
//! directory, a complete RFC 5322 message. A file is published with a hard
//! link, which never replaces an existing file, so a second hand-over of the
//! same message (after a crash between acceptance and the ledger update) is
//! recognised and not delivered twice.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::domain::ProviderMessageId;
use crate::ports::{MailTransport, OutgoingMail, TransportError, TransportErrorKind};

pub struct OutboxTransport {
    dir: PathBuf,
}

impl OutboxTransport {
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Half-written files from a crash are not messages; clear them.
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn deliver(&self, mail: &OutgoingMail) -> std::io::Result<()> {
        // Injective escaping: distinct keys never share a file name.
        let safe_key: String = mail
            .key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_string() } else { format!("_{:x}_", c as u32) })
            .collect();
        let final_path = self.dir.join(format!("{safe_key}.eml"));
        let partial = self.dir.join(format!("{safe_key}.{}.partial", uuid::Uuid::new_v4()));
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(&mail.raw)?;
        file.sync_all()?;
        let linked = std::fs::hard_link(&partial, &final_path);
        std::fs::remove_file(&partial)?;
        match linked {
            // The directory entry must survive a crash too.
            Ok(()) => std::fs::File::open(&self.dir)?.sync_all(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // The ambiguous window of exactly-once (see docs/architecture.md):
                // an earlier hand-over was accepted but never settled.
                tracing::warn!(key = %safe_key, "outbox recognised a repeated hand-over; not delivered again");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl MailTransport for OutboxTransport {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError> {
        let (outbox, owned) = (Self { dir: self.dir.clone() }, mail.clone());
        tokio::task::spawn_blocking(move || outbox.deliver(&owned))
            .await
            .map_err(|e| {
                TransportError::new(TransportErrorKind::Transient, "outbox: the write task failed").with_source(e)
            })?
            .map_err(|e| {
                TransportError::new(TransportErrorKind::Transient, format!("outbox: {}", e.kind())).with_source(e)
            })?;
        Ok(ProviderMessageId::new(mail.message_id.clone()))
    }
}
