//! Port: keys.

use super::*;

/// Context bound to a wrapped key; IDs and purposes only, never PHI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionContext(Vec<(String, String)>);

impl EncryptionContext {
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        let mut v: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        v.sort();
        Self(v)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// A canonical byte form, used as AAD by the key file adapter.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.extend_from_slice(k.as_bytes());
            out.push(0);
            out.extend_from_slice(v.as_bytes());
            out.push(0);
        }
        out
    }
}

/// A fresh 256-bit data key: the plaintext for use now, the wrapped form to store.
pub struct DataKey {
    pub plaintext: Zeroizing<[u8; 32]>,
    pub wrapped: Vec<u8>,
}

/// The customer's key service: KMS in AWS, a local key file when embedded.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyProviderError>;
    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, KeyProviderError>;
    /// Rotates the customer key: data keys generated from now on are wrapped
    /// under new key material, and every key wrapped before still unwraps.
    /// Returns a description of the new material for the operator (no secret).
    async fn rotate(&self) -> Result<String, KeyProviderError>;
}
