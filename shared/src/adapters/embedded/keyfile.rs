//! A local key file standing in for KMS: a 256-bit key created on first run
//! with mode 0600. Data keys are wrapped with AES-256-GCM under it, with the
//! encryption context as AAD, exactly as KMS binds its context.
//!
//! Wrapped data key: `"KF1" | nonce (12) | ciphertext (32) | tag (16)`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::ports::{DataKey, EncryptionContext, KeyProvider, KeyProviderError};

const MAGIC: &[u8; 3] = b"KF1";

pub struct KeyFileProvider {
    key: LessSafeKey,
    path: PathBuf,
    calls: std::sync::atomic::AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("key file {path} must hold exactly 32 bytes")]
    WrongLength { path: String },
    #[error("key file {path} is readable by others (mode {mode:o}); run chmod 600 on it")]
    TooOpen { path: String, mode: u32 },
}

impl KeyFileProvider {
    /// Opens the key file, creating it with a fresh random key if absent.
    pub fn open_or_create(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        if !path.exists() {
            // Written to a private temporary file, then linked into place: a
            // crash never leaves an empty key file, and a racing first run
            // keeps whichever key was linked first.
            let temp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4()));
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).map_err(io)?;
            let mut fresh = Zeroizing::new([0u8; 32]);
            aws_lc_rs::rand::fill(fresh.as_mut()).expect("system random is available");
            file.write_all(fresh.as_ref()).map_err(io)?;
            file.sync_all().map_err(io)?;
            let linked = std::fs::hard_link(&temp, path);
            std::fs::remove_file(&temp).map_err(io)?;
            match linked {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let meta = std::fs::metadata(path).map_err(io)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::TooOpen { path: path.display().to_string(), mode });
        }
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path).map_err(io)?.read_to_end(&mut bytes).map_err(io)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| KeyFileError::WrongLength { path: path.display().to_string() })?;
        Ok(Self { key: LessSafeKey::new(key), path: path.to_owned(), calls: Default::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many wrap and unwrap calls this provider has served.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[async_trait]
impl KeyProvider for KeyFileProvider {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyProviderError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut plaintext = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(plaintext.as_mut()).expect("system random is available");
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system random is available");
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.canonical()), &mut body)
            .map_err(|_| KeyProviderError::Refused("wrap failed".into()))?;
        let mut wrapped = MAGIC.to_vec();
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&body);
        Ok(DataKey { plaintext, wrapped })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let refused = || KeyProviderError::Refused("wrapped key does not open under this key and context".into());
        let rest = wrapped.strip_prefix(MAGIC.as_slice()).ok_or_else(refused)?;
        if rest.len() != NONCE_LEN + 32 + 16 {
            return Err(refused());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let mut buf = Zeroizing::new(body.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let plain = self.key.open_in_place(nonce, Aad::from(context.canonical()), &mut buf).map_err(|_| refused())?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(plain);
        Ok(out)
    }
}
