//! The email's blind index as a type: 64 lower-case hex characters, the
//! HMAC-SHA-256 `crypto::BlindIndexer` computes. Lookups by email and the
//! suppression list are keyed by it, so no table holds the address.

/// An email's blind index. Built by `crypto::BlindIndexer::index`, or from a
/// stored value (`from_stored`) that must have the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlindIndex(String);

/// A stored value that is not a blind index. Names no part of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blind index (64 lower-case hex characters)")]
pub struct InvalidBlindIndex;

impl BlindIndex {
    /// Length in hex characters (a 256-bit digest).
    pub const LEN: usize = 64;

    /// From an HMAC-SHA-256 digest (the indexer's only way in).
    pub(crate) fn from_digest(digest: &[u8; 32]) -> Self {
        BlindIndex(hex::encode(digest))
    }

    /// A value read back from a table, checked for the indexer's shape.
    pub fn from_stored(value: impl Into<String>) -> Result<Self, InvalidBlindIndex> {
        let value = value.into();
        let hex_lower = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
        if value.len() == Self::LEN && value.bytes().all(hex_lower) {
            Ok(BlindIndex(value))
        } else {
            Err(InvalidBlindIndex)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlindIndex {
    type Error = InvalidBlindIndex;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        BlindIndex::from_stored(value)
    }
}

impl From<BlindIndex> for String {
    fn from(index: BlindIndex) -> String {
        index.0
    }
}

impl AsRef<str> for BlindIndex {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_indexers_shape_is_accepted_from_storage() {
        let digest = BlindIndex::from_digest(&[0xab; 32]);
        assert_eq!(digest.as_str(), "ab".repeat(32));
        assert_eq!(BlindIndex::from_stored(digest.as_str()), Ok(digest.clone()));
        assert_eq!(BlindIndex::try_from(String::from(digest.clone())), Ok(digest));
        for bad in ["", "idx-1", &"AB".repeat(32), &"ab".repeat(31), &"ab".repeat(33), &format!("{}g", "a".repeat(63))]
        {
            assert_eq!(BlindIndex::from_stored(bad), Err(InvalidBlindIndex), "{bad}");
        }
        assert!(!InvalidBlindIndex.to_string().contains("idx"));
    }
}
