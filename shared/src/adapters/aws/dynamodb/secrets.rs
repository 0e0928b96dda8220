//! Small named secrets, kept in the campaigns table under
//! `campaign_id = "secret#<name>"`, `sk = "secret"`, the value in `value` (B).
//! First writer wins: the put is conditional on the item not existing.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::{Item, b, get_b, is_condition_failed, s, sdk_error};
use crate::ports::{SecretStore, StoreError};

pub struct DynamoSecretStore {
    client: Client,
    /// The campaigns table.
    table: String,
}

impl DynamoSecretStore {
    pub fn new(client: Client, campaigns_table: String) -> Self {
        Self { client, table: campaigns_table }
    }

    async fn read(&self, name: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("campaign_id", s(format!("secret#{name}")))
            .key("sk", s("secret"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }
}

#[async_trait]
impl SecretStore for DynamoSecretStore {
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(name).await?.map(|item| get_b(&item, "value")).transpose()
    }

    async fn put_if_absent(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("campaign_id", s(format!("secret#{name}")))
            .item("sk", s("secret"))
            .item("value", b(value))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "campaign_id")
            .send()
            .await;
        match result {
            Ok(_) => Ok(value.to_vec()),
            // Another process initialised it first: theirs is the value.
            Err(e) if is_condition_failed(&e) => match self.get(name).await? {
                Some(stored) => Ok(stored),
                None => Err(StoreError::unavailable_msg("secret vanished after a lost conditional put")),
            },
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}
