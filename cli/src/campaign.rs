//! `carepost campaign …`: create, list, launch, watch, report and steer
//! campaigns through the admin API of any stack (`client.rs`).

use std::path::PathBuf;

use anyhow::{Context, ensure};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use crate::client::{AdminConnection, Output};

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Create a draft campaign from a campaign file (TOML: segment, category,
    /// purpose, sender and the template's subject, HTML and text files).
    Create(CreateArgs),
    /// The campaigns, newest first, with status and progress.
    List(ListArgs),
    /// One campaign: its status and progress, and what it was created with
    /// (segment, topic, purpose, sender, subject, tracking, launch time).
    Show(Target),
    /// Start the campaign's fan-out now (or at its launch_at).
    Launch(Target),
    /// Create a campaign from a campaign file and launch it at a set time:
    /// it waits as "scheduled" until then (`cancel` stops it before).
    Schedule(ScheduleArgs),
    /// Print the campaign's report (status, progress, exclusions, events,
    /// rates) as a table (`--output json` for all of it, timeline included),
    /// or write it as an HTML page with `--html`.
    Report(ReportArgs),
    /// Hold the campaign's remaining sends until it is resumed.
    Pause(Target),
    /// Continue a paused campaign: unfinished fan-out and held sends.
    Resume(Target),
    /// Send every failed job of the campaign again (rows the provider refused
    /// or that could not be rendered; not the stalled ones: see `redrive`).
    RetryFailed(Target),
    /// Bring a stalled campaign's jobs back after an outage: its send jobs in
    /// the dead-letter queue are moved back and every row not settled is
    /// queued again. Nothing already sent is sent again.
    Redrive(Target),
    /// Stop the campaign for good: no more fan-out, unsent jobs cancelled.
    Cancel(Target),
    /// The audience estimate: who would be reached, and why others would not
    /// (counts below the minimum cell shown as "fewer than 11"); sends nothing.
    Estimate(Target),
    /// Follow the campaign's progress with a progress bar until it completes or stops.
    Watch(Target),
    /// Render a campaign file's template on the stack for a made-up patient
    /// and write the HTML part to a local file (linted as `create` would).
    Preview(PreviewArgs),
    /// Check a campaign file without a stack: the same parsing and template
    /// lint as `create`, against the topics of `--forms` and the attributes
    /// of `--schema` (default: the built-in ones).
    Validate(ValidateArgs),
}

#[derive(Args)]
pub struct PreviewArgs {
    /// The campaign file (TOML).
    pub file: PathBuf,
    /// Where the rendered HTML part goes.
    #[arg(long, value_name = "FILE", default_value = "preview.html")]
    pub out: PathBuf,
}

