//! Contact attributes sealed attribute by attribute with AES-256-GCM under a
//! data key that the customer's key provider wraps.
//!
//! Sealed blob, format version 1 (all integers big-endian):
//!
//! ```text
//! "CPE" | version=1 | dek_id (16) | wrapped_len (u16) | wrapped key
//!       | count (u8) | count × ( attribute code (u8) | len (u32) | nonce (12) | ciphertext+tag )
//! ```
//!
//! AAD of each attribute: `"carepost-attr" | version | contact id (16) | attribute code`,
//! so a ciphertext moved to another contact, another attribute or read under
//! another format version fails to open. Data keys are cached with a bounded
//! age and use count so key-service calls grow with time, not with contacts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::domain::schema::CUSTOM_CODES;
use crate::domain::{Attribute, ContactId, EmailAddress, InvalidField, Profile};
use crate::error::{Classify, ErrorClass};
use crate::ports::{EncryptionContext, KeyProvider, KeyProviderError};

const MAGIC: &[u8; 3] = b"CPE";
pub const FORMAT_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Field code of sealed consent proof; contact attributes use 1..=11.
const PROOF_CODE: u8 = 0x80;
/// Field code of a sealed secure message (its subject and body).
const SECURE_MESSAGE_CODE: u8 = 0x81;
const MAX_CACHED_DECRYPT_KEYS: usize = 4096;

