//! `carepost contacts import FILE.csv`: contacts from a CSV export, through
//! the batch upsert of a running stack (500 per request), with a progress
//! bar, a `--dry-run` that only validates, and a report of rejected rows
//! (row number, field and rule; never the value).
//!
//! Columns (header row, any order, all but `external_id` and `email`
//! optional): external_id, email, and any attribute of the stack's contact
//! schema (`GET /v1/schema`; by default first_name, last_name, date_of_birth
//! (YYYY-MM-DD), sex, zip, language, conditions, medications, journey_stage,
//! last_visit). Code lists (conditions, medications…) are separated by `;`.
//! A column outside the schema stops the import before any row is sent.
//!
//! With `--consent-source NAME --consent-text FILE`, two more columns bring
//! each patient's prior opt-ins over (`POST /v1/contacts:import-consent`):
//! `consent_categories` (topics, `;`-separated) and `consented_at` (the date
//! the patient gave it, YYYY-MM-DD or RFC 3339). Rows with no topics import
//! the contact only.

use std::path::PathBuf;

use anyhow::{Context, bail};
use carepost::domain::{AttributeType, ContactSchema, EmailAddress, ExternalId, ProfileInput};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::client::AdminConnection;

const BATCH: usize = 500;

#[derive(Subcommand)]
pub enum ContactsCommand {
    /// Import contacts from a CSV file (see the column list in --help of the crate docs).
    Import(ImportArgs),
    /// One contact with its PHI (by contact ID or external ID); audited with --reason.
    Get(crate::contact_admin::GetArgs),
    /// A contact's consent ledger, oldest first, with its chain verified.
    Consent(crate::contact_admin::ContactRef),
    /// Withdraw topics (--topic, repeatable) or everything (--all) on the patient's behalf.
    Withdraw(crate::contact_admin::WithdrawArgs),
    /// Erase a contact: PHI deleted, address suppressed, consent evidence kept.
    Erase(crate::contact_admin::ContactRef),
    /// Record the patient's signed HIPAA marketing authorization (45 CFR 164.508).
    Authorize(crate::contact_admin::AuthorizeArgs),
    /// Record that the patient revoked their HIPAA marketing authorization.
    RevokeAuthorization(crate::contact_admin::ContactRef),
}

#[derive(Args)]
pub struct ImportArgs {
    /// The CSV file, with a header row.
    pub file: PathBuf,
    /// Validate every row and write the reject report, store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the rejected rows are reported (CSV: row, field, reason).
    #[arg(long, value_name = "FILE", default_value = "rejected.csv")]
    pub rejects: PathBuf,
    /// Also import each row's prior consent (columns consent_categories and
    /// consented_at), recorded as captured by this system (e.g. "Epic MyChart").
    #[arg(long, value_name = "NAME", requires = "consent_text")]
    pub consent_source: Option<String>,
    /// The consent text the patients agreed to in that system; its SHA-256 is
    /// kept with every imported grant.
    #[arg(long, value_name = "FILE", requires = "consent_source")]
    pub consent_text: Option<PathBuf>,
}

/// The columns that carry prior consent (with `--consent-source`).
const CONSENT_COLUMNS: [&str; 2] = ["consent_categories", "consented_at"];

/// One data row: its number in the file (the header is row 1) and the item.
struct Row {
    number: u64,
    item: Value,
    /// The prior-consent entry, when the row names topics.
    consent: Option<Value>,
}

/// The row's consent entry, or the (field, reason) it is refused for.
fn consent_entry(header: &[String], record: &csv::StringRecord) -> Result<Option<Value>, (String, String)> {
    let column = |name: &str| {
        header.iter().position(|h| h == name).and_then(|i| record.get(i)).map(str::trim).unwrap_or_default()
    };
    let Some(categories) = split_list(column("consent_categories")) else { return Ok(None) };
    for category in &categories {
        carepost::domain::ConsentCategory::parse(category)
            .map_err(|_| ("consent_categories".to_owned(), "names a topic that is not a valid topic ID".to_owned()))?;
    }
    let at = column("consented_at");
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let consented_at = match time::OffsetDateTime::parse(at, rfc3339) {
        Ok(t) => t,
        Err(_) => time::Date::parse(at, time::macros::format_description!("[year]-[month]-[day]"))
            .map(|d| d.midnight().assume_utc())
            .map_err(|_| ("consented_at".to_owned(), "must be a date (YYYY-MM-DD) or an RFC 3339 time".to_owned()))?,
    };
    if consented_at > time::OffsetDateTime::now_utc() {
        return Err(("consented_at".to_owned(), "is in the future".to_owned()));
    }
    let external_id = column("external_id");
    Ok(Some(json!({"external_id": external_id, "categories": categories,
        "consented_at": consented_at.format(rfc3339).unwrap_or_default()})))
}

fn split_list(value: &str) -> Option<Vec<String>> {
    let items: Vec<String> = value.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    (!items.is_empty()).then_some(items)
}

