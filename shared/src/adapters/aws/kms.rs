//! KMS as the key provider: `GenerateDataKey` (AES_256) and `Decrypt` under
//! the configured key, with the port's encryption context passed as the KMS
//! encryption context, so KMS binds each wrapped key to the IDs it protects.
//!
//! Error messages carry the operation and the KMS error code only, never a
//! key, a ciphertext or the service's message text.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use zeroize::Zeroizing;

use super::sanitize_code;
use crate::ports::{DataKey, EncryptionContext, KeyProvider, KeyProviderError};

/// KMS error codes that will not change on retry: the key, its state, the
/// caller's permissions or the wrapped key itself is wrong.
const REFUSED_CODES: &[&str] = &[
    "AccessDeniedException",
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "NotFoundException",
    "DisabledException",
    "KMSInvalidStateException",
    "InvalidKeyUsageException",
    "InvalidGrantTokenException",
    "ValidationException",
];

/// The error for a failed KMS call, from its code and HTTP status only; the
/// message names the operation and the code, never the service's text.
///
/// Refused: the codes in `REFUSED_CODES`. Everything else (throttling,
/// `KMSInternalException`, `DependencyTimeoutException`,
/// `KeyUnavailableException`, 5xx, unknown codes) is unavailable: retried,
/// then dead-lettered, never recorded as a permanent failure.
pub fn classify_kms_error(operation: &str, code: Option<&str>, http_status: Option<u16>) -> KeyProviderError {
    let what = match (code, http_status) {
        (Some(code), _) => format!("kms {operation}: {}", sanitize_code(code)),
        (None, Some(status)) => format!("kms {operation}: http {status}"),
        (None, None) => format!("kms {operation}: no answer"),
    };
    if code.is_some_and(|c| REFUSED_CODES.contains(&c)) {
        KeyProviderError::refused(what)
    } else {
        KeyProviderError::unavailable(what)
    }
}

/// Keeps the SDK error as the source; the display is `classify_kms_error`'s.
fn sdk_error<E>(operation: &str, err: SdkError<E, HttpResponse>) -> KeyProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let error = match &err {
        SdkError::ServiceError(service) => {
            classify_kms_error(operation, service.err().code(), Some(service.raw().status().as_u16()))
        }
        SdkError::TimeoutError(_) => KeyProviderError::unavailable(format!("kms {operation}: timeout")),
        SdkError::DispatchFailure(_) => KeyProviderError::unavailable(format!("kms {operation}: dispatch failure")),
        SdkError::ResponseError(_) => KeyProviderError::unavailable(format!("kms {operation}: unreadable response")),
        SdkError::ConstructionFailure(_) => {
            KeyProviderError::unavailable(format!("kms {operation}: request could not be built"))
        }
        _ => KeyProviderError::unavailable(format!("kms {operation}: failed")),
    };
    error.with_source(err)
}

/// The customer's KMS key.
pub struct KmsKeyProvider {
    client: aws_sdk_kms::Client,
    key_id: String,
    calls: AtomicU64,
}

impl KmsKeyProvider {
    /// `key_id`: a key ID, key ARN, alias name (`alias/…`) or alias ARN.
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into(), calls: AtomicU64::new(0) }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// How many `GenerateDataKey` and `Decrypt` calls this provider has made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn kms_context(context: &EncryptionContext) -> Option<HashMap<String, String>> {
        if context.pairs().is_empty() { None } else { Some(context.pairs().iter().cloned().collect()) }
    }
}

/// Copies a 32-byte key out of the response, zeroing the intermediate buffer.
fn data_key_bytes(operation: &str, blob: Option<Blob>) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
    let bytes = Zeroizing::new(blob.map(Blob::into_inner).unwrap_or_default());
    if bytes.len() != 32 {
        return Err(KeyProviderError::refused(format!("kms {operation}: the data key is not 256 bits")));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&bytes);
    Ok(out)
}

#[async_trait]
impl KeyProvider for KmsKeyProvider {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyProviderError> {
        const OP: &str = "GenerateDataKey";
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut output = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Self::kms_context(context))
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        let plaintext = data_key_bytes(OP, output.plaintext.take())?;
        let wrapped = output
            .ciphertext_blob
            .take()
            .map(Blob::into_inner)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| KeyProviderError::unavailable(format!("kms {OP}: no wrapped key in the answer")))?;
        Ok(DataKey { plaintext, wrapped })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
        const OP: &str = "Decrypt";
        if wrapped.is_empty() {
            return Err(KeyProviderError::refused(format!("kms {OP}: the wrapped key is empty")));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut output = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Self::kms_context(context))
            .send()
            .await
            .map_err(|e| sdk_error(OP, e))?;
        data_key_bytes(OP, output.plaintext.take())
    }

    /// `RotateKeyOnDemand`: new key material for the same key; KMS keeps the
    /// old material and picks it from each ciphertext, so nothing wrapped
    /// before stops opening. The API takes a key ID or ARN, not an alias, so
    /// an alias is resolved with `DescribeKey` first.
    async fn rotate(&self) -> Result<String, KeyProviderError> {
        let key_id = if self.key_id.starts_with("alias/") || self.key_id.contains(":alias/") {
            let described = self
                .client
                .describe_key()
                .key_id(&self.key_id)
                .send()
                .await
                .map_err(|e| sdk_error("DescribeKey", e))?;
            described
                .key_metadata
                .map(|m| m.key_id)
                .ok_or_else(|| KeyProviderError::unavailable("kms DescribeKey: no key metadata"))?
        } else {
            self.key_id.clone()
        };
        self.client
            .rotate_key_on_demand()
            .key_id(&key_id)
            .send()
            .await
            .map_err(|e| sdk_error("RotateKeyOnDemand", e))?;
        Ok(format!("kms key {} rotated on demand", sanitize_code(&key_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: &str) -> bool {
        matches!(classify_kms_error("Decrypt", Some(code), Some(400)), KeyProviderError::Refused { .. })
    }

    #[test]
    fn key_and_ciphertext_problems_are_refusals() {
        for code in ["AccessDeniedException", "InvalidCiphertextException", "DisabledException"] {
            assert!(refused(code), "{code}");
        }
    }

    #[test]
    fn throttling_and_service_faults_are_unavailable() {
        for code in
            ["ThrottlingException", "LimitExceededException", "KMSInternalException", "DependencyTimeoutException"]
        {
            assert!(!refused(code), "{code}");
        }
        assert!(matches!(classify_kms_error("Decrypt", None, Some(503)), KeyProviderError::Unavailable { .. }));
        assert!(matches!(classify_kms_error("Decrypt", None, None), KeyProviderError::Unavailable { .. }));
    }

    #[test]
    fn messages_name_the_operation_and_code_only() {
        let e = classify_kms_error("Decrypt", Some("InvalidCiphertextException"), Some(400));
        assert_eq!(e.to_string(), "key service refused: kms Decrypt: InvalidCiphertextException");
    }
}
