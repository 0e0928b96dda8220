//! Counts every AWS request a client transmits, by service and operation,
//! with an SDK interceptor (what the wire sees, retries included), and
//! derives DynamoDB's request units from the request and response bodies.
//!
//! Attach one `AwsCalls` to every client (`attach`), run the work, then take
//! a `snapshot`: the counts are shared by clones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::Value;

use crate::dynamodb_units::{read_units, write_units};

/// What one operation cost: requests transmitted and, for DynamoDB, the
/// request units derived from the items they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub requests: u64,
    pub write_units: f64,
    pub read_units: f64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.write_units += other.write_units;
        self.read_units += other.read_units;
    }
}

/// (service, operation), e.g. ("DynamoDB", "PutItem").
pub type Operation = (String, String);

#[derive(Debug, Clone, Default)]
pub struct AwsCalls(Arc<Mutex<BTreeMap<Operation, Tally>>>);

/// The request body and the operation's label, kept from transmit to
/// response for the read units.
#[derive(Debug, Clone)]
struct SentBody(Value, String);

impl Storable for SentBody {
    type Storer = StoreReplace<Self>;
}

impl AwsCalls {
    pub fn snapshot(&self) -> BTreeMap<Operation, Tally> {
        self.0.lock().expect("counter lock").clone()
    }

    /// Forgets what was counted (work done before the part being measured).
    pub fn reset(&self) {
        self.0.lock().expect("counter lock").clear();
    }

    /// Counts one request by hand: calls made by AWS services on the
    /// account's behalf (SNS delivering to SQS, the event source mapping
    /// receiving and deleting), which no client of ours transmits.
    pub fn record(&self, service: &str, operation: &str, tally: Tally) {
        let mut counts = self.0.lock().expect("counter lock");
        counts.entry((service.to_owned(), operation.to_owned())).or_default().add(tally);
    }

    fn operation(cfg: &ConfigBag) -> Operation {
        match cfg.load::<Metadata>() {
            Some(m) => (m.service().to_owned(), m.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        }
    }
}

impl Intercept for AwsCalls {
    fn name(&self) -> &'static str {
        "AwsCalls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = Self::operation(cfg);
        let body: Value = json_body(context.request().body().bytes());
        let (label, write_units) = match service.as_str() {
            "DynamoDB" => (format!("{operation} {}", tables(&body)), write_units(&operation, &body)),
            _ => (operation.clone(), 0.0),
        };
        self.record(&service, &label, Tally { requests: 1, write_units, read_units: 0.0 });
        cfg.interceptor_state().store_put(SentBody(body, label));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = Self::operation(cfg);
        if service != "DynamoDB" || !context.response().status().is_success() {
            return Ok(());
        }
        let response: Value = json_body(context.response().body().bytes());
        let Some(SentBody(request, label)) = cfg.load::<SentBody>().cloned() else {
            return Ok(());
        };
        let read_units = read_units(&operation, &request, &response);
        self.record(&service, &label, Tally { requests: 0, write_units: 0.0, read_units });
        Ok(())
    }
}

/// The tables a DynamoDB request names, without the stack's prefix
/// (`t1a2b-contacts` is `contacts`), joined by `+`.
pub fn tables(body: &Value) -> String {
    let transacted = body["TransactItems"].as_array().into_iter().flatten();
    let mut names: Vec<&str> = body["TableName"]
        .as_str()
        .into_iter()
        .chain(body["RequestItems"].as_object().into_iter().flat_map(|m| m.keys().map(String::as_str)))
        .chain(transacted.filter_map(|e| e.as_object()?.values().next()?["TableName"].as_str()))
        .map(|name| name.split_once('-').map_or(name, |(_, bare)| bare))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join("+")
}

/// A request's or response's JSON body (`Null` when it has none, or is not JSON).
pub fn json_body(bytes: Option<&[u8]>) -> Value {
    bytes.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or(Value::Null)
}

/// The same clients, each with `calls` attached.
pub fn attach(clients: carepost::runtime::aws::AwsClients, calls: &AwsCalls) -> carepost::runtime::aws::AwsClients {
    carepost::runtime::aws::AwsClients {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(
            clients.dynamodb.config().to_builder().interceptor(calls.clone()).build(),
        ),
        kms: aws_sdk_kms::Client::from_conf(clients.kms.config().to_builder().interceptor(calls.clone()).build()),
        sqs: aws_sdk_sqs::Client::from_conf(clients.sqs.config().to_builder().interceptor(calls.clone()).build()),
        sesv2: aws_sdk_sesv2::Client::from_conf(clients.sesv2.config().to_builder().interceptor(calls.clone()).build()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_request_is_labelled_with_its_tables_without_the_prefix() {
        let one = json!({"TableName": "t1a2b-contacts"});
        let batch = json!({"RequestItems": {"t1a2b-consent": [], "t1a2b-contacts": []}});
        let transaction = json!({"TransactItems": [
            {"Put": {"TableName": "t1a2b-audit-log"}}, {"Update": {"TableName": "t1a2b-audit-log"}}
        ]});

        assert_eq!(super::tables(&one), "contacts");
        assert_eq!(super::tables(&batch), "consent+contacts");
        assert_eq!(super::tables(&transaction), "audit-log");
    }
}
