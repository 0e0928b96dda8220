use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::adapters::embedded::KeyFileProvider;

fn contact(n: u8) -> ContactId {
    ContactId::from_bytes([n; 16])
}

fn profile() -> Profile {
    Profile::every_attribute_set()
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn key_file(dir: &Path, bytes: Option<&[u8]>) -> Arc<KeyFileProvider> {
    let path = dir.join("master.key");
    if let Some(bytes) = bytes {
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Arc::new(KeyFileProvider::open_or_create(&path).unwrap())
}

fn envelope(keys: Arc<KeyFileProvider>) -> Envelope {
    Envelope::new(keys, CacheLimits::default())
}

async fn sealed_ada(env: &Envelope) -> Vec<u8> {
    env.seal(&contact(1), &email("ada@example.org"), &profile()).await.unwrap()
}

#[tokio::test]
async fn a_sealed_contact_opens_to_what_was_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let sealed = sealed_ada(&env).await;

    let (opened_email, opened) = env.open(&contact(1), &sealed, None).await.unwrap();

    assert_eq!(opened_email, email("ada@example.org"));
    assert_eq!(opened, profile());
    assert!(!sealed.windows(8).any(|w| w == b"Lovelace"), "no plaintext in the blob");
}

#[tokio::test]
async fn flipping_any_byte_of_an_attribute_ciphertext_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let sealed = sealed_ada(&env).await;

    for (attribute, span) in attribute_spans(&sealed) {
        for offset in [span.start, span.start + 12, span.end - 1] {
            let mut tampered = sealed.clone();
            tampered[offset] ^= 0x01;

            let result = env.open(&contact(1), &tampered, None).await;

            assert!(
                matches!(result, Err(OpenError::Authentication)),
                "{attribute:?} byte {offset}: {:?}",
                result.map(|_| ())
            );
        }
    }
}

#[tokio::test]
async fn a_ciphertext_swapped_between_two_contacts_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let ada = sealed_ada(&env).await;
    let bob = env.seal(&contact(2), &email("bob@example.org"), &profile()).await.unwrap();

    let whole_blob_swapped = env.open(&contact(2), &ada, None).await;
    let conditions = |blob: &[u8]| {
        attribute_spans(blob).into_iter().find(|(a, _)| *a == Attribute::Conditions).map(|(_, s)| s).unwrap()
    };
    let mut bob_with_adas_conditions = bob.clone();
    let (from, to) = (conditions(&ada), conditions(&bob));
    assert_eq!(from.len(), to.len());
    bob_with_adas_conditions[to].copy_from_slice(&ada[from]);
    let one_field_swapped = env.open(&contact(2), &bob_with_adas_conditions, None).await;

    assert!(matches!(whole_blob_swapped, Err(OpenError::Authentication)));
    assert!(matches!(one_field_swapped, Err(OpenError::Authentication)));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_attribute_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let sealed = sealed_ada(&env).await;
    let (_, last_name) = attribute_spans(&sealed).into_iter().find(|(a, _)| *a == Attribute::LastName).unwrap();
    let mut relabelled = sealed.clone();
    // The code byte sits 5 bytes before the field body (code, then a u32 length).
    relabelled[last_name.start - 5] = Attribute::FirstName.code();

    let result = env.open(&contact(1), &relabelled, None).await;

    assert!(matches!(result, Err(OpenError::Authentication)), "{:?}", result.map(|_| ()));
}

#[tokio::test]
async fn a_changed_format_version_is_refused_before_any_decryption() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), None);
    let env = envelope(keys.clone());
    let mut sealed = sealed_ada(&env).await;
    sealed[VERSION_OFFSET] = 2;
    let calls_before = keys.calls();

    let result = env.open(&contact(1), &sealed, None).await;

    assert!(matches!(result, Err(OpenError::UnsupportedVersion(2))), "{:?}", result.map(|_| ()));
    assert_eq!(keys.calls(), calls_before);
}

#[tokio::test]
async fn a_field_sealed_under_another_version_in_its_aad_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let sealed = sealed_ada(&env).await;
    let parsed = parse(&sealed).unwrap();
    let key = env.key_for(&parsed.dek_id, parsed.wrapped).await.unwrap();
    let (code, body) = parsed.fields[0];
    let (nonce, ciphertext) = body.split_at(NONCE_LEN);
    let mut buf = ciphertext.to_vec();

    let opened = key.open_in_place(
        Nonce::try_assume_unique_for_key(nonce).unwrap(),
        Aad::from(aad(&contact(1), code, FORMAT_VERSION + 1)),
        &mut buf,
    );

    assert!(opened.is_err(), "the version is bound into every field's AAD");
}

#[tokio::test]
async fn truncated_or_extended_blobs_are_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let sealed = sealed_ada(&env).await;
    let mut extended = sealed.clone();
    extended.push(0);

    for blob in [&sealed[..sealed.len() - 1], &sealed[..10], extended.as_slice(), b"XYZ\x01".as_slice()] {
        let result = env.open(&contact(1), blob, None).await;
        assert!(matches!(result, Err(OpenError::Malformed)), "{:?}", result.map(|_| ()));
    }
}

#[tokio::test]
async fn a_record_sealed_before_a_key_rotation_still_opens_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), None);
    let before = sealed_ada(&envelope(keys.clone())).await;

    keys.rotate().await.unwrap();
    let after_restart = envelope(key_file(dir.path(), None));

    let (opened_email, opened) = after_restart.open(&contact(1), &before, None).await.unwrap();
    assert_eq!(opened_email, email("ada@example.org"));
    assert_eq!(opened, profile());
    assert!(wrapped_key_of(&before).unwrap().starts_with(b"KF1"));
}

