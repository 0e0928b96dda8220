//! Which recipient domains the sender should not try over TLS-required
//! mail, as the activity store remembers them (`ActivityStore::lacks_tls`),
//! read once per domain per process every few minutes rather than once per
//! email. A domain remembered since it was read is seen at the next read.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::domain::RecipientDomain;
use crate::ports::{ActivityStore, StoreError};

/// How long an answer is reused.
const FRESH_FOR: time::Duration = time::Duration::minutes(5);
/// Beyond this many domains the cache starts again (bounded memory).
const MOST_DOMAINS: usize = 10_000;

#[derive(Default)]
pub struct TlsGapCache {
    answers: Mutex<HashMap<RecipientDomain, (bool, OffsetDateTime)>>,
}

impl TlsGapCache {
    pub async fn lacks_tls(
        &self,
        activity: &dyn ActivityStore,
        domain: &RecipientDomain,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let cached = self.lock().get(domain).filter(|(_, read_at)| now - *read_at < FRESH_FOR).map(|(lacks, _)| *lacks);
        if let Some(lacks) = cached {
            return Ok(lacks);
        }
        let lacks = activity.lacks_tls(domain, now).await?;
        let mut answers = self.lock();
        if answers.len() >= MOST_DOMAINS {
            answers.clear();
        }
        answers.insert(domain.clone(), (lacks, now));
        Ok(lacks)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RecipientDomain, (bool, OffsetDateTime)>> {
        // A panic elsewhere cannot leave a map half-written: reuse it.
        self.answers.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
