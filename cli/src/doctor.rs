//! `carepost doctor`: is this AWS account ready to send a stack's mail?
//! What to check comes from the stack (`--stack`, or a target naming one):
//! its `SenderDomain` and `SendRatePerSecond` parameters and its
//! `ConfigurationSetName` output; each can be given as a flag instead.
//! Exit status 1 when something must be fixed.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use carepost::adapters::aws::ses_account::SesAccount;
use carepost::adapters::dns::DnsTxt;
use carepost::app::doctor::{Doctor, Finding, SendingTarget, Verdict};
use carepost::ports::TxtRecords;
use clap::Args;

use crate::client::{ConnectionArgs, Output, describe_stack};
use crate::table;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The sending domain (default: the stack's SenderDomain parameter).
    #[arg(long, value_name = "DOMAIN")]
    pub sender_domain: Option<String>,
    /// The SES configuration set (default: the stack's ConfigurationSetName output).
    #[arg(long, value_name = "NAME")]
    pub configuration_set: Option<String>,
    /// The messages per second to check against the account's quota (default: the stack's SendRatePerSecond).
    #[arg(long, value_name = "N")]
    pub send_rate: Option<u32>,
    /// A DNS server for the DMARC lookup (default: the system's resolver).
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Option<SocketAddr>,
}

/// Some check found something to fix: exit status 1, the findings printed.
#[derive(Debug, thiserror::Error)]
#[error("{0} of the checks found something to fix")]
pub struct NeedsFixing(usize);

pub async fn run(args: DoctorArgs, connection: &ConnectionArgs) -> anyhow::Result<()> {
    let (config, stack) = connection.aws_account().await?;
    let target = sending_target(&args, &config, stack.as_deref()).await?;
    let dns: Arc<dyn TxtRecords> = match args.dns_server {
        Some(server) => Arc::new(DnsTxt::at(server)),
        None => Arc::new(DnsTxt::system().context("cannot read the system's DNS configuration; give --dns-server")?),
    };
    let findings = Doctor::new(Arc::new(SesAccount::new(&config)), dns).examine(&target).await;
    match connection.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))?),
        Output::Table => print!("{}", render(&target, &findings)),
    }
    let to_fix = findings.iter().filter(|f| f.verdict == Verdict::Fix).count();
    if to_fix > 0 { Err(NeedsFixing(to_fix).into()) } else { Ok(()) }
}

/// The flags, then the stack for what they leave out.
async fn sending_target(
    args: &DoctorArgs,
    config: &aws_config::SdkConfig,
    stack: Option<&str>,
) -> anyhow::Result<SendingTarget> {
    let (mut domain, mut set, mut rate) = (args.sender_domain.clone(), args.configuration_set.clone(), args.send_rate);
    if let Some(stack) = stack.filter(|_| domain.is_none() || set.is_none() || rate.is_none()) {
        let described = describe_stack(config, stack).await?;
        let parameter = |key: &str| {
            described.parameters().iter().find(|p| p.parameter_key() == Some(key)).and_then(|p| p.parameter_value())
        };
        let output =
            |key: &str| described.outputs().iter().find(|o| o.output_key() == Some(key)).and_then(|o| o.output_value());
        domain = domain.or_else(|| parameter("SenderDomain").filter(|d| !d.is_empty()).map(str::to_owned));
        set = set.or_else(|| output("ConfigurationSetName").map(str::to_owned));
        if rate.is_none() {
            rate =
                match parameter("SendRatePerSecond") {
                    Some(value) => Some(value.parse().with_context(|| {
                        format!("--stack {stack}: SendRatePerSecond is '{value}', not a whole number")
                    })?),
                    None => None,
                };
        }
    }
    let from = stack.map_or_else(|| "no --stack given".to_owned(), |s| format!("not in stack {s}"));
    let Some(sender_domain) = domain else { bail!("--sender-domain is needed ({from})") };
    let Some(configuration_set) = set else { bail!("--configuration-set is needed ({from})") };
    let Some(send_rate_per_second) = rate else { bail!("--send-rate is needed ({from})") };
    let sender_domain = sender_domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if sender_domain.is_empty() || sender_domain.contains(['@', ' ', '/']) {
        bail!("--sender-domain must be a domain name such as clinic.example");
    }
    Ok(SendingTarget { sender_domain, configuration_set, send_rate_per_second })
}

fn render(target: &SendingTarget, findings: &[Finding]) -> String {
    let rows: Vec<Vec<String>> =
        findings.iter().map(|f| vec![f.check.to_owned(), label(f.verdict).to_owned(), f.seen.clone()]).collect();
    let mut out = format!(
        "Sending {} through {} at {}/s\n\n",
        target.sender_domain, target.configuration_set, target.send_rate_per_second
    );
    out.push_str(&table::render(&["CHECK", "STATUS", "SEEN"], &rows));
    // One step per distinct fix, naming every check it answers.
    let mut steps: Vec<(Vec<&str>, &str)> = Vec::new();
    for f in findings.iter().filter(|f| f.verdict != Verdict::Ok) {
        let Some(fix) = f.fix.as_deref() else { continue };
        match steps.iter_mut().find(|(_, known)| *known == fix) {
            Some((checks, _)) => checks.push(f.check),
            None => steps.push((vec![f.check], fix)),
        }
    }
    if steps.is_empty() {
        out.push_str("\nNothing to fix.\n");
    } else {
        out.push_str("\nTo do:\n");
        for (n, (checks, fix)) in steps.iter().enumerate() {
            out.push_str(&format!("{}. {}: {fix}\n", n + 1, checks.join(", ")));
        }
    }
    out
}

fn label(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Ok => "ok",
        Verdict::Fix => "FIX",
        Verdict::Unknown => "unknown",
    }
}
