//! Signed, single-purpose, expiring tokens for links in emails (unsubscribe,
//! double opt-in confirmation). They hold random IDs only, never PHI.
//!
//! Token bytes: `version (1) | purpose (1) | contact id (16) | subject id (16)
//! | expires unix seconds (u64 BE) | HMAC-SHA-256 tag truncated to 16`, base64url.
//!
//! Open and click tracking tokens (version 2) add the link's index in the
//! campaign after the subject: `2 | purpose | contact | campaign | link (u16
//! BE) | expires | tag`. The URL itself is never in the token: a click
//! redirects only to the campaign's own link at that index.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use crate::domain::ContactId;

const VERSION: u8 = 1;
const BODY_LEN: usize = 1 + 1 + 16 + 16 + 8;
const TAG_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Unsubscribe = 1,
    ConfirmConsent = 2,
    Preferences = 3,
    TrackOpen = 4,
    TrackClick = 5,
    SecureMessage = 6,
}

const TRACKING_VERSION: u8 = 2;
const TRACKING_BODY_LEN: usize = BODY_LEN + 2;

/// A verified open or click token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTracking {
    pub contact_id: ContactId,
    pub campaign: [u8; 16],
    pub link: u16,
    /// Past its expiry: a click still redirects, but is not counted.
    pub expired: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub contact_id: ContactId,
    /// The campaign (unsubscribe) or consent request (confirmation) it is for.
    pub subject: [u8; 16],
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the link is not valid")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

pub struct TokenSigner {
    key: hmac::Key,
}

impl TokenSigner {
    pub fn new(key_bytes: &[u8; 32]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes) }
    }

    pub fn sign(
        &self,
        purpose: TokenPurpose,
        contact: &ContactId,
        subject: &[u8; 16],
        expires_at: OffsetDateTime,
    ) -> String {
        self.seal(&[&[VERSION, purpose as u8], contact.as_bytes(), subject], expires_at)
    }

    /// `parts | expires (u64 BE) | truncated HMAC tag`, base64url.
    fn seal(&self, parts: &[&[u8]], expires_at: OffsetDateTime) -> String {
        let mut body: Vec<u8> = parts.concat();
        body.extend_from_slice(&(expires_at.unix_timestamp().max(0) as u64).to_be_bytes());
        let tag = hmac::sign(&self.key, &body);
        body.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(body)
    }

    /// The body of a well-signed token of `body_len` bytes with this version
    /// and purpose, and its expiry.
    fn open(
        &self,
        token: &str,
        body_len: usize,
        version: u8,
        purpose: TokenPurpose,
    ) -> Result<(Vec<u8>, OffsetDateTime), TokenError> {
        if token.len() > 128 {
            return Err(TokenError::Invalid);
        }
        let mut bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Invalid)?;
        if bytes.len() != body_len + TAG_LEN {
            return Err(TokenError::Invalid);
        }
        let tag = bytes.split_off(body_len);
        let expected = hmac::sign(&self.key, &bytes);
        // Constant-time comparison of the truncated tag.
        if aws_lc_rs::constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_LEN], &tag).is_err() {
            return Err(TokenError::Invalid);
        }
        if bytes[0] != version || bytes[1] != purpose as u8 {
            return Err(TokenError::Invalid);
        }
        let expires = u64::from_be_bytes(bytes[body_len - 8..].try_into().map_err(|_| TokenError::Invalid)?);
        let expires_at = OffsetDateTime::from_unix_timestamp(expires as i64).map_err(|_| TokenError::Invalid)?;
        Ok((bytes, expires_at))
    }

    pub fn verify(&self, purpose: TokenPurpose, token: &str, now: OffsetDateTime) -> Result<VerifiedToken, TokenError> {
        let (body, expires_at) = self.open(token, BODY_LEN, VERSION, purpose)?;
        let contact_id = ContactId::from_bytes(body[2..18].try_into().map_err(|_| TokenError::Invalid)?);
        let subject: [u8; 16] = body[18..34].try_into().map_err(|_| TokenError::Invalid)?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(VerifiedToken { contact_id, subject, expires_at })
    }
}

impl TokenSigner {
    pub fn sign_tracking(
        &self,
        purpose: TokenPurpose,
        contact: &ContactId,
        campaign: &[u8; 16],
        link: u16,
        expires_at: OffsetDateTime,
    ) -> String {
        let head = [TRACKING_VERSION, purpose as u8];
        self.seal(&[&head, contact.as_bytes(), campaign, &link.to_be_bytes()], expires_at)
    }

    /// Checks the signature and purpose; an expired token is reported as
    /// such rather than refused (the caller decides what expiry means).
    pub fn verify_tracking(
        &self,
        purpose: TokenPurpose,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<VerifiedTracking, TokenError> {
        let (body, expires_at) = self.open(token, TRACKING_BODY_LEN, TRACKING_VERSION, purpose)?;
        let contact_id = ContactId::from_bytes(body[2..18].try_into().map_err(|_| TokenError::Invalid)?);
        let campaign: [u8; 16] = body[18..34].try_into().map_err(|_| TokenError::Invalid)?;
        let link = u16::from_be_bytes(body[34..36].try_into().map_err(|_| TokenError::Invalid)?);
        Ok(VerifiedTracking { contact_id, campaign, link, expired: expires_at <= now })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn signer() -> TokenSigner {
        TokenSigner::new(&[7; 32])
    }

    #[test]
    fn a_token_verifies_for_its_purpose_only() {
        let now = OffsetDateTime::now_utc();
        let contact = ContactId::new_random();
        let token = signer().sign(TokenPurpose::Unsubscribe, &contact, &[3; 16], now + Duration::days(1));
        let ok = signer().verify(TokenPurpose::Unsubscribe, &token, now).unwrap();
        assert_eq!(ok.contact_id, contact);
        assert_eq!(ok.subject, [3; 16]);
        assert_eq!(signer().verify(TokenPurpose::ConfirmConsent, &token, now), Err(TokenError::Invalid));
    }

    #[test]
    fn a_click_token_carries_its_link_and_verifies_for_clicks_only() {
        let now = OffsetDateTime::now_utc();
        let contact = ContactId::new_random();
        let token = signer().sign_tracking(TokenPurpose::TrackClick, &contact, &[9; 16], 3, now + Duration::days(1));
        let ok = signer().verify_tracking(TokenPurpose::TrackClick, &token, now).unwrap();
        assert_eq!((ok.contact_id, ok.campaign, ok.link, ok.expired), (contact, [9; 16], 3, false));
        assert_eq!(signer().verify_tracking(TokenPurpose::TrackOpen, &token, now), Err(TokenError::Invalid));
        assert_eq!(signer().verify(TokenPurpose::TrackClick, &token, now), Err(TokenError::Invalid));
        assert!(signer().verify_tracking(TokenPurpose::TrackClick, &token, now + Duration::days(2)).unwrap().expired);
    }

    #[test]
    fn an_expired_or_altered_token_is_refused() {
        let now = OffsetDateTime::now_utc();
        let token =
            signer().sign(TokenPurpose::Unsubscribe, &ContactId::new_random(), &[0; 16], now + Duration::hours(1));
        assert_eq!(
            signer().verify(TokenPurpose::Unsubscribe, &token, now + Duration::hours(2)),
            Err(TokenError::Expired)
        );
        let mut altered = token.clone().into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert_eq!(signer().verify(TokenPurpose::Unsubscribe, &altered, now), Err(TokenError::Invalid));
        let other = TokenSigner::new(&[8; 32]);
        assert_eq!(other.verify(TokenPurpose::Unsubscribe, &token, now), Err(TokenError::Invalid));
    }
}