fn row_item(schema: &ContactSchema, header: &[String], record: &csv::StringRecord) -> Value {
    let mut attributes = serde_json::Map::new();
    let (mut external_id, mut email) = (String::new(), String::new());
    for (name, value) in header.iter().zip(record.iter()) {
        let value = value.trim();
        let is_list = schema.get(name).is_some_and(|d| d.kind == AttributeType::CodeList);
        match name.as_str() {
            _ if CONSENT_COLUMNS.contains(&name.as_str()) => {}
            "external_id" => external_id = value.to_owned(),
            "email" => email = value.to_owned(),
            _ if is_list => {
                if let Some(list) = split_list(value) {
                    attributes.insert(name.clone(), json!(list));
                }
            }
            _ if !value.is_empty() => {
                attributes.insert(name.clone(), json!(value));
            }
            _ => {}
        }
    }
    json!({"external_id": external_id, "email": email, "attributes": attributes})
}

/// What the server would refuse, checked here with the same parsers and schema.
fn validate(schema: &ContactSchema, item: &Value) -> Option<(String, String)> {
    let text = |k: &str| item[k].as_str().unwrap_or_default().to_owned();
    if let Err(e) = ExternalId::parse(&text("external_id")) {
        return Some(("external_id".into(), e.to_string()));
    }
    if let Err(e) = EmailAddress::parse(&text("email")) {
        return Some(("email".into(), e.to_string()));
    }
    let profile: ProfileInput = match serde_json::from_value(item["attributes"].clone()) {
        Ok(p) => p,
        Err(_) => return Some(("attributes".into(), "not a valid set of attributes".into())),
    };
    let today = time::OffsetDateTime::now_utc().date();
    schema.apply(&profile, Default::default(), today).err().map(|f| (f.field, f.message))
}

pub async fn run(command: ContactsCommand, admin: &AdminConnection) -> anyhow::Result<()> {
    match command {
        ContactsCommand::Import(args) => import(args, admin).await,
        ContactsCommand::Get(args) => crate::contact_admin::get(&args, admin).await,
        ContactsCommand::Consent(contact) => crate::contact_admin::consent(&contact, admin).await,
        ContactsCommand::Withdraw(args) => crate::contact_admin::withdraw(&args, admin).await,
        ContactsCommand::Erase(contact) => crate::contact_admin::erase(&contact, admin).await,
        ContactsCommand::Authorize(args) => crate::contact_admin::authorize(&args, admin).await,
        ContactsCommand::RevokeAuthorization(contact) => crate::contact_admin::revoke(&contact, admin).await,
    }
}

