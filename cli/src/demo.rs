//! `carepost demo`: on a fresh local stack, synthetic patients sign up
//! through the real consent endpoint, most confirm, a personalized campaign
//! is created, launched and sent, provider events and one-click unsubscribes
//! are simulated, and a report is printed. Then it keeps serving like `dev`.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use carepost::config::Throughput;
use carepost::ports::Queue;
use carepost::runtime::EmbeddedStack;
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::args::StackArgs;
use carepost::synthetic::{self as patients, Patient};

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    pub stack: StackArgs,
    /// How many synthetic patients sign up.
    #[arg(long, default_value_t = 1000)]
    pub patients: usize,
    /// Seed for the synthetic population.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Stop after the report instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
    /// Keep an existing data directory instead of starting fresh.
    #[arg(long)]
    pub keep_data: bool,
}

/// The demo's own defaults: quick on a laptop, still rate-limited.
fn demo_throughput() -> Throughput {
    Throughput { send_rate_per_second: 400, sender_max_concurrency: 4, fanout_shards: 4, ..Throughput::default() }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{path} answered {status}: {body}");
        Ok(body)
    }
}

async fn write_html_report(client: &Client, campaign_id: &str, page: &Path) -> anyhow::Result<()> {
    let path = format!("/v1/campaigns/{campaign_id}/report?format=html");
    let response = client.http.get(format!("{}{path}", client.base)).bearer_auth(&client.token).send().await?;
    ensure!(response.status().is_success(), "{path} answered {}", response.status());
    std::fs::write(page, response.text().await?).with_context(|| format!("cannot write {}", page.display()))?;
    Ok(())
}

fn bar(len: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // Refused before anything starts: the demo reads the confirmations from the outbox.
    ensure!(
        args.stack.smtp_host.is_none(),
        "the demo reads its confirmation emails from the outbox, so it cannot use --smtp-host; \
         use `carepost dev --smtp-host …` to send through a relay"
    );
    if !args.keep_data && args.stack.data_dir.exists() {
        // Only a directory that looks like ours is removed.
        let ours = args.stack.data_dir.join("master.key").exists() || is_empty_dir(&args.stack.data_dir);
        ensure!(
            ours,
            "{} exists and is not a Carepost data directory; choose another --data-dir",
            args.stack.data_dir.display()
        );
        std::fs::remove_dir_all(&args.stack.data_dir)
            .with_context(|| format!("removing {}", args.stack.data_dir.display()))?;
    }
    let started = Instant::now();
    let mut config = args.stack.config(demo_throughput())?;
    if args.stack.consent_limit_per_ip_per_hour.is_none() {
        // Every synthetic patient signs up from this machine's one address.
        config.knobs.consent_limit_per_ip_per_hour = u32::MAX;
    }
    let stack = EmbeddedStack::start(config).await?;
    let client = Client {
        http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?,
        base: stack.base_url(),
        token: stack.admin_token.clone(),
    };
    println!("Carepost demo on {} (data in {})", client.base, args.stack.data_dir.display());
    let population = patients::generate(args.patients, args.seed);

    sign_up(&client, &population).await?;
    let outbox = stack.outbox_dir.clone().context("the demo needs the outbox transport (no --smtp-host)")?;
    confirmations_sent(&outbox, population.len()).await?;
    let confirmed = confirm(&client, &population, &outbox).await?;
    enrich(&client, &population).await?;
    let campaign_id = create_and_launch(&client).await?;
    follow(&client, &campaign_id).await?;
    let events = simulate_events(&stack, &outbox, &campaign_id).await?;
    let unsubscribed = unsubscribe_some(&client, &outbox, &campaign_id, 5).await?;
    wait_for_events(&stack).await?;
    let report = client.admin(reqwest::Method::GET, &format!("/v1/campaigns/{campaign_id}"), None).await?;
    print_report(&report, args.patients, confirmed, &events, unsubscribed);
    let page = args.stack.data_dir.join("report.html");
    write_html_report(&client, &campaign_id, &page).await?;
    println!("HTML report (funnel and timeline): {}", page.display());
    println!("Demo finished in {:.1}s. Messages are in {}", started.elapsed().as_secs_f64(), outbox.display());
    if args.exit {
        stack.shutdown().await;
        return Ok(());
    }
    crate::dev::print_urls(&stack);
    tokio::signal::ctrl_c().await?;
    stack.shutdown().await;
    Ok(())
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).map(|mut d| d.next().is_none()).unwrap_or(false)
}

