//! `KeyProvider`: fresh 256-bit data keys wrapped under the customer's key
//! and bound to an encryption context, as KMS `GenerateDataKey` / `Decrypt`.

use carepost::ports::{EncryptionContext, KeyProvider, KeyProviderError};

fn contact_context(contact: &str) -> EncryptionContext {
    EncryptionContext::new(&[("purpose", "contact"), ("contact_id", contact)])
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, KeyProviderError>, what: &str) {
    match result {
        Err(KeyProviderError::Refused { .. }) => {}
        other => panic!("{what}: expected Refused, got {other:?}"),
    }
}

pub async fn key_provider_contract(keys: &dyn KeyProvider) {
    a_generated_data_key_decrypts_under_the_same_context(keys).await;
    each_data_key_is_fresh(keys).await;
    the_order_of_context_pairs_does_not_matter(keys).await;
    a_different_encryption_context_is_refused(keys).await;
    a_tampered_wrapped_key_is_refused(keys).await;
    a_key_wrapped_before_rotation_still_unwraps_after_it(keys).await;
}

pub async fn a_key_wrapped_before_rotation_still_unwraps_after_it(keys: &dyn KeyProvider) {
    let context = contact_context("c-rotate");
    let before = keys.generate_data_key(&context).await.unwrap();

    let rotated = keys.rotate().await.unwrap();
    let after = keys.generate_data_key(&context).await.unwrap();

    assert!(!rotated.is_empty());
    assert_eq!(*keys.decrypt_data_key(&before.wrapped, &context).await.unwrap(), *before.plaintext);
    assert_eq!(*keys.decrypt_data_key(&after.wrapped, &context).await.unwrap(), *after.plaintext);
}

pub async fn a_generated_data_key_decrypts_under_the_same_context(keys: &dyn KeyProvider) {
    let context = contact_context("c-1");
    let data_key = keys.generate_data_key(&context).await.unwrap();

    let plaintext = keys.decrypt_data_key(&data_key.wrapped, &context).await.unwrap();

    assert_eq!(*plaintext, *data_key.plaintext);
    assert!(
        !data_key.wrapped.windows(32).any(|w| w == data_key.plaintext.as_slice()),
        "the wrapped key must not contain the plaintext key"
    );
}

pub async fn each_data_key_is_fresh(keys: &dyn KeyProvider) {
    let context = contact_context("c-1");

    let (a, b) = (keys.generate_data_key(&context).await.unwrap(), keys.generate_data_key(&context).await.unwrap());

    assert_ne!(*a.plaintext, *b.plaintext);
    assert_ne!(a.wrapped, b.wrapped);
    assert_ne!(*a.plaintext, [0u8; 32]);
}

pub async fn the_order_of_context_pairs_does_not_matter(keys: &dyn KeyProvider) {
    let written = EncryptionContext::new(&[("purpose", "contact"), ("contact_id", "c-1")]);
    let read = EncryptionContext::new(&[("contact_id", "c-1"), ("purpose", "contact")]);
    let data_key = keys.generate_data_key(&written).await.unwrap();

    let plaintext = keys.decrypt_data_key(&data_key.wrapped, &read).await.unwrap();

    assert_eq!(*plaintext, *data_key.plaintext);
}

pub async fn a_different_encryption_context_is_refused(keys: &dyn KeyProvider) {
    let data_key = keys.generate_data_key(&contact_context("c-1")).await.unwrap();

    let other_contact = keys.decrypt_data_key(&data_key.wrapped, &contact_context("c-2")).await;
    let extra_pair = keys
        .decrypt_data_key(
            &data_key.wrapped,
            &EncryptionContext::new(&[("purpose", "contact"), ("contact_id", "c-1"), ("tenant", "t")]),
        )
        .await;
    let empty = keys.decrypt_data_key(&data_key.wrapped, &EncryptionContext::new(&[])).await;

    assert_refused(other_contact, "another contact's context");
    assert_refused(extra_pair, "a context with an extra pair");
    assert_refused(empty, "an empty context");
}

pub async fn a_tampered_wrapped_key_is_refused(keys: &dyn KeyProvider) {
    let context = contact_context("c-1");
    let wrapped = keys.generate_data_key(&context).await.unwrap().wrapped;
    let last = wrapped.len() - 1;

    for position in [0, wrapped.len() / 2, last] {
        let mut tampered = wrapped.clone();
        tampered[position] ^= 0x01;
        assert_refused(keys.decrypt_data_key(&tampered, &context).await, &format!("a bit flipped at {position}"));
    }
    assert_refused(keys.decrypt_data_key(&wrapped[..last], &context).await, "a truncated key");
    assert_refused(keys.decrypt_data_key(&[wrapped.as_slice(), b"x"].concat(), &context).await, "an extended key");
    assert_refused(keys.decrypt_data_key(&[], &context).await, "an empty key");
}

mod embedded {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use carepost::adapters::embedded::KeyFileProvider;
    use carepost::adapters::embedded::keyfile::KeyFileError;
    use carepost::ports::KeyProvider;