#[tokio::test]
async fn reseal_after_rotation_wraps_under_the_new_key_version_and_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), None);
    let env = envelope(keys.clone());
    let before = sealed_ada(&env).await;
    let rotated_at = SystemTime::now();

    keys.rotate().await.unwrap();
    env.retire_keys_born_before(rotated_at).await;
    let after = env.reseal(&contact(1), &before).await.unwrap();

    let wrapped = wrapped_key_of(&after).unwrap();
    assert_eq!(&wrapped[..7], b"KF2\x00\x00\x00\x02");
    assert_ne!(wrapped_key_of(&before), wrapped_key_of(&after));
    let fresh = envelope(key_file(dir.path(), None));
    assert_eq!(fresh.open(&contact(1), &after, None).await.unwrap(), (email("ada@example.org"), profile()));
    assert!(matches!(env.reseal(&contact(2), &before).await, Err(OpenError::Authentication)));
}

#[tokio::test]
async fn a_data_key_serves_its_use_count_and_then_a_new_one_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let keys = key_file(dir.path(), None);
    let env = Envelope::new(keys.clone(), CacheLimits { max_age: Duration::from_secs(300), max_uses: 3 });

    let mut dek_ids = Vec::new();
    for n in 0..7 {
        let sealed = env.seal(&contact(n), &email("a@example.org"), &Profile::default()).await.unwrap();
        dek_ids.push(parse(&sealed).unwrap().dek_id);
    }

    dek_ids.dedup();
    assert_eq!(dek_ids.len(), 3, "7 seals at 3 uses per key need 3 keys");
    assert_eq!(keys.calls(), 3);
}

/// The published vectors in `docs/encryption-vectors.json`: a key file, a
/// contact ID and a sealed blob that any implementation of format version 1
/// must open to the listed plaintext.
#[tokio::test]
async fn the_documented_test_vectors_open_to_their_plaintext() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/encryption-vectors.json")).unwrap();
    for vector in vectors["vectors"].as_array().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let master = hex::decode(vector["key_file_hex"].as_str().unwrap()).unwrap();
        let env = envelope(key_file(dir.path(), Some(&master)));
        let id = ContactId::parse(vector["contact_id"].as_str().unwrap()).unwrap();
        let sealed = hex::decode(vector["sealed_hex"].as_str().unwrap()).unwrap();

        if let Some(data_key) = vector["data_key_hex"].as_str() {
            let parsed = parse(&sealed).unwrap();
            assert_eq!(hex::encode(parsed.dek_id), vector["dek_id_hex"].as_str().unwrap());
            assert_eq!(hex::encode(parsed.wrapped), vector["wrapped_key_hex"].as_str().unwrap());
            let keys = key_file(dir.path(), None);
            let unwrapped = keys.decrypt_data_key(parsed.wrapped, &context_for(&parsed.dek_id)).await.unwrap();
            assert_eq!(hex::encode(unwrapped.as_ref()), data_key);
        }

        let result = env.open(&id, &sealed, None).await;

        match vector["expect"].as_str().unwrap() {
            "opens" => {
                let (opened_email, opened) = result.unwrap();
                let plain = &vector["plaintext"];
                assert_eq!(opened_email.as_str(), plain["email"].as_str().unwrap());
                for attribute in Attribute::ALL.into_iter().skip(1) {
                    let expected = plain.get(attribute.as_str()).map(|v| match v {
                        serde_json::Value::String(s) => s.as_bytes().to_vec(),
                        other => serde_json::to_vec(other).unwrap(),
                    });
                    assert_eq!(opened.attribute_bytes(attribute), expected, "{}", attribute.as_str());
                }
            }
            "authentication_error" => assert!(matches!(result, Err(OpenError::Authentication))),
            "unsupported_version" => assert!(matches!(result, Err(OpenError::UnsupportedVersion(_)))),
            other => panic!("unknown expectation {other}"),
        }
    }
}

#[tokio::test]
async fn custom_attributes_are_sealed_under_their_code_and_opened_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let env = envelope(key_file(dir.path(), None));
    let mut with_custom = profile();
    with_custom.custom.insert(16, b"medicare".to_vec());
    with_custom.custom.insert(17, br#"["flu"]"#.to_vec());
    let sealed = env.seal(&contact(1), &email("ada@example.org"), &with_custom).await.unwrap();

    let (_, everything) = env.open(&contact(1), &sealed, None).await.unwrap();
    let (_, zip_only) = env.open(&contact(1), &sealed, Some(&[Attribute::Zip])).await.unwrap();
    let (no_email, one_custom) = env.open_where(&contact(1), &sealed, |code| code == 16).await.unwrap();

    assert_eq!(everything, with_custom);
    assert!(zip_only.custom.is_empty());
    assert_eq!(zip_only.zip.as_deref(), Some("02139"));
    assert_eq!((no_email, one_custom.custom.len()), (None, 1));
    assert!(!sealed.windows(8).any(|w| w == b"medicare"));
    // A custom field relabelled with another custom code does not open.
    let code_at = sealed.len() - (4 + 12 + 7 + 16) - 1;
    assert_eq!(sealed[code_at], 17);
    let mut relabelled = sealed.clone();
    relabelled[code_at] = 18;
    assert!(matches!(env.open(&contact(1), &relabelled, None).await, Err(OpenError::Authentication)));
}
