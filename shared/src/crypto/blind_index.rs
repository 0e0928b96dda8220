//! The email blind index: HMAC-SHA-256 of the normalized address under a key
//! derived from the wrapped root secret. Lookups and suppression use it, so
//! no table needs the address in plaintext.

use aws_lc_rs::hmac;

use crate::domain::{BlindIndex, EmailAddress};

pub struct BlindIndexer {
    key: hmac::Key,
}

impl BlindIndexer {
    pub fn new(key_bytes: &[u8; 32]) -> Self {
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, key_bytes) }
    }

    /// 64 lower-case hex characters.
    pub fn index(&self, email: &EmailAddress) -> BlindIndex {
        let tag = hmac::sign(&self.key, email.normalized().as_bytes());
        let digest: &[u8; 32] = tag.as_ref().try_into().expect("HMAC-SHA-256 tags are 32 bytes");
        BlindIndex::from_digest(digest)
    }

    /// A keyed hash (hex) of another value that must be counted or compared
    /// without being stored, such as the consent limits' client IPs. The
    /// input starts with a NUL byte and `purpose`, which no address can, so
    /// no tag equals an address's index or another purpose's tag.
    pub fn tag(&self, purpose: &str, value: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [b"\0tag\0".as_slice(), purpose.as_bytes(), b"\0", value] {
            ctx.update(part);
        }
        hex::encode(ctx.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_ignores_case_and_differs_per_key() {
        let a = BlindIndexer::new(&[1; 32]);
        let b = BlindIndexer::new(&[2; 32]);
        let upper = EmailAddress::parse("Ada@Example.org").unwrap();
        let lower = EmailAddress::parse("ada@example.org").unwrap();
        assert_eq!(a.index(&upper), a.index(&lower));
        assert_ne!(a.index(&lower), b.index(&lower));
        assert!(!a.index(&lower).as_str().contains("ada"));
    }
}
