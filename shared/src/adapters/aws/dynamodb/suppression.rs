//! Suppression list: one item per email blind index, `email_index` (S) as
//! the key, with `reason` and `created_at`. The first reason is kept: the put
//! is conditional on the item not existing, and losing that race is success.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use super::{get_index, get_s, is_condition_failed, n, s, sdk_error, unix};
use crate::domain::BlindIndex;
use crate::ports::{StoreError, SuppressionList, SuppressionReason};

pub struct DynamoSuppressionList {
    client: Client,
    table: String,
}

impl DynamoSuppressionList {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl SuppressionList for DynamoSuppressionList {
    async fn suppress(&self, email_index: &BlindIndex, reason: SuppressionReason) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("email_index", s(email_index.as_str()))
            .item("reason", s(reason.as_str()))
            .item("created_at", n(unix(OffsetDateTime::now_utc())))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "email_index")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already suppressed: the first reason stands.
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn suppressed_among(
        &self,
        indexes: &[BlindIndex],
    ) -> Result<std::collections::HashSet<BlindIndex>, StoreError> {
        let keys = indexes
            .iter()
            .map(|i| std::collections::HashMap::from([("email_index".to_owned(), s(i.as_str()))]))
            .collect();
        let items = super::batch_get(&self.client, &self.table, keys).await?;
        items.iter().map(|item| get_index(item, "email_index")).collect()
    }

    async fn reason(&self, email_index: &BlindIndex) -> Result<Option<SuppressionReason>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("email_index", s(email_index.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item()
            .map(|item| {
                let reason = get_s(item, "reason")?;
                SuppressionReason::parse(reason)
                    .ok_or_else(|| StoreError::corrupt("suppression item has an unknown reason"))
            })
            .transpose()
    }
}