/// `campaign preview`: the stack renders, the HTML is written locally, the
/// subject and text part are printed; a lint finding fails the command.
async fn preview(args: &PreviewArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let body = crate::campaign_file::load(&args.file)?;
    let request = serde_json::json!({
        "template": body["template"],
        "phi_personalized": body["phi_personalized"].as_bool().unwrap_or(false),
        "purpose": body["purpose"],
    });
    let rendered = admin.send_json(Method::POST, "/v1/campaigns/preview", Some(&request)).await?;
    let html = rendered["html"].as_str().context("the preview has no HTML part")?;
    // As the email carries it: a whole document around the template's HTML.
    let page = carepost::mail::html_document(rendered["subject"].as_str().unwrap_or_default(), html);
    std::fs::write(&args.out, page).with_context(|| format!("cannot write {}", args.out.display()))?;
    if admin.output == Output::Json {
        print_json(&rendered)?;
    } else {
        println!("Subject: {}", rendered["subject"].as_str().unwrap_or_default());
        println!("HTML part: {}", args.out.display());
        println!("Text part:\n{}", rendered["text"].as_str().unwrap_or_default());
    }
    if let Some(finding) = rendered["lint"].as_object() {
        let field = finding.get("field").and_then(Value::as_str).unwrap_or("template");
        let message = finding.get("message").and_then(Value::as_str).unwrap_or("refused");
        anyhow::bail!("campaign create would refuse this template: {field}: {message}");
    }
    Ok(())
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The campaign file (TOML).
    pub file: PathBuf,
    /// The stack's forms file, for its topics (default: the example topics).
    #[arg(long, value_name = "FILE")]
    pub forms: Option<PathBuf>,
    /// The stack's contact schema, for the segment's attributes.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

/// `campaign validate`: what `create` would refuse, said by field, offline.
pub fn validate(args: &ValidateArgs) -> anyhow::Result<()> {
    let body = crate::campaign_file::load(&args.file)?;
    let settings = crate::schema::offline_settings(args.forms.as_deref(), args.schema.as_deref())?;
    let input: carepost::app::campaigns::CampaignInput =
        serde_json::from_value(body.clone()).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    input.validate(&settings).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    println!(
        "{}: valid campaign '{}' for topic {} (marketing mail also needs the stack's POSTAL_ADDRESS)",
        args.file.display(),
        body["name"].as_str().unwrap_or_default(),
        body["category"].as_str().unwrap_or_default()
    );
    Ok(())
}

#[derive(Args)]
pub struct CreateArgs {
    /// The campaign file (TOML; see docs/operations.md).
    pub file: PathBuf,
}

#[derive(Args)]
pub struct ScheduleArgs {
    /// The campaign file (TOML); its own launch_at, if any, is replaced.
    pub file: PathBuf,
    /// When fan-out starts: RFC 3339 with its UTC offset, e.g. 2026-12-03T09:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub at: String,
}

#[derive(Args)]
pub struct ListArgs {
    /// Campaigns per page (1 to 100).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Every page, not only the newest.
    #[arg(long)]
    pub all: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub target: Target,
    /// Write a self-contained HTML report (funnel and timeline charts) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Args)]
pub struct Target {
    /// The campaign's ID.
    pub id: String,
}

impl Target {
    pub fn checked_id(&self) -> anyhow::Result<&str> {
        ensure!(uuid::Uuid::parse_str(&self.id).is_ok(), "'{}' is not a campaign ID", self.id);
        Ok(&self.id)
    }
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn run(command: CampaignCommand, admin: &AdminConnection) -> anyhow::Result<()> {
    let (method, action, target) = match &command {
        CampaignCommand::Create(args) => return create(args, admin).await,
        CampaignCommand::List(args) => return list(args, admin).await,
        CampaignCommand::Show(target) => return show(target, admin).await,
        CampaignCommand::Schedule(args) => return schedule(args, admin).await,
        CampaignCommand::Report(ReportArgs { target, html: Some(path) }) => {
            return write_html_report(target, path, admin).await;
        }
        CampaignCommand::Report(ReportArgs { target, html: None }) => return report(target, admin).await,
        CampaignCommand::Watch(target) => return crate::watch::watch(target, admin).await,
        CampaignCommand::Validate(args) => return validate(args),
        CampaignCommand::Preview(args) => return preview(args, admin).await,
        CampaignCommand::Estimate(target) => return estimate(target, admin).await,
        CampaignCommand::Launch(t) => (Method::POST, "/launch", t),
        CampaignCommand::Pause(t) => (Method::POST, "/pause", t),
        CampaignCommand::Resume(t) => (Method::POST, "/resume", t),
        CampaignCommand::RetryFailed(t) => (Method::POST, "/retry-failed", t),
        CampaignCommand::Redrive(t) => (Method::POST, "/redrive", t),
        CampaignCommand::Cancel(t) => (Method::POST, "/cancel", t),
    };
    let id = target.checked_id()?;
    let body = admin.request_json(method, &format!("/v1/campaigns/{id}{action}")).await?;
    match admin.output {
        Output::Json => print_json(&body),
        Output::Table => {
            let status = body["status"].as_str().unwrap_or("unknown").replace('_', " ");
            match body["requeued"].as_u64() {
                Some(n) => println!("campaign {id}: {status} ({n} send jobs queued again)"),
                None => println!("campaign {id}: {status}"),
            }
            Ok(())
        }
    }
}

async fn create(args: &CreateArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let body = crate::campaign_file::load(&args.file)?;
    let created = admin.send_json(Method::POST, "/v1/campaigns", Some(&body)).await?;
    match admin.output {
        Output::Json => print_json(&created),
        Output::Table => {
            let id = created["id"].as_str().context("the answer has no campaign ID")?;
            println!("{id}");
            eprintln!(
                "created draft campaign '{}'; launch it with: carepost campaign launch {id}",
                body["name"].as_str().unwrap_or("")
            );
            Ok(())
        }
    }
}

async fn list(args: &ListArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let mut campaigns: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/campaigns?limit={}", args.limit);
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page = admin.get_json(&path).await?;
        campaigns.extend(page["campaigns"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) if args.all => after = Some(next.to_owned()),
            _ => break,
        }
    }
    if admin.output == Output::Json {
        return print_json(&serde_json::json!({"campaigns": campaigns}));
    }
    let rows: Vec<Vec<String>> = campaigns
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or("").to_owned();
            let n = |k: &str| crate::table::count(&c[k]);
            let shards = format!("{}/{}", n("shards_done"), n("shards_total"));
            vec![text("id"), text("created_at"), text("status").replace('_', " "), shards, n("audience"), text("name")]
        })
        .collect();
    print!("{}", crate::table::render(&["ID", "CREATED", "STATUS", "SHARDS", "AUDIENCE", "NAME"], &rows));
    Ok(())
}

