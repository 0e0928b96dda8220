//! Journeys table: `journey_id` (S) + `sk` (S). Per journey:
//! * `head`: `version` (N, the latest), `definition` (S, the latest
//!   version's), `status` (S), `created_at` (N); `list` (S, always
//!   `journeys`) and `created_key` (S, `{created_at:012}#{journey_id}`) key
//!   the sparse index `oldest` that lists journeys oldest first;
//! * `v#{version:06}`: `definition` (S), one per version, never rewritten;
//! * `c#{contact_id}`: one contact's enrolment: `contact_id`, `version`,
//!   `entered_at`, `step`, `arrived_at`, `sent` (S, `step@unix,…`), `path`
//!   (S, the steps reached, comma-separated; absent on older items),
//!   `revision` (N), and either `due_at` (N) with `due_shard` (S, `0`–`7`)
//!   and `due_key` (S, `{due_at:012}#{journey_id}#{contact_id}`), which key
//!   the sparse index `due` the timer sweep reads, or, once exited,
//!   `exit_reason` (S) and `exited_at` (N), and no index keys.
//!
//! * `entry`: the entry scan (`scan`, S, as `EntryScan::to_text` writes it,
//!   and `scan_revision`, N) and `entered` (N), how many contacts entered,
//!   for the journey's cap.
//!
//! A contact's journey events sit apart, in their own partition
//! `events#{contact_id}`: one item per event, `sk` `{at:012}#{name}`,
//! with `name` (S) and `at` (N); a retried event writes the same item.
//!
//! The due index is spread over eight shards (the contact ID's last hex
//! digit) so a burst of entries at one second does not land on one
//! partition; the sweep reads every shard's earliest rows and merges them.
//!
//! Same semantics as the SQLite store: a new journey and each new version
//! are one transaction (head + version item, both conditional); entering
//! and advancing are single-item updates conditional on the row read
//! (absent, exited early enough, or the revision read).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use time::OffsetDateTime;

use super::{Bindings, query_all};
use super::{
    Cancelled, Item, built, conditional, from_unix, get_n, get_s, get_time, n, opt_n, opt_s, s, sdk_error,
    transaction_error, transition_status, unix,
};
use crate::domain::journey::walk::{ExitReason, Position};
use crate::domain::journey::{EventName, StepId};
use crate::domain::{ContactId, JourneyId};
use crate::ports::{
    Enrolment, EntryScan, JourneyRecord, JourneyStatus, JourneyStore, Standing, StoreError, path_from_text,
    path_to_text, sent_from_text, sent_to_text,
};

const HEAD: &str = "head";
const VERSION_PREFIX: &str = "v#";
const CONTACT_PREFIX: &str = "c#";
const ENTRY: &str = "entry";
/// The partition of one contact's events: `events#{contact_id}`.
const EVENTS_PARTITION: &str = "events#";
/// The index of journeys by creation, its keys and the one list it holds.
pub(super) const OLDEST_INDEX: &str = "oldest";
pub(super) const LIST_KEY: &str = "list";
pub(super) const CREATED_KEY: &str = "created_key";
const LIST: &str = "journeys";
/// The index of active enrolments by due time, and its keys.
pub(super) const DUE_INDEX: &str = "due";
pub(super) const DUE_SHARD: &str = "due_shard";
pub(super) const DUE_KEY: &str = "due_key";
const DUE_SHARDS: u32 = 8;

/// The attributes an enrolment write sets; those of the other standing are removed.
const ACTIVE_ONLY: [&str; 3] = ["due_at", DUE_SHARD, DUE_KEY];
const EXITED_ONLY: [&str; 2] = ["exit_reason", "exited_at"];

pub struct DynamoJourneyStore {
    client: Client,
    table: String,
}