/// Bounds on reuse of one data key.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// A data key is used to encrypt for at most this long…
    pub max_age: Duration,
    /// …and for at most this many contacts (each uses ≤ 11 nonces).
    pub max_uses: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self { max_age: Duration::from_secs(300), max_uses: 100_000 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    KeyProvider(#[from] KeyProviderError),
}

impl Classify for SealError {
    fn class(&self) -> ErrorClass {
        match self {
            SealError::KeyProvider(e) => e.class(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("sealed contact is malformed")]
    Malformed,
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    #[error("attribute failed authentication (tampered, swapped or wrong key)")]
    Authentication,
    #[error("sealed contact has no email")]
    MissingEmail,
    #[error("decrypted attribute is invalid: {0}")]
    InvalidAttribute(#[from] InvalidField),
    #[error(transparent)]
    KeyProvider(#[from] KeyProviderError),
}

impl Classify for OpenError {
    fn class(&self) -> ErrorClass {
        match self {
            OpenError::KeyProvider(e) => e.class(),
            _ => ErrorClass::Permanent,
        }
    }
}

struct ActiveKey {
    dek_id: [u8; 16],
    wrapped: Vec<u8>,
    key: Arc<LessSafeKey>,
    created: Instant,
    /// Wall-clock birth, comparable across processes (rotation times).
    born: SystemTime,
    uses: u64,
}

struct CachedKey {
    key: Arc<LessSafeKey>,
    created: Instant,
}

/// Seals and opens contact attributes. Cheap to share behind an `Arc`.
pub struct Envelope {
    provider: Arc<dyn KeyProvider>,
    limits: CacheLimits,
    active: tokio::sync::Mutex<Option<ActiveKey>>,
    opened: Mutex<HashMap<[u8; 16], CachedKey>>,
}

fn context_for(dek_id: &[u8; 16]) -> EncryptionContext {
    EncryptionContext::new(&[("purpose", "contact-attributes"), ("dek_id", &hex::encode(dek_id))])
}

fn aad(contact: &ContactId, attribute: u8, version: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32);
    aad.extend_from_slice(b"carepost-attr");
    aad.push(version);
    aad.extend_from_slice(contact.as_bytes());
    aad.push(attribute);
    aad
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    aws_lc_rs::rand::fill(&mut out).expect("system random is available");
    out
}

fn aes_key(bytes: &[u8; 32]) -> Arc<LessSafeKey> {
    Arc::new(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes is an AES-256 key")))
}

impl Envelope {
    pub fn new(provider: Arc<dyn KeyProvider>, limits: CacheLimits) -> Self {
        Self { provider, limits, active: tokio::sync::Mutex::new(None), opened: Mutex::new(HashMap::new()) }
    }

    /// Seals the email and every present profile attribute of one contact.
    pub async fn seal(
        &self,
        contact: &ContactId,
        email: &EmailAddress,
        profile: &Profile,
    ) -> Result<Vec<u8>, SealError> {
        let mut fields: Vec<(u8, Vec<u8>)> = vec![(Attribute::Email.code(), email.as_str().as_bytes().to_vec())];
        fields.extend(Attribute::ALL.into_iter().filter_map(|a| profile.attribute_bytes(a).map(|b| (a.code(), b))));
        fields.extend(
            profile.custom.iter().filter(|(code, _)| CUSTOM_CODES.contains(code)).map(|(code, b)| (*code, b.clone())),
        );
        self.seal_fields(contact, fields).await
    }

    /// Seals consent proof (IP, user agent, origin) bound to its contact.
    pub async fn seal_proof(&self, contact: &ContactId, proof: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_fields(contact, vec![(PROOF_CODE, proof.to_vec())]).await
    }

    pub async fn open_proof(&self, contact: &ContactId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let fields = self.open_fields(contact, sealed, |code| code == PROOF_CODE).await?;
        fields.into_iter().next().map(|(_, v)| v).ok_or(OpenError::Malformed)
    }

    /// Seals a secure message's content (subject and body) bound to its contact.
    pub async fn seal_secure_message(&self, contact: &ContactId, content: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal_fields(contact, vec![(SECURE_MESSAGE_CODE, content.to_vec())]).await
    }

    pub async fn open_secure_message(&self, contact: &ContactId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let fields = self.open_fields(contact, sealed, |code| code == SECURE_MESSAGE_CODE).await?;
        fields.into_iter().next().map(|(_, v)| v).ok_or(OpenError::Malformed)
    }

    /// Opens the built-in attributes named in `only` (every attribute,
    /// custom ones included, when `None`); the email is always opened.
    pub async fn open(
        &self,
        contact: &ContactId,
        sealed: &[u8],
        only: Option<&[Attribute]>,
    ) -> Result<(EmailAddress, Profile), OpenError> {
        let wanted = |code: u8| match Attribute::from_code(code) {
            Some(Attribute::Email) => true,
            Some(a) => only.is_none_or(|o| o.contains(&a)),
            None => only.is_none() && CUSTOM_CODES.contains(&code),
        };
        let (email, profile) = self.open_where(contact, sealed, wanted).await?;
        Ok((email.ok_or(OpenError::MissingEmail)?, profile))
    }

    /// Opens exactly the fields whose code `wanted` accepts (built-in or
    /// custom); the email only if it is one of them.
    pub async fn open_where(
        &self,
        contact: &ContactId,
        sealed: &[u8],
        wanted: impl Fn(u8) -> bool,
    ) -> Result<(Option<EmailAddress>, Profile), OpenError> {
        let wanted = |code: u8| code != PROOF_CODE && wanted(code);
        let mut email = None;
        let mut profile = Profile::default();
        for (code, plain) in self.open_fields(contact, sealed, wanted).await? {
            match Attribute::from_code(code) {
                Some(Attribute::Email) => {
                    let text = std::str::from_utf8(&plain).map_err(|_| OpenError::Malformed)?;
                    email = Some(EmailAddress::parse(text).map_err(|_| OpenError::Malformed)?);
                }
                Some(attribute) => profile.set_attribute_bytes(attribute, &plain)?,
                None if CUSTOM_CODES.contains(&code) => {
                    profile.custom.insert(code, plain);
                }
                None => {}
            }
        }
        Ok((email, profile))
    }

    /// Opens every field of a blob and seals them again under the current
    /// data key (key rotation). The plaintext never leaves this function.
    pub async fn reseal(&self, contact: &ContactId, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let fields = self.open_fields(contact, sealed, |_| true).await?;
        self.seal_fields(contact, fields).await.map_err(|SealError::KeyProvider(e)| OpenError::KeyProvider(e))
    }

    /// Rotates the customer key (see `KeyProvider::rotate`) and stops sealing
    /// with the data key wrapped under the old material.
    pub async fn rotate_customer_key(&self) -> Result<String, KeyProviderError> {
        let rotated = self.provider.rotate().await?;
        *self.active.lock().await = None;
        Ok(rotated)
    }

    /// Stops sealing with a data key generated before `time`: the next seal
    /// generates a fresh one, wrapped under the customer key as it is now.
    pub async fn retire_keys_born_before(&self, time: SystemTime) {
        let mut active = self.active.lock().await;
        if active.as_ref().is_some_and(|k| k.born < time) {
            *active = None;
        }
    }

    async fn seal_fields(&self, contact: &ContactId, fields: Vec<(u8, Vec<u8>)>) -> Result<Vec<u8>, SealError> {
        let (dek_id, wrapped, key) = self.current_key().await?;
        let mut out = Vec::with_capacity(64 + wrapped.len() + fields.len() * 48);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&dek_id);
        out.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
        out.extend_from_slice(&wrapped);
        out.push(fields.len() as u8);
        for (code, mut plaintext) in fields {
            let nonce = random::<NONCE_LEN>();
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(contact, code, FORMAT_VERSION)),
                &mut plaintext,
            )
            .expect("sealing with a valid key cannot fail");
            out.push(code);
            out.extend_from_slice(&((NONCE_LEN + plaintext.len()) as u32).to_be_bytes());
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&plaintext);
        }
        Ok(out)
    }

    async fn open_fields(
        &self,
        contact: &ContactId,
        sealed: &[u8],
        wanted: impl Fn(u8) -> bool,
    ) -> Result<Vec<(u8, Vec<u8>)>, OpenError> {
        let parsed = parse(sealed)?;
        let key = self.key_for(&parsed.dek_id, parsed.wrapped).await?;
        let mut out = Vec::with_capacity(parsed.fields.len());
        for (code, body) in parsed.fields {
            if !wanted(code) {
                continue;
            }
            if body.len() < NONCE_LEN + TAG_LEN {
                return Err(OpenError::Malformed);
            }
            let (nonce, ciphertext) = body.split_at(NONCE_LEN);
            let mut buf = ciphertext.to_vec();
            let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Malformed)?;
            let len = key
                .open_in_place(nonce, Aad::from(aad(contact, code, parsed.version)), &mut buf)
                .map_err(|_| OpenError::Authentication)?
                .len();
            buf.truncate(len);
            out.push((code, buf));
        }
        Ok(out)
    }

    async fn current_key(&self) -> Result<([u8; 16], Vec<u8>, Arc<LessSafeKey>), SealError> {
        let mut active = self.active.lock().await;
        let fresh =
            active.as_ref().is_some_and(|k| k.uses < self.limits.max_uses && k.created.elapsed() < self.limits.max_age);
        if !fresh {
            let dek_id = random::<16>();
            let data_key = self.provider.generate_data_key(&context_for(&dek_id)).await?;
            let key = aes_key(&data_key.plaintext);
            self.opened
                .lock()
                .expect("key cache lock")
                .insert(dek_id, CachedKey { key: key.clone(), created: Instant::now() });
            *active = Some(ActiveKey {
                dek_id,
                wrapped: data_key.wrapped,
                key,
                created: Instant::now(),
                born: SystemTime::now(),
                uses: 0,
            });
        }
        let k = active.as_mut().expect("set above");
        k.uses += 1;
        Ok((k.dek_id, k.wrapped.clone(), k.key.clone()))
    }

    async fn key_for(&self, dek_id: &[u8; 16], wrapped: &[u8]) -> Result<Arc<LessSafeKey>, OpenError> {
        if let Some(hit) = self.opened.lock().expect("key cache lock").get(dek_id)
            && hit.created.elapsed() < self.limits.max_age
        {
            return Ok(hit.key.clone());
        }
        let plaintext = self.provider.decrypt_data_key(wrapped, &context_for(dek_id)).await?;
        let key = aes_key(&plaintext);
        let mut cache = self.opened.lock().expect("key cache lock");
        if cache.len() >= MAX_CACHED_DECRYPT_KEYS {
            cache.retain(|_, v| v.created.elapsed() < self.limits.max_age);
            if cache.len() >= MAX_CACHED_DECRYPT_KEYS {
                cache.clear();
            }
        }
        cache.insert(*dek_id, CachedKey { key: key.clone(), created: Instant::now() });
        Ok(key)
    }
}