async fn report(target: &Target, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = target.checked_id()?;
    let report = admin.get_json(&format!("/v1/campaigns/{id}/report")).await?;
    match admin.output {
        Output::Json => print_json(&report),
        Output::Table => {
            print!("{}", crate::table::report(&report));
            Ok(())
        }
    }
}

/// Calls the dry run until it is complete, carrying its resume token, with
/// a spinner counting the contacts judged; prints the finished estimate.
async fn estimate(target: &Target, admin: &AdminConnection) -> anyhow::Result<()> {
    let path = format!("/v1/campaigns/{}/dry-run", target.checked_id()?);
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template("{spinner} judging contacts: {pos} so far {elapsed}")?);
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut body = admin.send_json(Method::POST, &path, None).await?;
    while body["complete"] == Value::Bool(false) {
        spinner.set_position(body["evaluated"].as_u64().unwrap_or(0));
        let resume = body["resume"].as_str().context("a partial estimate without a resume token")?.to_owned();
        body = admin.send_json(Method::POST, &path, Some(&serde_json::json!({"resume": resume}))).await?;
    }
    spinner.finish_and_clear();
    match admin.output {
        Output::Json => print_json(&body),
        Output::Table => {
            print!("{}", crate::table::estimate(&body));
            Ok(())
        }
    }
}

/// `campaign show`: the status line, progress and the definition's headline.
async fn show(target: &Target, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = target.checked_id()?;
    let campaign = admin.get_json(&format!("/v1/campaigns/{id}")).await?;
    match admin.output {
        Output::Json => print_json(&campaign),
        Output::Table => {
            print!("{}", crate::table::campaign(&campaign));
            Ok(())
        }
    }
}

/// `campaign schedule`: `create` with the file's launch time replaced, then
/// `launch`, which for a time ahead leaves the campaign scheduled.
async fn schedule(args: &ScheduleArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let at = time::OffsetDateTime::parse(&args.at, &time::format_description::well_known::Rfc3339).map_err(|_| {
        anyhow::anyhow!("--at must be an RFC 3339 date and time with its UTC offset, e.g. 2026-12-03T09:00:00Z")
    })?;
    ensure!(at > time::OffsetDateTime::now_utc(), "--at {} is in the past; give a time ahead", args.at);
    let mut body = crate::campaign_file::load(&args.file)?;
    body["launch_at"] = Value::String(args.at.clone());
    let created = admin.send_json(Method::POST, "/v1/campaigns", Some(&body)).await?;
    let id = created["id"].as_str().context("the answer has no campaign ID")?.to_owned();
    let launched = admin.request_json(Method::POST, &format!("/v1/campaigns/{id}/launch")).await?;
    match admin.output {
        Output::Json => print_json(&serde_json::json!({"id": id, "status": launched["status"], "launch_at": args.at})),
        Output::Table => {
            println!("{id}");
            eprintln!(
                "campaign '{}' is {} for {}; `carepost campaign cancel {id}` stops it before then",
                body["name"].as_str().unwrap_or(""),
                launched["status"].as_str().unwrap_or("unknown").replace('_', " "),
                args.at
            );
            Ok(())
        }
    }
}

async fn write_html_report(target: &Target, path: &std::path::Path, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = target.checked_id()?;
    let body = admin.get_text(&format!("/v1/campaigns/{id}/report?format=html")).await?;
    std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(())
}
