//! `carepost bench send`: the sending rate and the render + MIME cost.
//!
//! `--senders` send workers, each with its own `App` and rate limiter at its
//! share of `--rate` (`RateShare::per_sender`, exactly as one Lambda instance
//! of `SenderMaxConcurrency` has), take jobs from one embedded send queue and
//! hand messages to a local sink that records when each arrived. The sink is
//! the measuring point: it sees what a provider would see.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use carepost::app::{App, Ports};
use carepost::config::{RateShare, Throughput};
use carepost::domain::{
    CampaignId, Contact, ContactId, EmailAddress, FanoutShardJob, Profile, ProviderMessageId, SendJob, TemplateSource,
    today_utc,
};
use carepost::mail::{CompiledTemplate, MailingList, MessageParts, build_message, message_id};
use carepost::ports::{MailTransport, OutgoingMail, Queue, TransportError};
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

#[derive(Args, Debug, Clone)]
pub struct SendBenchArgs {
    /// SendRatePerSecond.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// SenderMaxConcurrency: concurrent senders, each with its own limiter.
    #[arg(long, default_value_t = 4)]
    pub senders: u32,
    /// Length of the measured run.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Messages rendered and built to measure the render + MIME cost.
    #[arg(long, default_value_t = 20_000)]
    pub render_iterations: u32,
}

/// A provider stand-in that records when each message was handed over.
#[derive(Default)]
struct RecordingSink {
    arrivals: Mutex<Vec<Instant>>,
}

#[async_trait]
impl MailTransport for RecordingSink {
    async fn send(&self, mail: &OutgoingMail) -> Result<ProviderMessageId, TransportError> {
        self.arrivals.lock().expect("sink lock").push(Instant::now());
        Ok(ProviderMessageId::new(mail.message_id.clone()))
    }
}

fn bar(len: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_owned());
    pb
}

fn template() -> TemplateSource {
    TemplateSource {
        subject: "Your autumn wellness check-in".into(),
        preheader: Some("A good time for a visit".into()),
        html: "<p>Hello {{ first_name | default('there') }},</p><p>It is a good time for a check-in.</p>\
               <p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>"
            .into(),
        text: "Hello {{ first_name | default('there') }},\n\nIt is a good time for a check-in.\n\n\
               Unsubscribe: {{ unsubscribe_url }}\n"
            .into(),
    }
}

async fn seed(app: &App, patients: usize) -> anyhow::Result<()> {
    let pb = bar(patients as u64, "seeding");
    for i in 0..patients {
        carepost::synthetic::sign_up_directly(app, &format!("bench.{i}@example.org"), "wellness-tips", true).await?;
        pb.inc(1);
    }
    pb.finish();
    Ok(())
}

async fn fan_out(app: &App, queue: &dyn Queue) -> anyhow::Result<()> {
    loop {
        let batch = queue.receive(10, Duration::from_millis(100)).await?;
        if batch.is_empty() {
            return Ok(());
        }
        for message in batch {
            app.fanout.process_shard(&FanoutShardJob::parse(message.body.expose())?, None).await?;
            queue.delete(&message.receipt_handle).await?;
        }
    }
}

/// One sender: batches of ten until told to stop (between two jobs).
async fn sender(app: Arc<App>, queue: Arc<dyn Queue>, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    while !stop.load(Ordering::Relaxed) {
        for message in queue.receive(10, Duration::from_millis(200)).await? {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            app.sender
                .process(&SendJob::parse(message.body.expose())?)
                .await
                .map_err(|e| anyhow::anyhow!("send: {e}"))?;
            queue.delete(&message.receipt_handle).await?;
        }
    }
    Ok(())
}

/// Sends per whole second, counted from the first arrival.
fn per_second(arrivals: &[Instant]) -> Vec<usize> {
    let Some(first) = arrivals.first().copied() else { return Vec::new() };
    let last = arrivals.last().copied().unwrap_or(first);
    let whole = (last - first).as_secs() as usize;
    let mut windows = vec![0usize; whole];
    for at in arrivals {
        let i = (*at - first).as_secs() as usize;
        if i < whole {
            windows[i] += 1;
        }
    }
    windows
}

