//! State a client carries between calls and cannot read or change: the
//! partial counts of an audience estimate that runs over several requests.
//! Raw partial counts could single out a patient (a page with one suppressed
//! contact), so they travel encrypted and only the finished estimate, with
//! its small cells hidden, is ever shown.
//!
//! Token: base64url of `nonce (12) | AES-256-GCM(JSON state) | tag (16)`,
//! the additional data naming the purpose and the subject (a campaign ID),
//! the state carrying its own expiry.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

/// Longest token accepted, so a forged one costs no more than a real one.
const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenStateError {
    #[error("the token is not one this service issued for this request")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Wrapped<T> {
    expires_at: i64,
    state: T,
}

pub struct StateSealer {
    key: LessSafeKey,
}

impl StateSealer {
    pub fn new(key_bytes: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key_bytes).expect("a 32-byte key is valid for AES-256-GCM");
        Self { key: LessSafeKey::new(key) }
    }

    pub fn seal<T: Serialize>(&self, purpose: &str, subject: &[u8], state: &T, expires_at: OffsetDateTime) -> String {
        let wrapped = Wrapped { expires_at: expires_at.unix_timestamp(), state };
        let mut data = serde_json::to_vec(&wrapped).expect("state serializes to JSON");
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system random is available");
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(purpose, subject), &mut data)
            .expect("AES-GCM seals any length we produce");
        let mut token = nonce.to_vec();
        token.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(token)
    }

    pub fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        subject: &[u8],
        token: &str,
        now: OffsetDateTime,
    ) -> Result<T, OpenStateError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(OpenStateError::Invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| OpenStateError::Invalid)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenStateError::Invalid);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenStateError::Invalid)?;
        let mut sealed = sealed.to_vec();
        let plain =
            self.key.open_in_place(nonce, aad(purpose, subject), &mut sealed).map_err(|_| OpenStateError::Invalid)?;
        let wrapped: Wrapped<T> = serde_json::from_slice(plain).map_err(|_| OpenStateError::Invalid)?;
        if wrapped.expires_at <= now.unix_timestamp() {
            return Err(OpenStateError::Expired);
        }
        Ok(wrapped.state)
    }
}

fn aad(purpose: &str, subject: &[u8]) -> Aad<Vec<u8>> {
    let mut data = Vec::with_capacity(purpose.len() + 1 + subject.len());
    data.extend_from_slice(purpose.as_bytes());
    data.push(0);
    data.extend_from_slice(subject);
    Aad::from(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Counts {
        suppressed: u64,
    }

    fn sealer() -> StateSealer {
        StateSealer::new(&[7; 32])
    }

    fn later() -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::hours(1)
    }

    #[test]
    fn sealed_state_opens_for_the_same_purpose_and_subject_and_hides_its_content() {
        let token = sealer().seal("estimate", b"campaign-a", &Counts { suppressed: 1 }, later());

        let opened: Counts = sealer().open("estimate", b"campaign-a", &token, OffsetDateTime::now_utc()).unwrap();

        assert_eq!(opened, Counts { suppressed: 1 });
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains("suppressed"), "the counts are encrypted");
    }

    #[test]
    fn sealed_state_is_refused_for_another_subject_purpose_or_key() {
        let token = sealer().seal("estimate", b"campaign-a", &Counts { suppressed: 1 }, later());
        let now = OffsetDateTime::now_utc();

        let other_subject = sealer().open::<Counts>("estimate", b"campaign-b", &token, now);
        let other_purpose = sealer().open::<Counts>("export", b"campaign-a", &token, now);
        let other_key = StateSealer::new(&[8; 32]).open::<Counts>("estimate", b"campaign-a", &token, now);

        assert_eq!(other_subject, Err(OpenStateError::Invalid));
        assert_eq!(other_purpose, Err(OpenStateError::Invalid));
        assert_eq!(other_key, Err(OpenStateError::Invalid));
    }

    #[test]
    fn sealed_state_with_a_changed_byte_or_past_its_expiry_is_refused() {
        let now = OffsetDateTime::now_utc();
        let token = sealer().seal("estimate", b"c", &Counts { suppressed: 1 }, later());
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(raw);
        let expired = sealer().seal("estimate", b"c", &Counts { suppressed: 1 }, now - Duration::seconds(1));

        assert_eq!(sealer().open::<Counts>("estimate", b"c", &tampered, now), Err(OpenStateError::Invalid));
        assert_eq!(sealer().open::<Counts>("estimate", b"c", &expired, now), Err(OpenStateError::Expired));
        assert_eq!(sealer().open::<Counts>("estimate", b"c", "not base64!", now), Err(OpenStateError::Invalid));
    }
}