async fn sign_up(client: &Client, population: &[Patient]) -> anyhow::Result<()> {
    let pb = bar(population.len() as u64, "sign-ups");
    let mut stream = futures::stream::iter(population.iter().map(|p| {
        let mut form: Vec<(&str, String)> = vec![
            ("form_id", "web-signup".into()),
            ("email", p.email.clone()),
            ("first_name", p.first_name.clone()),
            ("last_name", p.last_name.clone()),
            ("date_of_birth", p.date_of_birth.clone()),
            ("sex", p.sex.into()),
            ("zip", p.zip.clone()),
            ("language", p.language.into()),
            ("website", String::new()),
        ];
        form.extend(p.categories.iter().map(|c| ("categories", (*c).to_owned())));
        form.extend(p.conditions.iter().map(|c| ("conditions", (*c).to_owned())));
        let request = client
            .http
            .post(format!("{}/v1/consent", client.base))
            .header("user-agent", "carepost-demo-browser/1.0")
            // As a browser on the service's own example form would.
            .header("origin", client.base.as_str())
            .form(&form);
        async move { request.send().await }
    }))
    .buffer_unordered(8);
    while let Some(response) = stream.next().await {
        let response = response?;
        ensure!(response.status() == reqwest::StatusCode::SEE_OTHER, "consent answered {}", response.status());
        pb.inc(1);
    }
    pb.finish_with_message("received");
    Ok(())
}

struct Mail {
    to: String,
    message_id: String,
    text: String,
    list_unsubscribe: Option<String>,
}

fn read_mail(path: &Path) -> anyhow::Result<Mail> {
    let bytes = std::fs::read(path)?;
    let message = mail_parser::MessageParser::default().parse(&bytes).context("unparseable .eml")?;
    let to =
        message.to().and_then(|a| a.first()).and_then(|a| a.address()).context("message without recipient")?.to_owned();
    let list_unsubscribe = message
        .header_raw("List-Unsubscribe")
        .map(|v| v.trim().trim_start_matches('<').trim_end_matches('>').to_owned());
    Ok(Mail {
        to,
        message_id: format!("<{}>", message.message_id().unwrap_or_default()),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        list_unsubscribe,
    })
}