impl DynamoJourneyStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    /// One item of the journey, read consistently.
    async fn item(&self, id: &JourneyId, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("journey_id", s(id.to_string()))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// `head` (the journey's head written or moved on) and the new version's
    /// item, in one transaction: false if either condition failed.
    async fn with_version(
        &self,
        head: TransactWriteItem,
        id: &JourneyId,
        version: u32,
        definition: &str,
    ) -> Result<bool, StoreError> {
        const OP: &str = "TransactWriteItems";
        let item = Put::builder()
            .table_name(&self.table)
            .item("journey_id", s(id.to_string()))
            .item("sk", s(format!("{VERSION_PREFIX}{version:06}")))
            .item("definition", s(definition))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "journey_id")
            .build();
        let result = self
            .client
            .transact_write_items()
            .transact_items(head)
            .transact_items(TransactWriteItem::builder().put(built("Put", item)?).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match transaction_error(OP, e)? {
                Cancelled::Conditions(_) => Ok(false),
                Cancelled::Contended => Err(StoreError::unavailable_msg(format!("DynamoDB {OP}: contended"))),
            },
        }
    }

    /// All items of one journey whose sort key starts with `prefix`.
    async fn query_prefix(&self, id: &JourneyId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .names(&[("#pk", "journey_id"), ("#sk", "sk")])
                .values([(":pk", s(id.to_string())), (":prefix", s(prefix))])
                .consistent_read(true),
        )
        .await
    }

    /// An UpdateItem of the journey's `entry` item.
    fn entry_item(&self, journey: &JourneyId) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("journey_id", s(journey.to_string())).key("sk", s(ENTRY))
    }

    /// [`Self::entry_item`] moving the `entered` count by `expression`
    /// (`#entered`, `:zero`, `:one` bound).
    fn entered_update(&self, journey: &JourneyId, expression: &str) -> UpdateItemFluentBuilder {
        self.entry_item(journey)
            .update_expression(expression)
            .names(&[("#entered", "entered")])
            .values([(":zero", n(0)), (":one", n(1))])
    }

    /// An UpdateItem writing every attribute of `e` (and removing those of
    /// the other standing), with `revision` left for the caller to set.
    fn enrolment_update(&self, e: &Enrolment) -> (UpdateItemFluentBuilder, Vec<String>) {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("journey_id", s(e.journey.to_string()))
            .key("sk", s(format!("{CONTACT_PREFIX}{}", e.contact)))
            .expression_attribute_names("#revision", "revision");
        let mut values = vec![
            ("contact_id", s(e.contact.to_string())),
            ("version", n(e.version)),
            ("entered_at", n(unix(e.entered_at))),
            ("sent", s(sent_to_text(&e.sent))),
            ("path", s(path_to_text(&e.path))),
        ];
        let removed: &[&str] = match &e.standing {
            Standing::Active { position, due_at } => {
                values.extend([
                    ("step", s(position.step.as_str())),
                    ("arrived_at", n(unix(position.arrived_at))),
                    ("due_at", n(unix(*due_at))),
                    (DUE_SHARD, s(due_shard(&e.contact))),
                    (DUE_KEY, s(due_key(unix(*due_at), &e.journey, &e.contact))),
                ]);
                &EXITED_ONLY
            }
            Standing::Exited { from, reason, at } => {
                values.extend([
                    ("step", s(from.as_str())),
                    ("arrived_at", n(unix(*at))),
                    ("exit_reason", s(reason.as_str())),
                    ("exited_at", n(unix(*at))),
                ]);
                &ACTIVE_ONLY
            }
        };
        let mut sets = Vec::new();
        for (i, (name, value)) in values.into_iter().enumerate() {
            sets.push(format!("#a{i} = :a{i}"));
            request = request
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        let mut expression = vec![format!("SET {}", sets.join(", "))];
        let removes: Vec<String> = removed.iter().enumerate().map(|(i, _)| format!("#r{i}")).collect();
        for (i, name) in removed.iter().enumerate() {
            request = request.expression_attribute_names(format!("#r{i}"), *name);
        }
        expression.push(format!("REMOVE {}", removes.join(", ")));
        (request, expression)
    }
}

/// The due-index shard of a contact: its ID's last hex digit, modulo 8.
fn due_shard(contact: &ContactId) -> String {
    let last = contact.to_string().chars().last().and_then(|c| c.to_digit(16)).unwrap_or(0);
    (last % DUE_SHARDS).to_string()
}

/// Sorts by due time, then journey and contact (the SQLite store's order).
fn due_key(due_at: i64, journey: &JourneyId, contact: &ContactId) -> String {
    format!("{:012}#{journey}#{contact}", due_at.max(0))
}

fn record(item: &Item) -> Result<JourneyRecord, StoreError> {
    Ok(JourneyRecord {
        id: JourneyId::parse(get_s(item, "journey_id")?)
            .map_err(|_| StoreError::corrupt("journey item has a bad ID"))?,
        version: get_n(item, "version")?,
        definition: get_s(item, "definition")?.to_owned(),
        status: JourneyStatus::parse(get_s(item, "status")?)
            .ok_or_else(|| StoreError::corrupt("journey item has an unknown status"))?,
        created_at: get_time(item, "created_at")?,
    })
}

