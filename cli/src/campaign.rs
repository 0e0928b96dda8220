//! `carepost campaign …`: operate a running campaign through the admin API
//! of a local stack (`carepost dev`), with its bearer token.

use std::path::PathBuf;

use anyhow::{Context, ensure};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Print the campaign's report (status, progress, exclusions, events,
    /// rates, hourly timeline), or write it as an HTML page with `--html`.
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
    #[command(flatten)]
    pub admin: AdminConnection,
}

/// Where the admin API of a running stack is, and its token.
#[derive(Args)]
pub struct AdminConnection {
    /// Base URL of the stack's admin API.
    #[arg(long, env = "CAREPOST_URL", default_value = "http://127.0.0.1:8787")]
    pub url: String,
    /// Admin bearer token; read from `<data dir>/admin-token` when not given.
    #[arg(long, env = "CAREPOST_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "CAREPOST_DATA_DIR", default_value = ".carepost")]
    pub data_dir: PathBuf,
}

impl AdminConnection {
    pub fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.token {
            return Ok(token.clone());
        }
        let path = self.data_dir.join("admin-token");
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("no --token given and {} cannot be read", path.display()))?;
        Ok(token.trim().to_owned())
    }

    /// GETs `path` (with query) from the admin API as JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.request_json(reqwest::Method::GET, path).await
    }

    /// Calls the admin API; a non-2xx answer is an error with its body.
    pub async fn request_json(&self, method: reqwest::Method, path: &str) -> anyhow::Result<Value> {
        self.send_json(method, path, None).await
    }

    /// Calls the admin API with an optional JSON body.
    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let mut request = reqwest::Client::new().request(method, &url).bearer_auth(self.token()?);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            request.send().await.with_context(|| format!("cannot reach {url}: is `carepost dev` running?"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{url} answered {status}: {body}");
        Ok(body)
    }
}

pub async fn run(command: CampaignCommand) -> anyhow::Result<()> {
    if let CampaignCommand::Report(ReportArgs { target, html: Some(path) }) = &command {
        return write_html_report(target, path).await;
    }
    if let CampaignCommand::Watch(target) = &command {
        return crate::watch::watch(target).await;
    }
    if let CampaignCommand::Estimate(target) = &command {
        return estimate(target).await;
    }
    let (method, action, target) = match &command {
        CampaignCommand::Report(r) => (reqwest::Method::GET, "/report", &r.target),
        CampaignCommand::Pause(t) => (reqwest::Method::POST, "/pause", t),
        CampaignCommand::Resume(t) => (reqwest::Method::POST, "/resume", t),
        CampaignCommand::RetryFailed(t) => (reqwest::Method::POST, "/retry-failed", t),
        CampaignCommand::Redrive(t) => (reqwest::Method::POST, "/redrive", t),
        CampaignCommand::Cancel(t) => (reqwest::Method::POST, "/cancel", t),
        CampaignCommand::Estimate(_) | CampaignCommand::Watch(_) => unreachable!("handled above"),
    };
    ensure!(uuid::Uuid::parse_str(&target.id).is_ok(), "'{}' is not a campaign ID", target.id);
    let body = target.admin.request_json(method, &format!("/v1/campaigns/{}{action}", target.id)).await?;
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

/// Calls the dry run until it is complete, carrying its resume token, with
/// a spinner counting the contacts judged; prints the finished estimate.
async fn estimate(target: &Target) -> anyhow::Result<()> {
    ensure!(uuid::Uuid::parse_str(&target.id).is_ok(), "'{}' is not a campaign ID", target.id);
    let path = format!("/v1/campaigns/{}/dry-run", target.id);
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template("{spinner} judging contacts: {pos} so far {elapsed}")?);
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut body = target.admin.send_json(reqwest::Method::POST, &path, None).await?;
    while body["complete"] == Value::Bool(false) {
        spinner.set_position(body["evaluated"].as_u64().unwrap_or(0));
        let resume = body["resume"].as_str().context("a partial estimate without a resume token")?.to_owned();
        body =
            target.admin.send_json(reqwest::Method::POST, &path, Some(&serde_json::json!({"resume": resume}))).await?;
    }
    spinner.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}

async fn write_html_report(target: &Target, path: &std::path::Path) -> anyhow::Result<()> {
    ensure!(uuid::Uuid::parse_str(&target.id).is_ok(), "'{}' is not a campaign ID", target.id);
    let url = format!("{}/v1/campaigns/{}/report?format=html", target.admin.url.trim_end_matches('/'), target.id);
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(target.admin.token()?)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}: is `carepost dev` running?"))?;
    let status = response.status();
    let body = response.text().await.context("reading the report")?;
    ensure!(status.is_success(), "{url} answered {status}: {body}");
    std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(())
}
