//! `SecretStore`: small named secrets, first writer wins.

use carepost::ports::SecretStore;

use super::support::unique;

pub async fn secret_store_contract(secrets: &dyn SecretStore) {
    put_if_absent_stores_a_new_secret(secrets).await;
    put_if_absent_keeps_the_first_value(secrets).await;
    an_unknown_secret_is_none(secrets).await;
    secrets_are_kept_per_name(secrets).await;
}

pub async fn put_if_absent_stores_a_new_secret(secrets: &dyn SecretStore) {
    let name = unique("root");

    let stored = secrets.put_if_absent(&name, b"first").await.unwrap();

    assert_eq!(stored, b"first");
    assert_eq!(secrets.get(&name).await.unwrap(), Some(b"first".to_vec()));
}

pub async fn put_if_absent_keeps_the_first_value(secrets: &dyn SecretStore) {
    let name = unique("root");
    secrets.put_if_absent(&name, b"first").await.unwrap();

    // A second process racing to initialise gets the winner's value back.
    let stored = secrets.put_if_absent(&name, b"second").await.unwrap();

    assert_eq!(stored, b"first");
    assert_eq!(secrets.get(&name).await.unwrap(), Some(b"first".to_vec()));
}

pub async fn an_unknown_secret_is_none(secrets: &dyn SecretStore) {
    assert_eq!(secrets.get(&unique("root")).await.unwrap(), None);
}

pub async fn secrets_are_kept_per_name(secrets: &dyn SecretStore) {
    let (a, b) = (unique("root"), unique("root"));

    secrets.put_if_absent(&a, &[0u8, 1, 2, 255]).await.unwrap();
    secrets.put_if_absent(&b, &[9u8; 64]).await.unwrap();

    assert_eq!(secrets.get(&a).await.unwrap(), Some(vec![0u8, 1, 2, 255]));
    assert_eq!(secrets.get(&b).await.unwrap(), Some(vec![9u8; 64]));
}

mod embedded {
    use carepost::adapters::embedded::SqliteSecretStore;
    use carepost::ports::SecretStore;

    use super::super::support::{Scratch, scratch, unique};

    fn store() -> (Scratch, SqliteSecretStore) {
        let s = scratch();
        let store = SqliteSecretStore::new(s.db.clone());
        (s, store)
    }

    #[tokio::test]
    async fn put_if_absent_stores_a_new_secret() {
        let (_s, store) = store();
        super::put_if_absent_stores_a_new_secret(&store).await;
    }

    #[tokio::test]
    async fn put_if_absent_keeps_the_first_value() {
        let (_s, store) = store();
        super::put_if_absent_keeps_the_first_value(&store).await;
    }

    #[tokio::test]
    async fn an_unknown_secret_is_none() {
        let (_s, store) = store();
        super::an_unknown_secret_is_none(&store).await;
    }

    #[tokio::test]
    async fn secrets_are_kept_per_name() {
        let (_s, store) = store();
        super::secrets_are_kept_per_name(&store).await;
    }

    #[tokio::test]
    async fn the_whole_contract_passes_on_one_shared_store() {
        let (_s, store) = store();
        super::secret_store_contract(&store).await;
    }

    #[tokio::test]
    async fn a_secret_survives_reopening_the_database() {
        let (s, store) = store();
        let name = unique("root");
        store.put_if_absent(&name, b"kept").await.unwrap();

        let reopened = SqliteSecretStore::new(s.reopen());

        assert_eq!(reopened.get(&name).await.unwrap(), Some(b"kept".to_vec()));
    }
}