fn enrolment(item: &Item) -> Result<Enrolment, StoreError> {
    let corrupt = |what: &str| StoreError::corrupt(format!("journey enrolment item: {what}"));
    let step = StepId::parse(get_s(item, "step")?).ok_or_else(|| corrupt("step"))?;
    let standing = match (opt_n::<i64>(item, "due_at")?, opt_s(item, "exit_reason")?) {
        (Some(due_at), None) => Standing::Active {
            position: Position { step, arrived_at: get_time(item, "arrived_at")? },
            due_at: from_unix(due_at)?,
        },
        (None, Some(reason)) => Standing::Exited {
            from: step,
            reason: ExitReason::parse(reason).ok_or_else(|| corrupt("exit_reason"))?,
            at: get_time(item, "exited_at")?,
        },
        _ => return Err(corrupt("standing")),
    };
    Ok(Enrolment {
        journey: JourneyId::parse(get_s(item, "journey_id")?).map_err(|_| corrupt("journey_id"))?,
        contact: ContactId::parse(get_s(item, "contact_id")?).map_err(|_| corrupt("contact_id"))?,
        version: get_n(item, "version")?,
        entered_at: get_time(item, "entered_at")?,
        standing,
        sent: sent_from_text(get_s(item, "sent")?)?,
        // Absent on an enrolment written before paths were kept.
        path: path_from_text(opt_s(item, "path")?.unwrap_or_default())?,
        revision: get_n(item, "revision")?,
    })
}

