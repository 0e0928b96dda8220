//! Seeding DynamoDB on moto in the adapters' own item layout, with
//! `BatchWriteItem`: moto copies every table on each transaction, which
//! makes transactional upserts quadratic in the table's size.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use carepost::domain::ConsentStatus;
use carepost::ports::ContactRecord;

pub type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A contact's item, as `DynamoContactStore` writes it.
pub fn contact_item(record: &ContactRecord, now: i64) -> Item {
    HashMap::from([
        ("contact_id".to_owned(), s(record.id.to_string())),
        ("kind".to_owned(), s("contact")),
        ("email_index".to_owned(), s(record.email_index.as_str())),
        ("sealed".to_owned(), AttributeValue::B(record.sealed.clone().into())),
        ("updated_at".to_owned(), AttributeValue::N(now.to_string())),
    ])
}

/// Active consent to `category` for the contact, as `DynamoConsentStore` keeps its state.
pub fn active_consent_item(record: &ContactRecord, category: &str, now: i64) -> Item {
    HashMap::from([
        ("contact_id".to_owned(), s(record.id.to_string())),
        ("sk".to_owned(), s(format!("state#{category}"))),
        ("status".to_owned(), s(ConsentStatus::Active.as_str())),
        ("updated_at".to_owned(), AttributeValue::N(now.to_string())),
    ])
}

/// Writes `items` 25 at a time; unprocessed items (throttling) are written
/// again after a back-off of 25 ms doubling to 1 s.
pub async fn batch_write(client: &aws_sdk_dynamodb::Client, table: &str, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().expect("put request");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let mut backoff = std::time::Duration::from_millis(25);
        loop {
            let out =
                client.batch_write_item().request_items(table, requests.clone()).send().await.expect("BatchWriteItem");
            requests = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
        }
    }
}