struct Parsed<'a> {
    version: u8,
    dek_id: [u8; 16],
    wrapped: &'a [u8],
    fields: Vec<(u8, &'a [u8])>,
}

fn parse(sealed: &[u8]) -> Result<Parsed<'_>, OpenError> {
    let mut r = Reader(sealed);
    if r.take(3)? != MAGIC {
        return Err(OpenError::Malformed);
    }
    let version = r.take(1)?[0];
    if version != FORMAT_VERSION {
        return Err(OpenError::UnsupportedVersion(version));
    }
    let dek_id: [u8; 16] = r.take(16)?.try_into().map_err(|_| OpenError::Malformed)?;
    let wrapped_len = u16::from_be_bytes(r.take(2)?.try_into().map_err(|_| OpenError::Malformed)?);
    let wrapped = r.take(usize::from(wrapped_len))?;
    let count = r.take(1)?[0];
    let mut fields = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let code = r.take(1)?[0];
        let len = u32::from_be_bytes(r.take(4)?.try_into().map_err(|_| OpenError::Malformed)?);
        fields.push((code, r.take(len as usize)?));
    }
    if !r.0.is_empty() {
        return Err(OpenError::Malformed);
    }
    Ok(Parsed { version, dek_id, wrapped, fields })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpenError> {
        if self.0.len() < n {
            return Err(OpenError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

/// Where each attribute's ciphertext sits in a sealed blob, for tests and tools
/// that need to prove tamper and swap detection.
pub fn attribute_spans(sealed: &[u8]) -> Vec<(Attribute, std::ops::Range<usize>)> {
    let Ok(parsed) = parse(sealed) else { return Vec::new() };
    let base = sealed.as_ptr() as usize;
    parsed
        .fields
        .iter()
        .filter_map(|(code, body)| {
            let start = body.as_ptr() as usize - base;
            Attribute::from_code(*code).map(|a| (a, start..start + body.len()))
        })
        .collect()
}

/// Byte offset of the version field, for tests of version binding.
pub const VERSION_OFFSET: usize = 3;

/// The wrapped data key a blob was sealed under, for tests and tools that
/// check which customer key version protects it.
pub fn wrapped_key_of(sealed: &[u8]) -> Option<&[u8]> {
    parse(sealed).ok().map(|p| p.wrapped)
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