async fn import(args: ImportArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let schema = ContactSchema::parse(&admin.get_json("/v1/schema").await?.to_string())
        .context("the stack's contact schema (GET /v1/schema)")?;
    let header: Vec<String> = reader.headers()?.iter().map(|h| h.trim().to_ascii_lowercase()).collect();
    let consent = match (&args.consent_source, &args.consent_text) {
        (Some(source), Some(text)) => {
            let text = std::fs::read_to_string(text).with_context(|| format!("cannot read {}", text.display()))?;
            carepost::domain::SourceSystem::parse(source).context("--consent-source")?;
            for column in CONSENT_COLUMNS {
                if !header.iter().any(|h| h == column) {
                    bail!("--consent-source needs a '{column}' column");
                }
            }
            Some(json!({"source_system": source, "consent_text_sha256": carepost::forms::sha256_hex(&text)}))
        }
        _ => None,
    };
    let known =
        |h: &str| h == "external_id" || schema.get(h).is_some() || (consent.is_some() && CONSENT_COLUMNS.contains(&h));
    if let Some(unknown) = header.iter().find(|h| !known(h)) {
        let columns: Vec<String> = std::iter::once("external_id".to_owned())
            .chain(schema.attributes().iter().map(|d| d.name.clone()))
            .collect();
        let hint = if CONSENT_COLUMNS.contains(&unknown.as_str()) {
            "; prior consent columns need --consent-source NAME --consent-text FILE"
        } else {
            ""
        };
        bail!(
            "unknown column '{unknown}': it is not in the contact schema; the columns are: {}{hint}",
            columns.join(", ")
        );
    }
    for required in ["external_id", "email"] {
        if !header.iter().any(|h| h == required) {
            bail!("the header has no '{required}' column");
        }
    }
    let total = std::fs::read(&args.file).map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)?.saturating_sub(1);
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} rows  {per_sec}  eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    progress.set_prefix(if args.dry_run { "checking" } else { "importing" });
    let mut rejects =
        csv::Writer::from_path(&args.rejects).with_context(|| format!("cannot write {}", args.rejects.display()))?;
    rejects.write_record(["row", "field", "reason"])?;
    let (mut created, mut updated, mut rejected) = (0u64, 0u64, 0u64);
    let (mut consent_imported, mut consent_unchanged, mut consent_rejected) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut records = reader.records();
    let mut number = 1u64;
    loop {
        let next = records.next();
        if let Some(record) = &next {
            number += 1;
            match record {
                Ok(record) => match consent.as_ref().map(|_| consent_entry(&header, record)).transpose() {
                    Ok(entry) => {
                        batch.push(Row { number, item: row_item(&schema, &header, record), consent: entry.flatten() })
                    }
                    Err((field, reason)) => {
                        rejected += 1;
                        rejects.write_record([number.to_string(), field, reason])?;
                        progress.inc(1);
                    }
                },
                Err(_) => {
                    rejected += 1;
                    rejects.write_record([number.to_string(), String::new(), "not a well-formed CSV row".into()])?;
                    progress.inc(1);
                }
            }
        }
        if batch.len() == BATCH || (next.is_none() && !batch.is_empty()) {
            let rows = std::mem::take(&mut batch);
            let outcomes = if args.dry_run { check(&schema, &rows) } else { send(admin, &rows).await? };
            let mut stored: Vec<&Row> = Vec::new();
            for (row, outcome) in rows.iter().zip(outcomes) {
                match outcome {
                    Outcome::Created => created += 1,
                    Outcome::Updated => updated += 1,
                    Outcome::Rejected(field, reason) => {
                        rejected += 1;
                        rejects.write_record([row.number.to_string(), field, reason])?;
                        continue;
                    }
                }
                if row.consent.is_some() {
                    stored.push(row);
                }
            }
            if let (Some(consent), false, false) = (&consent, args.dry_run, stored.is_empty()) {
                for (row, outcome) in stored.iter().zip(send_consent(admin, consent, &stored).await?) {
                    match outcome {
                        Outcome::Created => consent_imported += 1,
                        Outcome::Updated => consent_unchanged += 1,
                        Outcome::Rejected(field, reason) => {
                            // The contact is stored; only its consent was refused.
                            consent_rejected += 1;
                            rejects.write_record([row.number.to_string(), field, reason])?;
                        }
                    }
                }
            }
            progress.inc(rows.len() as u64);
        }
        if next.is_none() {
            break;
        }
    }
    rejects.flush()?;
    progress.finish_and_clear();
    let verb = if args.dry_run { "would be imported" } else { "imported" };
    println!(
        "{} rows: {} {verb} ({created} new, {updated} updated), {rejected} rejected (see {})",
        number - 1,
        created + updated,
        args.rejects.display()
    );
    if consent.is_some() && !args.dry_run {
        println!(
            "prior consent: {consent_imported} contacts granted topics, {consent_unchanged} unchanged, \
             {consent_rejected} refused (see {})",
            args.rejects.display()
        );
    }
    if rejected + consent_rejected > 0 {
        // A script must not mistake a partial import for a complete one.
        let refused = rejected + consent_rejected;
        return Err(crate::PartialFailure(format!("{refused} rows were rejected")).into());
    }
    Ok(())
}

enum Outcome {
    Created,
    Updated,
    Rejected(String, String),
}

fn check(schema: &ContactSchema, rows: &[Row]) -> Vec<Outcome> {
    rows.iter()
        .map(|row| match validate(schema, &row.item) {
            Some((field, reason)) => Outcome::Rejected(field, reason),
            None => Outcome::Created,
        })
        .collect()
}

/// Reads a batch answer's `results`: `created` (or `first`) as Created,
/// `updated` (or `second`) as Updated, anything else as the row's rejection.
fn outcomes(answer: &Value, [first, second]: [&str; 2]) -> anyhow::Result<Vec<Outcome>> {
    let results = answer["results"].as_array().context("the answer has no results")?;
    Ok(results
        .iter()
        .map(|r| match r["status"].as_str() {
            Some(s) if s == first => Outcome::Created,
            Some(s) if s == second => Outcome::Updated,
            _ => Outcome::Rejected(
                r["field"].as_str().unwrap_or_default().to_owned(),
                r["message"].as_str().unwrap_or_default().to_owned(),
            ),
        })
        .collect())
}

async fn send(admin: &AdminConnection, rows: &[Row]) -> anyhow::Result<Vec<Outcome>> {
    let items: Vec<&Value> = rows.iter().map(|r| &r.item).collect();
    let body = admin.send_json(reqwest::Method::POST, "/v1/contacts:batch", Some(&json!({"contacts": items}))).await?;
    outcomes(&body, ["created", "updated"])
}

/// Posts the stored rows' consent entries; `Created` stands for imported,
/// `Updated` for unchanged.
async fn send_consent(admin: &AdminConnection, consent: &Value, rows: &[&Row]) -> anyhow::Result<Vec<Outcome>> {
    let mut body = consent.clone();
    body["entries"] = json!(rows.iter().map(|r| &r.consent).collect::<Vec<_>>());
    let answer = admin.send_json(reqwest::Method::POST, "/v1/contacts:import-consent", Some(&body)).await?;
    outcomes(&answer, ["imported", "unchanged"])
}
