//! `carepost keys rotate`: rotates the customer key of a running stack, then
//! re-seals every contact under it page by page while the stack keeps
//! serving. Interrupted, it prints how to resume from where it stopped.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde_json::{Value, json};

use crate::client::AdminConnection;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// New customer-key material, then every contact re-sealed under it.
    Rotate(RotateArgs),
}

#[derive(Args)]
pub struct RotateArgs {
    /// Resume an interrupted re-seal from this cursor (printed when it stopped); no new rotation.
    #[arg(long, requires = "rotated_at", value_name = "CURSOR")]
    pub resume: Option<String>,
    /// The rotation time printed with the cursor (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub rotated_at: Option<String>,
    /// Contacts per re-seal request (1 to 500).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=500))]
    pub page_size: u16,
}

pub async fn run(command: KeysCommand, admin: &AdminConnection) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate(args) => rotate(args, admin).await,
    }
}

#[derive(Default)]
struct Totals {
    scanned: u64,
    resealed: u64,
    changed: u64,
    unreadable: Vec<String>,
}

async fn rotate(args: RotateArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let rotated_at = match &args.rotated_at {
        Some(at) => at.clone(),
        None => {
            let rotation = admin.send_json(reqwest::Method::POST, "/v1/keys/rotate", None).await?;
            println!("rotated: {}", rotation["key"].as_str().unwrap_or("new key material"));
            rotation["rotated_at"].as_str().context("the rotation answer has no rotated_at")?.to_owned()
        }
    };
    let progress = ProgressBar::new_spinner().with_message("re-sealing contacts");
    progress.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut cursor = args.resume.clone();
    let mut totals = Totals::default();
    loop {
        let body = json!({"rotated_at": rotated_at, "cursor": cursor, "limit": args.page_size});
        let page = match admin.send_json(reqwest::Method::POST, "/v1/keys/reseal", Some(&body)).await {
            Ok(page) => page,
            Err(e) => {
                progress.abandon();
                let resume = cursor.as_deref().map_or(String::new(), |c| format!("--resume {c} "));
                bail!(
                    "{e:#}\nre-sealing stopped; continue with: carepost keys rotate {resume}--rotated-at {rotated_at}"
                )
            }
        };
        add(&mut totals, &page);
        progress.set_message(format!(
            "re-sealed {} of {} contacts seen ({} changed meanwhile, {} unreadable)",
            totals.resealed,
            totals.scanned,
            totals.changed,
            totals.unreadable.len()
        ));
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    progress.finish_and_clear();
    println!(
        "re-sealed {} contacts under the rotated key ({} seen, {} updated meanwhile and already under a new data key)",
        totals.resealed, totals.scanned, totals.changed
    );
    if !totals.unreadable.is_empty() {
        bail!(
            "{} contacts could not be opened and were left as they are (tampered or corrupt): {}",
            totals.unreadable.len(),
            totals.unreadable.join(", ")
        );
    }
    Ok(())
}

fn add(totals: &mut Totals, page: &Value) {
    let count = |k: &str| page[k].as_u64().unwrap_or(0);
    totals.scanned += count("scanned");
    totals.resealed += count("resealed");
    totals.changed += count("changed_meanwhile");
    let unreadable = page["unreadable"].as_array().into_iter().flatten();
    totals.unreadable.extend(unreadable.filter_map(|v| v.as_str().map(str::to_owned)));
}
