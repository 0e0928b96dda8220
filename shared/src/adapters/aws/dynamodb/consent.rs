//! Consent table: `contact_id` (S) + `sk` (S). Per contact:
//! * `entry#{seq:010}`: one ledger entry, `entry` (S, the `ConsentEntry`
//!   JSON), with `seq` (N) and `hash` (S) copied out for conditions;
//! * `state#{category}`: the current `status` (S), `updated_at` (N) and, when
//!   set, `expires_at` (N).
//!
//! An append is one transaction: put the entry if its sequence number is
//! free, check that the previous entry exists and carries the hash the new
//! entry links to, and set the state of each of its categories.

use std::collections::BTreeSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::chain::{Chain, Link};
use super::{Bindings, query_all};
use super::{Cancelled, Item, built, get_s, get_time, json_corrupt, n, opt_n, s, sdk_error, transaction_error, unix};
use crate::domain::{ConsentCategory, ConsentEntry, ConsentGrant, ConsentStatus, ContactId};
use crate::ports::{ConsentStore, StoreError};

const ENTRY_PREFIX: &str = "entry#";
const STATE_PREFIX: &str = "state#";

fn entry_key(seq: u64) -> String {
    format!("{ENTRY_PREFIX}{seq:010}")
}

fn decode(item: &Item) -> Result<ConsentEntry, StoreError> {
    serde_json::from_str(get_s(item, "entry")?).map_err(|e| json_corrupt("consent entry", e))
}

/// A `state#{category}` item as a grant.
fn grant(item: &Item) -> Result<ConsentGrant, StoreError> {
    let category = get_s(item, "sk")?.trim_start_matches(STATE_PREFIX);
    Ok(ConsentGrant {
        category: ConsentCategory::parse(category)
            .map_err(|e| StoreError::corrupt_from("consent state item has an invalid category", e))?,
        status: ConsentStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| StoreError::corrupt("consent state item has an unknown status"))?,
        updated_at: get_time(item, "updated_at")?,
        expires_at: opt_n(item, "expires_at")?.map(super::from_unix).transpose()?,
    })
}

fn head_moved() -> StoreError {
    StoreError::conflict("consent ledger head moved")
}

pub struct DynamoConsentStore {
    client: Client,
    table: String,
}

impl DynamoConsentStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// A contact's items whose sort key starts with `prefix`; newest first if `descending`.
    async fn query_prefix(
        &self,
        contact: &ContactId,
        prefix: &str,
        descending: bool,
        limit: Option<i32>,
    ) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .names(&[("#pk", "contact_id"), ("#sk", "sk")])
            .values([(":pk", s(contact.to_string())), (":prefix", s(prefix))])
            .scan_index_forward(!descending)
            .consistent_read(true);
        match limit {
            // One page is enough.
            Some(limit) => {
                let out = query.limit(limit).send().await.map_err(|e| sdk_error("Query", e))?;
                Ok(out.items.unwrap_or_default())
            }
            None => query_all(query).await,
        }
    }
}

#[async_trait]
impl ConsentStore for DynamoConsentStore {
    async fn head(&self, contact: &ContactId) -> Result<Option<ConsentEntry>, StoreError> {
        self.query_prefix(contact, ENTRY_PREFIX, true, Some(1)).await?.first().map(decode).transpose()
    }

    async fn append(&self, entry: &ConsentEntry, new_status: ConsentStatus) -> Result<(), StoreError> {
        let contact = entry.evidence.contact_id.to_string();
        let chain =
            Chain { table: &self.table, partition_name: "contact_id", partition: contact.clone(), sort_key: entry_key };
        let json = serde_json::to_string(entry).expect("entry serializes");
        let link = Link {
            seq: entry.seq,
            hash: &entry.hash,
            prev_hash: &entry.prev_hash,
            attributes: Item::from([("entry".to_owned(), s(json)), ("seq".to_owned(), n(entry.seq))]),
        };
        let Some(mut items) = chain.append_items(link)? else { return Err(head_moved()) };
        let categories: BTreeSet<&ConsentCategory> = entry.evidence.categories.iter().collect();
        for category in categories {
            items.push(
                TransactWriteItem::builder()
                    .update(built(
                        "Update",
                        {
                            let update = Update::builder()
                                .table_name(&self.table)
                                .key("contact_id", s(contact.clone()))
                                .key("sk", s(format!("{STATE_PREFIX}{}", category.as_str())))
                                .names(&[
                                    ("#category", "category"),
                                    ("#status", "status"),
                                    ("#updated", "updated_at"),
                                    ("#expires", "expires_at"),
                                ])
                                .values([(":category", s(category.as_str())), (":status", s(new_status.as_str()))])
                                .expression_attribute_values(":updated", n(unix(entry.evidence.at)));
                            // The state's expiry is the entry's: set, or cleared.
                            match entry.evidence.expires_at {
                                Some(expires) => update
                                    .update_expression(
                                        "SET #category = :category, #status = :status, #updated = :updated, \
                                         #expires = :expires",
                                    )
                                    .expression_attribute_values(":expires", n(unix(expires))),
                                None => update.update_expression(
                                    "SET #category = :category, #status = :status, #updated = :updated REMOVE #expires",
                                ),
                            }
                        }
                        .build(),
                    )?)
                    .build(),
            );
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(()),
            Err(e) => match transaction_error("TransactWriteItems", e)? {
                Cancelled::Conditions(_) | Cancelled::Contended => Err(head_moved()),
            },
        }
    }

    async fn grants(&self, contact: &ContactId) -> Result<Vec<ConsentGrant>, StoreError> {
        self.query_prefix(contact, STATE_PREFIX, false, None).await?.iter().map(grant).collect()
    }

    /// One `BatchGetItem` per 100 (contact, category) state items.
    async fn grants_of(
        &self,
        contacts: &[ContactId],
        categories: &[ConsentCategory],
    ) -> Result<std::collections::HashMap<ContactId, Vec<ConsentGrant>>, StoreError> {
        let keys = contacts
            .iter()
            .flat_map(|c| {
                categories.iter().map(move |category| {
                    std::collections::HashMap::from([
                        ("contact_id".to_owned(), s(c.to_string())),
                        ("sk".to_owned(), s(format!("{STATE_PREFIX}{}", category.as_str()))),
                    ])
                })
            })
            .collect();
        let mut out: std::collections::HashMap<ContactId, Vec<ConsentGrant>> = std::collections::HashMap::new();
        for item in super::batch_get(&self.client, &self.table, keys).await? {
            let contact = ContactId::parse(get_s(&item, "contact_id")?)
                .map_err(|e| StoreError::corrupt_from("consent state item has an invalid contact id", e))?;
            out.entry(contact).or_default().push(grant(&item)?);
        }
        Ok(out)
    }

    async fn history(&self, contact: &ContactId) -> Result<Vec<ConsentEntry>, StoreError> {
        self.query_prefix(contact, ENTRY_PREFIX, false, None).await?.iter().map(decode).collect()
    }
}