fn outbox_files(outbox: &Path, prefix: &str) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(outbox)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "eml")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Waits for the send worker to mail every sign-up its confirmation (the
/// endpoint only queues them), at most a minute.
async fn confirmations_sent(outbox: &Path, expected: usize) -> anyhow::Result<()> {
    let pb = bar(expected as u64, "emails");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let sent = outbox_files(outbox, "confirm-")?.len();
        pb.set_position(sent as u64);
        if sent >= expected {
            pb.finish_with_message("confirmations sent");
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "only {sent} of {expected} confirmation emails were sent within a minute");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn confirm(client: &Client, population: &[Patient], outbox: &Path) -> anyhow::Result<usize> {
    let by_email: HashMap<&str, &Patient> = population.iter().map(|p| (p.email.as_str(), p)).collect();
    let files = outbox_files(outbox, "confirm-")?;
    let pb = bar(files.len() as u64, "opt-ins");
    let mut confirmed = 0;
    for file in files {
        let mail = read_mail(&file)?;
        let patient = by_email.get(mail.to.as_str()).context("confirmation for an unknown patient")?;
        if patient.confirms {
            let link = mail
                .text
                .split_whitespace()
                .find(|w| w.contains("/confirm/"))
                .context("confirmation email without a link")?;
            // Like a person: open the page, then press its button (a POST).
            let page = client.http.get(link).send().await?;
            ensure!(page.status().is_success(), "confirmation page answered {}", page.status());
            let done = client.http.post(link).send().await?;
            ensure!(done.status().is_success(), "confirmation answered {}", done.status());
            confirmed += 1;
        }
        pb.inc(1);
    }
    pb.finish_with_message(format!("{confirmed} confirmed"));
    Ok(confirmed)
}

/// The clinic's CRM adds what a form does not know: journey stage, last visit.
async fn enrich(client: &Client, population: &[Patient]) -> anyhow::Result<()> {
    let pb = bar(population.len() as u64, "crm sync");
    for p in population {
        client
            .admin(
                reqwest::Method::PUT,
                &format!("/v1/contacts/{}", p.external_id()),
                Some(json!({
                    "email": p.email,
                    "attributes": {"journey_stage": p.journey_stage, "last_visit": p.last_visit, "conditions": p.conditions}
                })),
            )
            .await?;
        pb.inc(1);
    }
    pb.finish_with_message("updated");
    Ok(())
}

async fn create_and_launch(client: &Client) -> anyhow::Result<String> {
    let campaign = json!({
        "name": "Autumn wellness check-in",
        "category": "wellness-tips",
        "phi_personalized": true,
        "purpose": "treatment",
        "segment": {"all": [
            {"age": {"min": 40}},
            {"any": [
                {"in": {"attr": "conditions", "values": ["type-2-diabetes", "hypertension", "heart-failure"]}},
                {"within_days": {"attr": "last_visit", "days": 120}}
            ]}
        ]},
        "template": {
            "subject": "Your autumn wellness check-in",
            "html": "<p>Hello {{ first_name | default('there') }},</p><p>It is a good time for a check-in. \
                     Book a visit when it suits you.</p><p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>",
            "text": "Hello {{ first_name | default('there') }},\n\nIt is a good time for a check-in. \
                     Book a visit when it suits you.\n\nUnsubscribe: {{ unsubscribe_url }}\n"
        }
    });
    let created = client.admin(reqwest::Method::POST, "/v1/campaigns", Some(campaign)).await?;
    let id = created["id"].as_str().context("campaign without id")?.to_owned();
    client.admin(reqwest::Method::POST, &format!("/v1/campaigns/{id}/launch"), None).await?;
    Ok(id)
}

async fn follow(client: &Client, id: &str) -> anyhow::Result<()> {
    let fanout = bar(0, "fan-out");
    let sending = bar(0, "sending");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let r = client.admin(reqwest::Method::GET, &format!("/v1/campaigns/{id}"), None).await?;
        let n = |k: &str| r[k].as_u64().unwrap_or(0);
        fanout.set_length(n("shards_total"));
        fanout.set_position(n("shards_done"));
        fanout.set_message(format!("{} evaluated, {} in audience", n("evaluated"), n("audience")));
        sending.set_length(n("audience"));
        sending.set_position(n("sent") + n("skipped_at_send") + n("failed"));
        sending.set_message(format!("{} sent", n("sent")));
        if r["status"] == "completed" {
            break;
        }
        if Instant::now() > deadline {
            bail!("campaign did not complete within 5 minutes: {r}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    fanout.finish();
    sending.finish();
    Ok(())
}

#[derive(Default)]
struct EventCounts {
    delivered: u64,
    hard_bounces: u64,
    soft_bounces: u64,
    complaints: u64,
    opens: u64,
    machine_opens: u64,
    clicks: u64,
}

/// A mail client a person reads with, and Gmail's image proxy.
const READER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)";
const IMAGE_PROXY: &str = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

/// SES-shaped events, as event publishing would deliver them. Like all our
/// queue messages they carry IDs only: no recipient address or headers.
fn ses_event(kind: &str, message_id: &str, extra: Value) -> String {
    let mut event = json!({"eventType": kind, "mail": {"messageId": message_id, "timestamp": "2026-11-23T10:00:00Z"}});
    if let (Some(e), Some(x)) = (event.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    event.to_string()
}

async fn simulate_events(stack: &EmbeddedStack, outbox: &Path, campaign_id: &str) -> anyhow::Result<EventCounts> {
    let files = outbox_files(outbox, campaign_id)?;
    let pb = bar(files.len() as u64, "events");
    let mut counts = EventCounts::default();
    let mut batch = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mail = read_mail(file)?;
        let id = mail.message_id.as_str();
        match i % 100 {
            0 | 1 => {
                counts.hard_bounces += 1;
                batch.push(ses_event(
                    "Bounce",
                    id,
                    json!({"bounce": {"bounceType": "Permanent", "bounceSubType": "General"}}),
                ));
            }
            2 => {
                counts.soft_bounces += 1;
                batch.push(ses_event(
                    "Bounce",
                    id,
                    json!({"bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull"}}),
                ));
            }
            3 => {
                counts.delivered += 1;
                counts.complaints += 1;
                batch.push(ses_event("Delivery", id, json!({})));
                batch.push(ses_event("Complaint", id, json!({"complaint": {"complaintFeedbackType": "abuse"}})));
            }
            n => {
                counts.delivered += 1;
                batch.push(ses_event("Delivery", id, json!({})));
                if n % 5 < 2 {
                    counts.opens += 1;
                    batch.push(ses_event("Open", id, json!({"open": {"userAgent": READER}})));
                    if n % 5 == 0 {
                        counts.clicks += 1;
                        batch.push(ses_event("Click", id, json!({"click": {"userAgent": READER, "linkTags": {}}})));
                    }
                } else if n % 5 == 4 {
                    counts.machine_opens += 1;
                    batch.push(ses_event("Open", id, json!({"open": {"userAgent": IMAGE_PROXY}})));
                }
            }
        }
        if batch.len() >= 50 {
            stack.events_queue.send_batch(&batch).await?;
            batch.clear();
        }
        pb.inc(1);
    }
    stack.events_queue.send_batch(&batch).await?;
    pb.finish_with_message("published");
    Ok(counts)
}

async fn unsubscribe_some(client: &Client, outbox: &Path, campaign_id: &str, how_many: usize) -> anyhow::Result<u64> {
    let mut done = 0;
    // Patients in the middle of the list, away from the simulated bounces.
    for file in outbox_files(outbox, campaign_id)?.iter().skip(10).step_by(7).take(how_many) {
        let mail = read_mail(file)?;
        let url = mail.list_unsubscribe.context("campaign email without List-Unsubscribe")?;
        // What a mailbox provider does for RFC 8058 one-click.
        let response = client
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await?;
        ensure!(response.status() == reqwest::StatusCode::OK, "one-click unsubscribe answered {}", response.status());
        done += 1;
    }
    Ok(done)
}

async fn wait_for_events(stack: &EmbeddedStack) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.events_queue.depth().await?.0 > 0 {
        ensure!(Instant::now() < deadline, "events were not processed within a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn print_report(r: &Value, patients: usize, confirmed: usize, events: &EventCounts, unsubscribed: u64) {
    // Counts and rates as the API reports them: the small-cell rule and one
    // definition of each rate (docs/reports.md), not recomputed here.
    let n = |k: &str| crate::table::count(&r[k]);
    let x = |k: &str| crate::table::count(&r["excluded"][k]);
    let rate = |k: &str| crate::table::rate(&r["rates"][k]);
    println!();
    println!("Campaign report: {} ({})", r["name"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or(""));
    println!("  patients signed up        {patients:>6}   confirmed {confirmed}");
    println!("  contacts evaluated        {:>6}", n("evaluated"));
    println!("  audience                  {:>6}", n("audience"));
    println!("  excluded by reason");
    println!("    not in segment          {:>6}", x("not_in_segment"));
    println!("    no consent for category {:>6}", x("no_consent"));
    println!("    consent not confirmed   {:>6}", x("consent_pending"));
    println!("    consent withdrawn       {:>6}", x("consent_withdrawn"));
    println!("    suppressed              {:>6}", x("suppressed"));
    println!("  sent                      {:>6}", n("sent"));
    println!("  delivered                 {:>6}  {} of sent", n("delivered"), rate("delivery"));
    println!("  bounced hard / soft       {:>6} / {}", n("bounced_hard"), n("bounced_soft"));
    println!("  complained                {:>6}  {} of delivered", n("complained"), rate("complaint"));
    println!("  opened by people          {:>6}  {} of delivered", n("opened"), rate("open"));
    println!("  opened by machines only   {:>6}", n("opened_machine"));
    println!("  clicked                   {:>6}  {} of delivered", n("clicked"), rate("click"));
    println!("  unsubscribed (one-click)  {:>6}", n("unsubscribed"));
    println!(
        "  simulated: {} deliveries, {} hard + {} soft bounces, {} complaints, {} opens (+{} by an image proxy), {} clicks, \
         {unsubscribed} unsubscribes",
        events.delivered,
        events.hard_bounces,
        events.soft_bounces,
        events.complaints,
        events.opens,
        events.machine_opens,
        events.clicks
    );
}