#[async_trait]
impl JourneyStore for DynamoJourneyStore {
    async fn create(&self, r: &JourneyRecord) -> Result<bool, StoreError> {
        let created_key = format!("{:012}#{}", unix(r.created_at).max(0), r.id);
        let head = Put::builder()
            .table_name(&self.table)
            .item("journey_id", s(r.id.to_string()))
            .item("sk", s(HEAD))
            .item("version", n(1))
            .item("definition", s(r.definition.clone()))
            .item("status", s(r.status.as_str()))
            .item("created_at", n(unix(r.created_at)))
            .item(LIST_KEY, s(LIST))
            .item(CREATED_KEY, s(created_key))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "journey_id")
            .build();
        let head = TransactWriteItem::builder().put(built("Put", head)?).build();
        self.with_version(head, &r.id, 1, &r.definition).await
    }

    async fn get(&self, id: &JourneyId) -> Result<Option<JourneyRecord>, StoreError> {
        self.item(id, HEAD).await?.as_ref().map(record).transpose()
    }

    async fn version(&self, id: &JourneyId, version: u32) -> Result<Option<String>, StoreError> {
        let item = self.item(id, &format!("{VERSION_PREFIX}{version:06}")).await?;
        item.map(|item| get_s(&item, "definition").map(str::to_owned)).transpose()
    }

    async fn add_version(&self, id: &JourneyId, latest: u32, definition: &str) -> Result<bool, StoreError> {
        let next = latest + 1;
        let head = Update::builder()
            .table_name(&self.table)
            .key("journey_id", s(id.to_string()))
            .key("sk", s(HEAD))
            .update_expression("SET #version = :next, #definition = :definition")
            .condition_expression("#version = :latest")
            .names(&[("#version", "version"), ("#definition", "definition")])
            .values([(":next", n(next)), (":latest", n(latest)), (":definition", s(definition))])
            .build();
        let head = TransactWriteItem::builder().update(built("Update", head)?).build();
        self.with_version(head, id, next, definition).await
    }

    async fn list(&self) -> Result<Vec<JourneyRecord>, StoreError> {
        let items: Vec<Item> = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .index_name(OLDEST_INDEX)
                .key_condition_expression("#list = :list")
                .expression_attribute_names("#list", LIST_KEY)
                .expression_attribute_values(":list", s(LIST)),
        )
        .await?;
        items.iter().map(record).collect()
    }

    async fn transition(&self, id: &JourneyId, from: JourneyStatus, to: JourneyStatus) -> Result<bool, StoreError> {
        transition_status(&self.client, &self.table, ("journey_id", id.to_string(), HEAD), from.as_str(), to.as_str())
            .await
    }

    async fn enrol(&self, e: &Enrolment, reenter_before: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let (mut request, mut expression) = self.enrolment_update(e);
        expression[0].push_str(", #revision = if_not_exists(#revision, :none) + :one");
        request = request.expression_attribute_values(":none", n(-1)).expression_attribute_values(":one", n(1));
        request = request.expression_attribute_names("#sk", "sk");
        let condition = match reenter_before {
            None => "attribute_not_exists(#sk)".to_owned(),
            Some(before) => {
                request = request
                    .expression_attribute_names("#exited", "exited_at")
                    .expression_attribute_values(":before", n(unix(before)));
                "attribute_not_exists(#sk) OR (attribute_exists(#exited) AND #exited <= :before)".to_owned()
            }
        };
        let result = request.update_expression(expression.join(" ")).condition_expression(condition).send().await;
        conditional("UpdateItem", result)
    }

    async fn enrolment(&self, journey: &JourneyId, contact: &ContactId) -> Result<Option<Enrolment>, StoreError> {
        self.item(journey, &format!("{CONTACT_PREFIX}{contact}")).await?.as_ref().map(enrolment).transpose()
    }

    async fn advance(&self, next: &Enrolment) -> Result<bool, StoreError> {
        let Some(read) = next.revision.checked_sub(1) else { return Ok(false) };
        let (request, mut expression) = self.enrolment_update(next);
        expression[0].push_str(", #revision = :next");
        let result = request
            .update_expression(expression.join(" "))
            .condition_expression("#revision = :read")
            .values([(":read", n(read)), (":next", n(next.revision))])
            .send()
            .await;
        conditional("UpdateItem", result)
    }

    async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<Enrolment>, StoreError> {
        // Every key of a row due at or before `now` sorts below this one.
        let until = format!("{:012}$", unix(now).max(0));
        let page = i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let mut due = Vec::new();
        for shard in 0..DUE_SHARDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(DUE_INDEX)
                .key_condition_expression("#shard = :shard AND #key < :until")
                .expression_attribute_names("#shard", DUE_SHARD)
                .expression_attribute_names("#key", DUE_KEY)
                .values([(":shard", s(shard.to_string())), (":until", s(until.clone()))])
                .limit(page)
                .send()
                .await
                .map_err(|e| sdk_error("Query", e))?;
            for item in out.items() {
                due.push((get_s(item, DUE_KEY)?.to_owned(), enrolment(item)?));
            }
        }
        due.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(due.into_iter().take(limit).map(|(_, e)| e).collect())
    }

    async fn enrolments(&self, journey: &JourneyId) -> Result<Vec<Enrolment>, StoreError> {
        self.query_prefix(journey, CONTACT_PREFIX).await?.iter().map(enrolment).collect()
    }

    async fn entry_scan(&self, journey: &JourneyId) -> Result<Option<EntryScan>, StoreError> {
        let Some(item) = self.item(journey, ENTRY).await? else { return Ok(None) };
        match opt_s(&item, "scan")? {
            Some(text) => EntryScan::from_text(text, get_n(&item, "scan_revision")?).map(Some),
            None => Ok(None),
        }
    }

    async fn save_entry_scan(&self, journey: &JourneyId, next: &EntryScan) -> Result<bool, StoreError> {
        let request = self
            .entry_item(journey)
            .update_expression("SET #scan = :scan, #revision = :next")
            .names(&[("#scan", "scan"), ("#revision", "scan_revision")])
            .values([(":scan", s(next.to_text())), (":next", n(next.revision))]);
        // Revision 0 only where no scan is stored; any other only over the one read.
        let request = match next.revision.checked_sub(1) {
            None => request.condition_expression("attribute_not_exists(#revision)"),
            Some(read) => request.condition_expression("#revision = :read").values([(":read", n(read))]),
        };
        conditional("UpdateItem", request.send().await)
    }

    async fn take_entry_slot(&self, journey: &JourneyId, cap: u32) -> Result<bool, StoreError> {
        let request = self
            .entered_update(journey, "SET #entered = if_not_exists(#entered, :zero) + :one")
            .condition_expression("(attribute_not_exists(#entered) AND :zero < :cap) OR #entered < :cap")
            .values([(":cap", n(cap))]);
        conditional("UpdateItem", request.send().await)
    }

    async fn release_entry_slot(&self, journey: &JourneyId) -> Result<(), StoreError> {
        let request =
            self.entered_update(journey, "SET #entered = #entered - :one").condition_expression("#entered > :zero");
        conditional("UpdateItem", request.send().await).map(|_| ())
    }

    async fn record_event(&self, contact: &ContactId, name: &EventName, at: OffsetDateTime) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("journey_id", s(format!("{EVENTS_PARTITION}{contact}")))
            .item("sk", s(format!("{:012}#{}", unix(at), name.as_str())))
            .item("name", s(name.as_str()))
            .item("at", n(unix(at)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutItem", e))
    }

    async fn events_of(&self, contact: &ContactId) -> Result<Vec<(EventName, OffsetDateTime)>, StoreError> {
        let items: Vec<Item> = query_all(
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "journey_id")
                .expression_attribute_values(":pk", s(format!("{EVENTS_PARTITION}{contact}")))
                .consistent_read(true),
        )
        .await?;
        items
            .iter()
            .map(|item| {
                let name =
                    EventName::parse(get_s(item, "name")?).ok_or_else(|| StoreError::corrupt("journey event name"))?;
                Ok((name, get_time(item, "at")?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_first_and_stay_below_the_sweep_bound() {
        let (journey, contact) = (JourneyId::new_random(), ContactId::new_random());
        let early = due_key(99, &journey, &contact);
        let late = due_key(1_800_000_000, &journey, &contact);

        assert!(early < late, "zero-padded: {early} < {late}");
        assert!(late < format!("{:012}$", 1_800_000_000), "'#' sorts below '$'");
        assert!(late > format!("{:012}$", 1_799_999_999));
        let shard: u32 = due_shard(&contact).parse().unwrap();
        assert!(shard < DUE_SHARDS);
    }
}
