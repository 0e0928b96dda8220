//! `carepost contacts get|erase|consent|withdraw`: one contact through the
//! admin API of any stack. A contact is named by its contact ID or by the
//! external ID it was imported with.

use anyhow::ensure;
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{AdminConnection, Output};

#[derive(Args)]
pub struct ContactRef {
    /// The contact's ID, or its external ID (from your EHR or CRM).
    pub id: String,
}

impl ContactRef {
    /// The ID as it goes into a URL path: IDs are letters, digits and a few
    /// marks, so anything else is refused before a request is made.
    fn path_segment(&self) -> anyhow::Result<&str> {
        let ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self.id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        ensure!(ok, "'{}' is not a contact ID or external ID", self.id);
        Ok(&self.id)
    }
}

#[derive(Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub contact: ContactRef,
    /// Why you need this patient's data; kept in the audit log with your identity.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    pub contact: ContactRef,
    /// A topic to withdraw (repeat for more).
    #[arg(long = "topic", value_name = "TOPIC", required_unless_present = "all", conflicts_with = "all")]
    pub topics: Vec<String>,
    /// Withdraw every topic and suppress the address for good.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct AuthorizeArgs {
    #[command(flatten)]
    pub contact: ContactRef,
    /// When the authorization ends: YYYY-MM-DD (end of that day, UTC) or RFC 3339.
    #[arg(long, value_name = "DATE")]
    pub expires: String,
    /// The authorization text the patient signed; its SHA-256 is recorded.
    #[arg(long, value_name = "FILE")]
    pub text: std::path::PathBuf,
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `contacts get`: the contact with its PHI, audited under the reason.
pub async fn get(args: &GetArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    ensure!(!args.reason.trim().is_empty(), "--reason must say why you need this patient's data");
    let id = args.contact.path_segment()?;
    let mut query = reqwest::Url::parse("http://query.invalid/").expect("a URL");
    query.query_pairs_mut().append_pair("reason", &args.reason);
    let view = admin.get_json(&format!("/v1/contacts/{id}?{}", query.query().unwrap_or_default())).await?;
    if admin.output == Output::Json {
        return print_json(&view);
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>().join(";")
        }
        other => other.to_string(),
    };
    let mut rows = vec![
        vec!["contact_id".to_owned(), text(&view["contact_id"])],
        vec!["external_id".to_owned(), text(&view["external_id"])],
        vec!["email".to_owned(), text(&view["email"])],
    ];
    if let Some(attributes) = view["attributes"].as_object() {
        // Unset attributes are left out.
        rows.extend(
            attributes.iter().filter(|(_, v)| !v.is_null()).map(|(name, value)| vec![name.clone(), text(value)]),
        );
    }
    print!("{}", crate::table::render(&["FIELD", "VALUE"], &rows));
    Ok(())
}

/// `contacts erase`: PHI deleted, the address suppressed, evidence kept.
pub async fn erase(contact: &ContactRef, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = contact.path_segment()?;
    let answer = admin.request_json(Method::DELETE, &format!("/v1/contacts/{id}")).await?;
    match admin.output {
        Output::Json => print_json(&answer),
        Output::Table => {
            println!(
                "contact {}: erased (address suppressed, consent evidence kept)",
                answer["contact_id"].as_str().unwrap_or(id)
            );
            Ok(())
        }
    }
}

/// `contacts consent`: the consent ledger, oldest first, chain verified.
pub async fn consent(contact: &ContactRef, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = contact.path_segment()?;
    let history = admin.get_json(&format!("/v1/contacts/{id}/consent")).await?;
    if admin.output == Output::Json {
        return print_json(&history);
    }
    let rows: Vec<Vec<String>> = crate::table::items(&history["entries"])
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("").to_owned();
            let topics: Vec<&str> = crate::table::items(&e["categories"]).iter().filter_map(Value::as_str).collect();
            vec![text("at"), text("kind"), topics.join(", "), text("method"), text("form_id")]
        })
        .collect();
    if rows.is_empty() {
        println!("contact {id}: no consent entries (never asked, never imported)");
    } else {
        print!("{}", crate::table::render(&["AT", "KIND", "TOPICS", "METHOD", "FORM"], &rows));
    }
    let verified = history["chain_verified"].as_bool().unwrap_or(false);
    println!("chain verified: {}", if verified { "yes" } else { "NO: an entry was changed or removed" });
    ensure!(verified, "the consent ledger of contact {id} does not verify");
    Ok(())
}

/// `contacts withdraw`: topics, or everything, on the patient's behalf.
pub async fn withdraw(args: &WithdrawArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = args.contact.path_segment()?;
    let body = if args.all { json!({"all": true}) } else { json!({"categories": args.topics}) };
    let answer = admin.send_json(Method::POST, &format!("/v1/contacts/{id}/consent/withdraw"), Some(&body)).await?;
    match admin.output {
        Output::Json => print_json(&answer),
        Output::Table => {
            let withdrawn: Vec<&str> =
                crate::table::items(&answer["withdrawn"]).iter().filter_map(Value::as_str).collect();
            match (args.all, withdrawn.is_empty()) {
                (true, _) => println!("contact {id}: every topic withdrawn, address suppressed"),
                (false, true) => println!("contact {id}: nothing to withdraw (no such topic was granted)"),
                (false, false) => println!("contact {id}: withdrawn {}", withdrawn.join(", ")),
            }
            Ok(())
        }
    }
}

/// `contacts authorize`: the signed authorization, by its text's hash.
pub async fn authorize(args: &AuthorizeArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = args.contact.path_segment()?;
    let text =
        std::fs::read_to_string(&args.text).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.text.display()))?;
    let body = json!({"expires_at": args.expires, "authorization_text_sha256": carepost::forms::sha256_hex(&text)});
    let path = format!("/v1/contacts/{id}/hipaa-authorization");
    let answer = admin.send_json(Method::PUT, &path, Some(&body)).await?;
    match admin.output {
        Output::Json => print_json(&answer),
        Output::Table => {
            println!("contact {id}: HIPAA marketing authorization recorded until {}", args.expires);
            Ok(())
        }
    }
}

/// `contacts revoke-authorization`: PHI marketing stops for the contact.
pub async fn revoke(contact: &ContactRef, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = contact.path_segment()?;
    let answer = admin.request_json(Method::DELETE, &format!("/v1/contacts/{id}/hipaa-authorization")).await?;
    match admin.output {
        Output::Json => print_json(&answer),
        Output::Table => {
            println!("contact {id}: HIPAA marketing authorization revoked");
            Ok(())
        }
    }
}
