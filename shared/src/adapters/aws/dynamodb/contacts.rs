//! Contacts table: `contact_id` (S) as the key. Two kinds of item:
//! * contacts (`kind = "contact"`): `external_id` (S, optional),
//!   `email_index` (S), `sealed` (B), `updated_at` (N); indexed by
//!   `by_email_index` and `by_external_id`;
//! * uniqueness guards (`kind = "guard"`) keyed `email#<index>` and
//!   `ext#<external id>`, with `owner` = the contact's ID.
//!
//! A put writes the contact and its guards in one transaction, each guard
//! conditional on being absent or already ours, and deletes the guards its
//! previous version held and this one no longer does. The contact itself is
//! conditional on the version read first (its email index and external ID),
//! so two concurrent puts of one contact cannot leak a guard.
//!
//! Lookups by email index or external ID read the guard, then the contact,
//! both strongly consistent: a contact is found the moment its put returns,
//! and not under a key it has just given up (an index query could lag).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::Bindings;
use super::{
    Cancelled, Item, b, built, conditional, get_b, get_index, get_s, get_time, n, opt_s, s, sdk_error,
    transaction_error, unix,
};
use crate::domain::{BlindIndex, ContactId, ExternalId};
use crate::ports::{ContactRecord, ContactStore, ScanPage, ShardSpec, StoreError};

/// The indexes on the contacts table (created by `schema`; lookups use the guards).
pub(crate) const BY_EMAIL_INDEX: &str = "by_email_index";
pub(crate) const BY_EXTERNAL_ID: &str = "by_external_id";

const CONTACT: &str = "contact";
const GUARD: &str = "guard";
/// How often a put re-reads and retries when the same contact changed under it.
const PUT_ATTEMPTS: usize = 4;

fn email_guard(email_index: &BlindIndex) -> String {
    format!("email#{}", email_index.as_str())
}

fn external_guard(external_id: &ExternalId) -> String {
    format!("ext#{}", external_id.as_str())
}

fn corrupt_id(what: &str, e: impl Into<crate::ports::BoxError>) -> StoreError {
    StoreError::corrupt_from(format!("contact item has an invalid {what}"), e)
}