    use super::super::support::{Scratch, scratch};
    use super::{assert_refused, contact_context};

    fn key_path(s: &Scratch) -> PathBuf {
        s.dir.path().join("keys").join("master.key")
    }

    fn provider() -> (Scratch, KeyFileProvider) {
        let s = scratch();
        let keys = KeyFileProvider::open_or_create(&key_path(&s)).expect("key file is created");
        (s, keys)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_generated_data_key_decrypts_under_the_same_context() {
        let (_s, keys) = provider();
        super::a_generated_data_key_decrypts_under_the_same_context(&keys).await;
    }

    #[tokio::test]
    async fn each_data_key_is_fresh() {
        let (_s, keys) = provider();
        super::each_data_key_is_fresh(&keys).await;
    }

    #[tokio::test]
    async fn the_order_of_context_pairs_does_not_matter() {
        let (_s, keys) = provider();
        super::the_order_of_context_pairs_does_not_matter(&keys).await;
    }

    #[tokio::test]
    async fn a_different_encryption_context_is_refused() {
        let (_s, keys) = provider();
        super::a_different_encryption_context_is_refused(&keys).await;
    }

    #[tokio::test]
    async fn a_tampered_wrapped_key_is_refused() {
        let (_s, keys) = provider();
        super::a_tampered_wrapped_key_is_refused(&keys).await;
    }

    #[tokio::test]
    async fn a_key_wrapped_before_rotation_still_unwraps_after_it() {
        let (_s, keys) = provider();
        super::a_key_wrapped_before_rotation_still_unwraps_after_it(&keys).await;
    }

    #[tokio::test]
    async fn rotation_adds_a_private_key_file_and_a_reopened_provider_uses_it() {
        let (s, keys) = provider();
        let context = contact_context("c-1");
        let before = keys.generate_data_key(&context).await.unwrap();

        keys.rotate().await.unwrap();
        let reopened = KeyFileProvider::open_or_create(&key_path(&s)).unwrap();
        let after = reopened.generate_data_key(&context).await.unwrap();

        let second = s.dir.path().join("keys").join("master.key.v2");
        assert_eq!(mode(&second), 0o600);
        assert_eq!(reopened.current_version(), 2);
        assert!(before.wrapped.starts_with(b"KF1"));
        assert!(after.wrapped.starts_with(b"KF2\0\0\0\x02"));
        assert_eq!(*reopened.decrypt_data_key(&before.wrapped, &context).await.unwrap(), *before.plaintext);
        std::fs::remove_file(&second).unwrap();
        let without_v2 = KeyFileProvider::open_or_create(&key_path(&s)).unwrap();
        assert_refused(without_v2.decrypt_data_key(&after.wrapped, &context).await, "a missing key version");
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_provider() {
        let (_s, keys) = provider();
        super::key_provider_contract(&keys).await;
    }

    #[tokio::test]
    async fn a_new_key_file_holds_32_bytes_readable_by_its_owner_only() {
        let s = scratch();
        let path = key_path(&s);

        let keys = KeyFileProvider::open_or_create(&path).unwrap();

        assert_eq!(keys.path(), path);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    }

    #[tokio::test]
    async fn an_existing_key_file_readable_by_others_is_refused() {
        let s = scratch();
        let path = key_path(&s);
        drop(KeyFileProvider::open_or_create(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        let result = KeyFileProvider::open_or_create(&path);

        match result {
            Err(KeyFileError::TooOpen { mode, .. }) => assert_eq!(mode, 0o644),
            Err(other) => panic!("expected TooOpen, got {other:?}"),
            Ok(_) => panic!("a key file readable by others was accepted"),
        }
    }

    #[tokio::test]
    async fn a_key_file_of_the_wrong_length_is_refused() {
        let s = scratch();
        let path = s.dir.path().join("short.key");
        std::fs::write(&path, [7u8; 16]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let result = KeyFileProvider::open_or_create(&path);

        assert!(matches!(result, Err(KeyFileError::WrongLength { .. })), "{:?}", result.err());
    }

    #[tokio::test]
    async fn a_reopened_key_file_decrypts_keys_wrapped_before() {
        let s = scratch();
        let context = contact_context("c-1");
        let data_key =
            KeyFileProvider::open_or_create(&key_path(&s)).unwrap().generate_data_key(&context).await.unwrap();
        let before = std::fs::read(key_path(&s)).unwrap();

        let reopened = KeyFileProvider::open_or_create(&key_path(&s)).unwrap();

        assert_eq!(std::fs::read(key_path(&s)).unwrap(), before, "an existing key must never be replaced");
        assert_eq!(*reopened.decrypt_data_key(&data_key.wrapped, &context).await.unwrap(), *data_key.plaintext);
    }

    #[tokio::test]
    async fn a_data_key_wrapped_under_another_key_file_is_refused() {
        let (_s, keys) = provider();
        let (_t, other) = provider();
        let context = contact_context("c-1");
        let data_key = other.generate_data_key(&context).await.unwrap();

        let result = keys.decrypt_data_key(&data_key.wrapped, &context).await;

        assert_refused(result, "another key file's data key");
    }
}
