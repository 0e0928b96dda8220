//! Port: secrets.

use super::*;

/// Small named secrets stored wrapped by the key provider (the blind-index
/// and token root secret).
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores `value` unless `name` exists; returns what is stored afterwards.
    async fn put_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}
