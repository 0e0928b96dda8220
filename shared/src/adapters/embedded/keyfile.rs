//! Local key files standing in for KMS: 256-bit keys created with mode 0600.
//! Data keys are wrapped with AES-256-GCM under the newest key, with the
//! encryption context as AAD, exactly as KMS binds its context. Rotation adds
//! a key version; older versions stay and keep unwrapping what they wrapped,
//! as KMS keeps the old material of a rotated key.
//!
//! Files: version 1 is the given path (`master.key`); version n ≥ 2 is
//! `master.key.v<n>` beside it.
//!
//! Wrapped data key, version 1: `"KF1" | nonce (12) | ciphertext (32) | tag (16)`;
//! version n ≥ 2: `"KF2" | n (u32, big-endian) | nonce (12) | ciphertext (32) | tag (16)`.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::ports::{DataKey, EncryptionContext, KeyProvider, KeyProviderError};

const MAGIC_V1: &[u8; 3] = b"KF1";
const MAGIC_VERSIONED: &[u8; 3] = b"KF2";
const WRAPPED_BODY_LEN: usize = NONCE_LEN + 32 + 16;

pub struct KeyFileProvider {
    /// Key versions in order; the last one wraps new data keys.
    keys: RwLock<Vec<(u32, LessSafeKey)>>,
    path: PathBuf,
    calls: AtomicU64,
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

/// The file of key `version` next to version 1's `path`.
fn version_path(path: &Path, version: u32) -> PathBuf {
    if version == 1 {
        path.to_owned()
    } else {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".v{version}"));
        path.with_file_name(name)
    }
}

/// Creates `path` holding a fresh random key unless it exists.
fn create_if_absent(path: &Path) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        return Ok(());
    }
    // Written to a private temporary file, then linked into place: a crash
    // never leaves an empty key file, and a racing first run keeps whichever
    // key was linked first.
    let temp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4()));
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp).map_err(io)?;
    let mut fresh = Zeroizing::new([0u8; 32]);
    aws_lc_rs::rand::fill(fresh.as_mut()).expect("system random is available");
    file.write_all(fresh.as_ref()).map_err(io)?;
    file.sync_all().map_err(io)?;
    let linked = std::fs::hard_link(&temp, path);
    std::fs::remove_file(&temp).map_err(io)?;
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Reads one key file, refusing one that others may read or of the wrong size.
fn load(path: &Path) -> Result<LessSafeKey, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.display().to_string(), source };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen { path: path.display().to_string(), mode });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    std::fs::File::open(path).map_err(io)?.read_to_end(&mut bytes).map_err(io)?;
    let key = UnboundKey::new(&AES_256_GCM, &bytes)
        .map_err(|_| KeyFileError::WrongLength { path: path.display().to_string() })?;
    Ok(LessSafeKey::new(key))
}

impl KeyFileProvider {
    /// Opens the key file and every later version beside it, creating
    /// version 1 with a fresh random key if absent.
    pub fn open_or_create(path: &Path) -> Result<Self, KeyFileError> {
        create_if_absent(path)?;
        let mut keys = vec![(1, load(path)?)];
        let mut next = 2;
        while version_path(path, next).exists() {
            keys.push((next, load(&version_path(path, next))?));
            next += 1;
        }
        Ok(Self { keys: RwLock::new(keys), path: path.to_owned(), calls: AtomicU64::new(0) })
    }

    /// The version-1 key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version that wraps new data keys.
    pub fn current_version(&self) -> u32 {
        self.keys.read().expect("key list lock").last().map(|(v, _)| *v).unwrap_or(1)
    }

    /// How many wrap and unwrap calls this provider has served.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn refused() -> KeyProviderError {
        KeyProviderError::refused("wrapped key does not open under this key and context")
    }

    /// Splits a wrapped key into its key version and body.
    fn split(wrapped: &[u8]) -> Result<(u32, &[u8]), KeyProviderError> {
        if let Some(body) = wrapped.strip_prefix(MAGIC_V1.as_slice()) {
            return Ok((1, body));
        }
        let rest = wrapped.strip_prefix(MAGIC_VERSIONED.as_slice()).ok_or_else(Self::refused)?;
        if rest.len() < 4 {
            return Err(Self::refused());
        }
        let (version, body) = rest.split_at(4);
        let version = u32::from_be_bytes(version.try_into().map_err(|_| Self::refused())?);
        if version < 2 {
            return Err(Self::refused());
        }
        Ok((version, body))
    }
}

#[async_trait]
impl KeyProvider for KeyFileProvider {
    async fn generate_data_key(&self, context: &EncryptionContext) -> Result<DataKey, KeyProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut plaintext = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(plaintext.as_mut()).expect("system random is available");
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("system random is available");
        let mut body = plaintext.to_vec();
        let keys = self.keys.read().expect("key list lock");
        let (version, key) = keys.last().expect("at least version 1");
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.canonical()), &mut body)
            .map_err(|_| KeyProviderError::refused("wrap failed"))?;
        let mut wrapped = if *version == 1 {
            MAGIC_V1.to_vec()
        } else {
            let mut w = MAGIC_VERSIONED.to_vec();
            w.extend_from_slice(&version.to_be_bytes());
            w
        };
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&body);
        Ok(DataKey { plaintext, wrapped })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<[u8; 32]>, KeyProviderError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (version, rest) = Self::split(wrapped)?;
        if rest.len() != WRAPPED_BODY_LEN {
            return Err(Self::refused());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let mut buf = Zeroizing::new(body.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Self::refused())?;
        let keys = self.keys.read().expect("key list lock");
        let key = keys.iter().find(|(v, _)| *v == version).map(|(_, k)| k).ok_or_else(Self::refused)?;
        let plain = key.open_in_place(nonce, Aad::from(context.canonical()), &mut buf).map_err(|_| Self::refused())?;
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(plain);
        Ok(out)
    }

    async fn rotate(&self) -> Result<String, KeyProviderError> {
        let next = self.current_version() + 1;
        let path = version_path(&self.path, next);
        let unavailable = |e: KeyFileError| KeyProviderError::unavailable("key file rotation failed").with_source(e);
        create_if_absent(&path).map_err(unavailable)?;
        let key = load(&path).map_err(unavailable)?;
        let mut keys = self.keys.write().expect("key list lock");
        if keys.last().is_some_and(|(v, _)| *v < next) {
            keys.push((next, key));
        }
        Ok(format!("key file version {next}"))
    }
}
