//! Table definitions, for tests and local setup (the SAM template declares
//! the same tables in AWS). Every table is on-demand (`PAY_PER_REQUEST`).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};

use super::campaigns::{CREATED_KEY, LIST_KEY, NEWEST_INDEX};
use super::contacts::{BY_EMAIL_INDEX, BY_EXTERNAL_ID};
use super::journeys;
use super::ledger::BY_PROVIDER_MESSAGE_ID;
use super::{TableNames, built, sdk_error};
use crate::ports::StoreError;

/// How long to wait for a new table to become active.
const ACTIVE_WAIT: Duration = Duration::from_secs(120);

struct TableSpec<'a> {
    name: &'a str,
    hash: &'a str,
    range: Option<&'a str>,
    /// (index name, hash key, range key, projection)
    indexes: &'a [(&'a str, &'a str, Option<&'a str>, ProjectionType)],
}

/// Creates the eight tables (skipping any that already exist) and waits until they are active.
pub async fn create_tables(client: &Client, names: &TableNames) -> Result<(), StoreError> {
    let specs = [
        TableSpec {
            name: &names.contacts,
            hash: "contact_id",
            range: None,
            indexes: &[
                (BY_EMAIL_INDEX, "email_index", None, ProjectionType::KeysOnly),
                (BY_EXTERNAL_ID, "external_id", None, ProjectionType::KeysOnly),
            ],
        },
        TableSpec { name: &names.consent, hash: "contact_id", range: Some("sk"), indexes: &[] },
        TableSpec { name: &names.suppression, hash: "email_index", range: None, indexes: &[] },
        TableSpec {
            name: &names.campaigns,
            hash: "campaign_id",
            range: Some("sk"),
            indexes: &[(NEWEST_INDEX, LIST_KEY, Some(CREATED_KEY), ProjectionType::All)],
        },
        TableSpec { name: &names.audit_log, hash: "log", range: Some("sk"), indexes: &[] },
        TableSpec { name: &names.activity, hash: "contact_id", range: None, indexes: &[] },
        TableSpec {
            name: &names.send_ledger,
            hash: "campaign_id",
            range: Some("contact_id"),
            indexes: &[(BY_PROVIDER_MESSAGE_ID, "provider_message_id", None, ProjectionType::KeysOnly)],
        },
        TableSpec {
            name: &names.journeys,
            hash: "journey_id",
            range: Some("sk"),
            indexes: &[
                (journeys::OLDEST_INDEX, journeys::LIST_KEY, Some(journeys::CREATED_KEY), ProjectionType::All),
                (journeys::DUE_INDEX, journeys::DUE_SHARD, Some(journeys::DUE_KEY), ProjectionType::All),
            ],
        },
    ];
    for spec in &specs {
        create_table(client, spec).await?;
    }
    for spec in &specs {
        client
            .wait_until_table_exists()
            .table_name(spec.name)
            .wait(ACTIVE_WAIT)
            .await
            .map_err(|e| StoreError::unavailable(format!("table {} did not become active", spec.name), e))?;
    }
    Ok(())
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    built("KeySchemaElement", KeySchemaElement::builder().attribute_name(name).key_type(key_type).build())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    built(
        "AttributeDefinition",
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build(),
    )
}

async fn create_table(client: &Client, spec: &TableSpec<'_>) -> Result<(), StoreError> {
    let mut attributes = vec![spec.hash];
    let mut request = client
        .create_table()
        .table_name(spec.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        attributes.push(range);
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for (index, hash, range, projection) in spec.indexes {
        attributes.push(hash);
        let mut gsi = GlobalSecondaryIndex::builder().index_name(*index).key_schema(key(hash, KeyType::Hash)?);
        if let Some(range) = range {
            attributes.push(range);
            gsi = gsi.key_schema(key(range, KeyType::Range)?);
        }
        let gsi = gsi.projection(Projection::builder().projection_type(projection.clone()).build()).build();
        request = request.global_secondary_indexes(built("GlobalSecondaryIndex", gsi)?);
    }
    for attribute in attributes {
        request = request.attribute_definitions(string_attribute(attribute)?);
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(e) => Err(sdk_error("CreateTable", e)),
    }
}
