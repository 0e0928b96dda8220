//! Audit log table: `log` (S, always `audit`: one chain) + `sk` (S, the
//! sequence number zero-padded to 20 digits, so keys sort numerically), with
//! `hash` (S) copied out for the next append's condition and `entry` (S,
//! the `AuditEntry` JSON).
//!
//! An append is one transaction: put the entry if its key is free, and
//! check that the previous entry exists with the hash the new one links to.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::chain::{Chain, Link};
use super::{Cancelled, Item, get_s, s, sdk_error, transaction_error};
use crate::domain::AuditEntry;
use crate::ports::{AuditLog, StoreError};

const CHAIN: &str = "audit";

fn key(seq: u64) -> String {
    format!("{seq:020}")
}

fn moved() -> StoreError {
    StoreError::conflict("the audit log moved on; chain again")
}

pub struct DynamoAuditLog {
    client: Client,
    table: String,
}

impl DynamoAuditLog {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn query(&self, after: Option<u64>, forward: bool, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#pk", "log")
            .expression_attribute_values(":pk", s(CHAIN))
            .scan_index_forward(forward)
            // A page no larger than asked for: without it DynamoDB reads (and
            // bills) up to 1 MB of the log to answer "the newest entry".
            .limit(i32::try_from(limit.clamp(1, 1_000)).unwrap_or(1_000))
            .consistent_read(true);
        request = match after {
            Some(after) => request
                .key_condition_expression("#pk = :pk AND #sk > :after")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":after", s(key(after))),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let mut pages = request.into_paginator().items().send();
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(item) = pages.try_next().await.map_err(|e| sdk_error("Query", e))? else { break };
            let entry = serde_json::from_str(get_s(&item, "entry")?)
                .map_err(|e| StoreError::corrupt_from("audit item holds an invalid entry", e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

#[async_trait]
impl AuditLog for DynamoAuditLog {
    async fn append(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let chain = Chain { table: &self.table, partition_name: "log", partition: CHAIN.to_owned(), sort_key: key };
        let json = serde_json::to_string(entry).expect("entry serializes");
        let link = Link {
            seq: entry.seq,
            hash: &entry.hash,
            prev_hash: &entry.prev_hash,
            attributes: Item::from([("entry".to_owned(), s(json))]),
        };
        let Some(items) = chain.append_items(link)? else { return Err(moved()) };
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => match transaction_error("TransactWriteItems", e)? {
                Cancelled::Conditions(_) | Cancelled::Contended => Err(moved()),
            },
        }
    }

    async fn last(&self) -> Result<Option<AuditEntry>, StoreError> {
        Ok(self.query(None, false, 1).await?.into_iter().next())
    }

    async fn entries(&self, after: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.query(Some(after), true, limit).await
    }
}
