//! `carepost doctor` against an account on moto: the stack's parameters
//! and outputs from CloudFormation, the identity and configuration set from
//! SES v2, the DMARC record from a local DNS server (`support/dns_zone.py`).
//! moto answers GetEmailIdentity (never verified; DKIM as created, no MAIL
//! FROM) and GetConfigurationSet; the checks it does not serve must say
//! "unknown", never pass.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::Context;
use aws_sdk_cloudformation::types::Parameter;
use aws_sdk_sesv2::types::{DeliveryOptions, DkimSigningAttributes, DkimSigningKeyLength, TlsPolicy};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::harness::sdk;
use crate::e2e::helpers::carepost_binary;

/// A stack as CloudFormation describes a Carepost one, for what doctor reads.
const STACK_TEMPLATE: &str = r#"{
  "Parameters": {
    "SenderDomain": {"Type": "String"},
    "SendRatePerSecond": {"Type": "Number"},
    "ConfigSet": {"Type": "String"}
  },
  "Resources": {"Events": {"Type": "AWS::SNS::Topic"}},
  "Outputs": {"ConfigurationSetName": {"Value": {"Ref": "ConfigSet"}}}
}"#;

struct Account {
    stack: String,
    domain: String,
    set: String,
}

async fn account(tls: TlsPolicy, dkim: bool, send_rate: &str) -> anyhow::Result<Account> {
    let config = sdk().await;
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let account = Account {
        stack: format!("carepost-{tag}"),
        domain: format!("clinic-{tag}.example"),
        set: format!("carepost-mail-{tag}"),
    };
    let ses = aws_sdk_sesv2::Client::new(&config);
    ses.create_configuration_set()
        .configuration_set_name(&account.set)
        .delivery_options(DeliveryOptions::builder().tls_policy(tls).build())
        .send()
        .await?;
    let mut identity = ses.create_email_identity().email_identity(&account.domain);
    if dkim {
        identity = identity.dkim_signing_attributes(
            DkimSigningAttributes::builder().next_signing_key_length(DkimSigningKeyLength::Rsa2048Bit).build(),
        );
    }
    identity.send().await?;
    let parameter = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&account.stack)
        .template_body(STACK_TEMPLATE)
        .parameters(parameter("SenderDomain", &account.domain))
        .parameters(parameter("SendRatePerSecond", send_rate))
        .parameters(parameter("ConfigSet", &account.set))
        .send()
        .await?;
    Ok(account)
}

struct Dns {
    _child: tokio::process::Child,
    server: String,
}

async fn dns(records: &[String]) -> anyhow::Result<Dns> {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/dns_zone.py");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args(records)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await??.context("dns exited")?;
    let server = line.strip_prefix("listening on ").context("the DNS server's first line")?.to_owned();
    Ok(Dns { _child: child, server })
}

async fn doctor(args: &[&str]) -> Output {
    tokio::process::Command::new(carepost_binary())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .await
        .expect("the carepost binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// The verdict of each check, from `--output json`.
fn verdicts(output: &Output) -> std::collections::BTreeMap<String, String> {
    let json: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)));
    json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| (f["check"].as_str().unwrap().to_owned(), f["verdict"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn doctor_reads_the_stack_and_reports_what_moto_answers_with_the_fixes_to_make() {
    let account = account(TlsPolicy::Require, true, "10").await.unwrap();
    let dns = dns(&[format!("_dmarc.{}=v=DMARC1; p=quarantine; adkim=s", account.domain)]).await.unwrap();

    let table = doctor(&["--stack", &account.stack, "doctor", "--dns-server", &dns.server]).await;
    let json = doctor(&["--stack", &account.stack, "--output", "json", "doctor", "--dns-server", &dns.server]).await;

    let out = text(&table);
    assert_eq!(table.status.code(), Some(1), "moto never verifies an identity: {out}");
    assert!(out.contains(&format!("Sending {} through {} at 10/s", account.domain, account.set)), "{out}");
    assert!(out.contains("To do:") && out.contains("SenderDkimRecord1-3"), "{out}");
    let seen = verdicts(&json);
    assert_eq!(seen["identity"], "fix", "{seen:?}");
    assert_eq!(seen["DKIM"], "ok", "{seen:?}");
    assert_eq!(seen["MAIL FROM"], "fix", "moto keeps no MAIL FROM: {seen:?}");
    assert_eq!(seen["TLS policy"], "ok", "{seen:?}");
    assert_eq!(seen["DMARC"], "ok", "{seen:?}");
    for check in ["production access", "send rate", "event destination"] {
        assert_ne!(seen[check], "ok", "{check} is not served by moto, so it cannot pass: {seen:?}");
    }
}

#[tokio::test]
async fn doctor_names_an_optional_tls_policy_a_missing_identity_and_a_missing_dmarc_record() {
    let account = account(TlsPolicy::Optional, false, "10").await.unwrap();
    let dns = dns(&["_dmarc.elsewhere.example=v=DMARC1; p=reject".to_owned()]).await.unwrap();
    let other_domain = format!("unknown-{}", account.domain);

    let output = doctor(&[
        "doctor",
        "--sender-domain",
        &other_domain,
        "--configuration-set",
        &account.set,
        "--send-rate",
        "5",
        "--dns-server",
        &dns.server,
    ])
    .await;

    let out = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("--tls-policy REQUIRE"), "{out}");
    assert!(out.contains(&format!("no SES identity for {other_domain}")), "{out}");
    assert!(out.contains(&format!("no DMARC record at _dmarc.{other_domain}")), "{out}");
    assert!(out.contains("CreateSenderIdentity=true"), "{out}");
}

#[tokio::test]
async fn doctor_without_a_stack_names_the_flag_it_needs() {
    let output = doctor(&["doctor", "--sender-domain", "clinic.example"]).await;

    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("--configuration-set is needed (no --stack given)"), "{}", text(&output));
}