fn record(item: &Item) -> Result<ContactRecord, StoreError> {
    if get_s(item, "kind")? != CONTACT {
        return Err(StoreError::corrupt("expected a contact item, found another kind"));
    }
    Ok(ContactRecord {
        id: ContactId::parse(get_s(item, "contact_id")?).map_err(|e| corrupt_id("contact id", e))?,
        external_id: opt_s(item, "external_id")?
            .map(ExternalId::parse)
            .transpose()
            .map_err(|e| corrupt_id("external id", e))?,
        email_index: get_index(item, "email_index")?,
        sealed: get_b(item, "sealed")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

pub struct DynamoContactStore {
    client: Client,
    table: String,
}

impl DynamoContactStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    async fn read(&self, key: String) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("contact_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// The contact owning the guard `guard`, if it still holds that key.
    async fn find_by_guard(
        &self,
        guard: String,
        holds: impl Fn(&ContactRecord) -> bool + Send,
    ) -> Result<Option<ContactRecord>, StoreError> {
        let Some(guard_item) = self.read(guard).await? else { return Ok(None) };
        let owner = get_s(&guard_item, "owner")?.to_owned();
        let Some(item) = self.read(owner).await? else { return Ok(None) };
        let found = record(&item)?;
        Ok(holds(&found).then_some(found))
    }

    fn guard_put(&self, key: String, owner: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("contact_id", s(key))
            .item("kind", s(GUARD))
            .item("owner", s(owner))
            .condition_expression("attribute_not_exists(#pk) OR #owner = :id")
            .names(&[("#pk", "contact_id"), ("#owner", "owner")])
            .expression_attribute_values(":id", s(owner))
            .build();
        Ok(TransactWriteItem::builder().put(built("Put", put)?).build())
    }

    fn guard_delete(&self, key: String, owner: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("contact_id", s(key))
            .condition_expression("attribute_not_exists(#pk) OR #owner = :id")
            .names(&[("#pk", "contact_id"), ("#owner", "owner")])
            .expression_attribute_values(":id", s(owner))
            .build();
        Ok(TransactWriteItem::builder().delete(built("Delete", delete)?).build())
    }

    /// The contact item, conditional on the stored version being `old`.
    fn contact_put(&self, r: &ContactRecord, old: Option<&ContactRecord>) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("contact_id", s(r.id.to_string()))
            .item("kind", s(CONTACT))
            .item("email_index", s(r.email_index.as_str()))
            .item("sealed", b(r.sealed.clone()))
            .item("updated_at", n(unix(r.updated_at)))
            .expression_attribute_names("#pk", "contact_id");
        if let Some(external) = &r.external_id {
            put = put.item("external_id", s(external.as_str()));
        }
        put = match old {
            None => put.condition_expression("attribute_not_exists(#pk)"),
            Some(old) => {
                let put = put
                    .names(&[("#email", "email_index"), ("#ext", "external_id")])
                    .expression_attribute_values(":old_email", s(old.email_index.as_str()));
                match &old.external_id {
                    Some(ext) => put
                        .condition_expression("attribute_exists(#pk) AND #email = :old_email AND #ext = :old_ext")
                        .expression_attribute_values(":old_ext", s(ext.as_str())),
                    None => put.condition_expression(
                        "attribute_exists(#pk) AND #email = :old_email AND attribute_not_exists(#ext)",
                    ),
                }
            }
        };
        Ok(TransactWriteItem::builder().put(built("Put", put.build())?).build())
    }

    /// One optimistic attempt; `Ok(false)` if the contact changed since it was read.
    async fn try_put(&self, r: &ContactRecord) -> Result<bool, StoreError> {
        let id = r.id.to_string();
        let old = self.read(id.clone()).await?.map(|item| record(&item)).transpose()?;
        let mut items = vec![self.contact_put(r, old.as_ref())?, self.guard_put(email_guard(&r.email_index), &id)?];
        if let Some(external) = &r.external_id {
            items.push(self.guard_put(external_guard(external), &id)?);
        }
        if let Some(old) = &old {
            if old.email_index != r.email_index {
                items.push(self.guard_delete(email_guard(&old.email_index), &id)?);
            }
            if let Some(old_external) = &old.external_id
                && r.external_id.as_ref() != Some(old_external)
            {
                items.push(self.guard_delete(external_guard(old_external), &id)?);
            }
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) => match transaction_error("TransactWriteItems", e)? {
                // Only the contact's own condition failed: it changed under us.
                Cancelled::Conditions(failed) if failed == [0] => Ok(false),
                Cancelled::Conditions(_) => {
                    Err(StoreError::conflict("another contact holds this email or external id"))
                }
                Cancelled::Contended => Ok(false),
            },
        }
    }
}

#[async_trait]
impl ContactStore for DynamoContactStore {
    async fn put(&self, r: &ContactRecord) -> Result<(), StoreError> {
        for _ in 0..PUT_ATTEMPTS {
            if self.try_put(r).await? {
                return Ok(());
            }
        }
        Err(StoreError::conflict("the contact kept changing during the put"))
    }

    async fn get(&self, id: &ContactId) -> Result<Option<ContactRecord>, StoreError> {
        self.read(id.to_string()).await?.map(|item| record(&item)).transpose()
    }

    async fn find_by_email_index(&self, email_index: &BlindIndex) -> Result<Option<ContactRecord>, StoreError> {
        self.find_by_guard(email_guard(email_index), |r| &r.email_index == email_index).await
    }

    async fn find_by_external_id(&self, external_id: &ExternalId) -> Result<Option<ContactRecord>, StoreError> {
        self.find_by_guard(external_guard(external_id), |r| r.external_id.as_ref() == Some(external_id)).await
    }

    async fn delete(&self, id: &ContactId) -> Result<bool, StoreError> {
        let key = id.to_string();
        let Some(item) = self.read(key.clone()).await? else { return Ok(false) };
        let old = record(&item)?;
        let contact = Delete::builder()
            .table_name(&self.table)
            .key("contact_id", s(key.clone()))
            .condition_expression("#email = :email")
            .expression_attribute_names("#email", "email_index")
            .expression_attribute_values(":email", s(old.email_index.as_str()))
            .build();
        let mut items = vec![
            TransactWriteItem::builder().delete(built("Delete", contact)?).build(),
            self.guard_delete(email_guard(&old.email_index), &key)?,
        ];
        if let Some(external) = &old.external_id {
            items.push(self.guard_delete(external_guard(external), &key)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(true),
            Err(e) => match transaction_error("TransactWriteItems", e)? {
                Cancelled::Conditions(_) | Cancelled::Contended => {
                    Err(StoreError::conflict("the contact changed during its erasure; try again"))
                }
            },
        }
    }

    async fn replace_sealed(&self, id: &ContactId, expected: &[u8], sealed: &[u8]) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("contact_id", s(id.to_string()))
            .update_expression("SET #sealed = :new")
            .condition_expression("#kind = :contact AND #sealed = :old")
            .names(&[("#sealed", "sealed"), ("#kind", "kind")])
            .values([(":new", b(sealed.to_vec())), (":old", b(expected.to_vec())), (":contact", s(CONTACT))])
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    /// A DynamoDB parallel-scan segment; the cursor is the last evaluated key
    /// (a `contact_id`, possibly a guard's). Guards count towards `limit` as
    /// DynamoDB evaluates them, so a page may hold fewer contacts than `limit`.
    async fn scan_shard(&self, shard: ShardSpec, cursor: Option<&str>, limit: usize) -> Result<ScanPage, StoreError> {
        let start = cursor
            .filter(|c| !c.is_empty())
            .map(|c| std::collections::HashMap::from([("contact_id".to_owned(), s(c))]));
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(i32::from(shard.index))
            .total_segments(i32::from(shard.total.max(1)))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .filter_expression("#kind = :contact")
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_values(":contact", s(CONTACT))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("Scan", e))?;
        let records = out.items().iter().map(record).collect::<Result<Vec<_>, _>>()?;
        let next = match out.last_evaluated_key().and_then(|k| k.get("contact_id")) {
            Some(AttributeValue::S(key)) => Some(key.clone()),
            Some(_) => return Err(StoreError::corrupt("scan returned a non-string key")),
            None => None,
        };
        Ok(ScanPage { records, next })
    }
}
