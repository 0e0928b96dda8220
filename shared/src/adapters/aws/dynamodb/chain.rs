//! Appending to a hash chain kept in a table (the audit log, each contact's
//! consent ledger): one transaction that puts the new link if its key is
//! free and checks that the previous link exists with the hash the new one
//! names. Both chains share this so the rule is written once.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};

use super::{Item, StoreError, built, s};
use crate::domain::GENESIS_HASH;

/// Where a chain lives: its partition key and how a sequence number becomes a sort key.
pub(crate) struct Chain<'a> {
    pub table: &'a str,
    pub partition_name: &'static str,
    pub partition: String,
    pub sort_key: fn(u64) -> String,
}

/// A new link: its sequence number, its hash, the hash it links to, and
/// the item's other attributes.
pub(crate) struct Link<'a> {
    pub seq: u64,
    pub hash: &'a str,
    pub prev_hash: &'a str,
    pub attributes: Item,
}

impl Chain<'_> {
    /// The transaction items that append `link`, or `None` when the link
    /// cannot follow any head (sequence 0, or a first link that does not
    /// start from the genesis hash): the caller reports that as the head
    /// having moved.
    pub(crate) fn append_items(&self, link: Link<'_>) -> Result<Option<Vec<TransactWriteItem>>, StoreError> {
        if link.seq == 0 || (link.seq == 1 && link.prev_hash != GENESIS_HASH) {
            return Ok(None);
        }
        let put = Put::builder()
            .table_name(self.table)
            .set_item(Some(link.attributes))
            .item(self.partition_name, s(self.partition.clone()))
            .item("sk", s((self.sort_key)(link.seq)))
            .item("hash", s(link.hash))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", self.partition_name)
            .build();
        let mut items = vec![TransactWriteItem::builder().put(built("Put", put)?).build()];
        if link.seq > 1 {
            let check = ConditionCheck::builder()
                .table_name(self.table)
                .key(self.partition_name, s(self.partition.clone()))
                .key("sk", s((self.sort_key)(link.seq - 1)))
                .condition_expression("#hash = :prev")
                .expression_attribute_names("#hash", "hash")
                .expression_attribute_values(":prev", s(link.prev_hash))
                .build();
            items.push(TransactWriteItem::builder().condition_check(built("ConditionCheck", check)?).build());
        }
        Ok(Some(items))
    }
}