fn render_cost(iterations: u32) -> anyhow::Result<Duration> {
    let compiled = CompiledTemplate::compile(&template())?;
    let contact = Contact {
        id: ContactId::new_random(),
        external_id: None,
        email: EmailAddress::parse("bench.render@example.org")?,
        profile: Profile { first_name: Some("Alex".into()), ..Profile::default() },
    };
    let sender = carepost::domain::Sender {
        name: "Carepost Bench Clinic".into(),
        address: EmailAddress::parse("news@clinic.example")?,
    };
    let (campaign, today) = (CampaignId::new_random(), today_utc());
    let url = "https://mail.clinic.example/u/c2lnbmVkLXRva2Vu";
    let started = Instant::now();
    for _ in 0..iterations {
        let rendered = compiled.render(&contact, url, Some("1 Main Street, Springfield"), today)?;
        let message_id = message_id(&format!("{campaign}.{}", contact.id), &sender);
        let raw = build_message(MessageParts {
            from: &sender,
            to: &contact.email,
            subject: &rendered.subject,
            message_id: &message_id,
            list: Some(MailingList { unsubscribe_url: url, category: "bench", campaign_id: campaign.to_string() }),
            text: rendered.text,
            html: rendered.html,
            tls_optional: false,
        })?;
        std::hint::black_box(raw);
    }
    Ok(started.elapsed() / iterations.max(1))
}

pub async fn run(args: SendBenchArgs) -> anyhow::Result<()> {
    let throughput = Throughput {
        send_rate_per_second: args.rate,
        sender_max_concurrency: args.senders,
        visibility_timeout_seconds: 300,
        ..Throughput::default()
    };
    throughput.validate()?;
    let dir = tempfile::tempdir()?;
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse()?;
    config.run_workers = false;
    config.knobs = throughput.into();
    let stack = EmbeddedStack::start(config).await?;
    let patients = (u64::from(args.rate) * args.seconds * 6 / 5 + 50) as usize;
    seed(&stack.app, patients).await?;
    let input = serde_json::from_value(json!({
        "name": "Send bench", "category": "wellness-tips", "phi_personalized": true, "purpose": "treatment",
        "segment": {"not": {"exists": {"attr": "conditions"}}}, "template": template()
    }))?;
    let campaign = stack.app.campaigns.create(input).await?;
    stack.app.lifecycle.launch(&campaign).await?;
    fan_out(&stack.app, stack.fanout_queue.as_ref()).await?;

    let sink = Arc::new(RecordingSink::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.senders {
        let ports = Ports { transport: sink.clone(), ..stack.app.ports.clone() };
        let app = Arc::new(App::new(
            ports,
            stack.app.envelope.clone(),
            stack.app.keyring.clone(),
            stack.app.settings.clone(),
            RateShare::per_sender(&throughput),
        ));
        let queue: Arc<dyn Queue> = stack.send_queue.clone();
        tasks.spawn(sender(app, queue, stop.clone()));
    }
    let pb = bar(args.seconds, "sending");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        pb.set_position(started.elapsed().as_secs().min(args.seconds));
        pb.set_message(format!("{} sent", sink.arrivals.lock().expect("sink lock").len()));
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    pb.finish();

    let arrivals = sink.arrivals.lock().expect("sink lock").clone();
    let windows = per_second(&arrivals);
    let measured: usize = windows.iter().sum();
    let rate = measured as f64 / windows.len().max(1) as f64;
    let deviation = (rate - f64::from(args.rate)) / f64::from(args.rate) * 100.0;
    let (max, min) = (windows.iter().max().copied().unwrap_or(0), windows.iter().min().copied().unwrap_or(0));
    let ceiling = (f64::from(args.rate) * 1.1).floor() as usize;
    let per_email = render_cost(args.render_iterations)?;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };

    println!("Send rate: SendRatePerSecond {}, {} senders, {} s", args.rate, args.senders, args.seconds);
    println!("  sent            {} in {} whole seconds ({} in all)", measured, windows.len(), arrivals.len());
    println!(
        "  mean rate       {rate:.2}/s  ({deviation:+.2} % of target; goal within 3 %: {})",
        verdict(deviation.abs() <= 3.0)
    );
    println!("  busiest second  {max}  (goal at most {ceiling}: {})", verdict(max <= ceiling));
    println!("  quietest second {min}");
    println!(
        "Render + MIME    {:.1} µs per email on one core over {} emails  (goal under 50 µs: {})",
        per_email.as_secs_f64() * 1e6,
        args.render_iterations,
        verdict(per_email < Duration::from_micros(50))
    );
    stack.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_counted_per_whole_second_from_the_first() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let arrivals = [at(0), at(10), at(999), at(1000), at(1500), at(2100), at(2200)];
        assert_eq!(per_second(&arrivals), vec![3, 2], "the partial third second is left out");
    }
}
