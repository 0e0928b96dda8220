//! The campaign report against the events fed: a seeded campaign of 10,000
//! recipients (send-ledger rows settled as sent, as the sender leaves them),
//! provider events of every kind with repeats and strangers, then the JSON
//! report's counts and the HTML report in headless Chromium.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use carepost::app::App;
use carepost::domain::{CampaignId, ContactId, MailEvent, ProviderMessageId, ShardProgress};
use carepost::ports::{ClaimOutcome, LedgerState};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::helpers::{TestApp, carepost_binary, everyone, spawn_app, spawn_app_with};

const RECIPIENTS: usize = 10_000;
const PERSON: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15";
const PROXY: &str = "Mozilla/5.0 (via ggpht.com GoogleImageProxy)";

/// What the provider reports for recipient `i`, as SES event JSON (SNS-wrapped
/// for even `i`, EventBridge-shaped for odd), in the order SES would send them.
fn events_for(i: usize, message_id: &str) -> Vec<String> {
    let event = |kind: &str, extra: Value| {
        let mut e = json!({"eventType": kind, "mail": {"messageId": message_id, "destination": ["x@example.org"]}});
        e.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        if i.is_multiple_of(2) {
            json!({"Type": "Notification", "Message": e.to_string()}).to_string()
        } else {
            json!({"detail-type": "SES event", "source": "aws.ses", "detail": e}).to_string()
        }
    };
    let mut out = vec![event("Send", json!({}))];
    match i % 20 {
        0 => out.push(event("Bounce", json!({"bounce": {"bounceType": "Permanent"}}))),
        10 => out.push(event("Bounce", json!({"bounce": {"bounceType": "Transient"}}))),
        _ => {
            out.push(event("Delivery", json!({"delivery": {}})));
            if i.is_multiple_of(3) {
                out.push(event("Open", json!({"open": {"userAgent": PERSON, "ipAddress": "192.0.2.1"}})));
            }
            if i.is_multiple_of(7) {
                out.push(event("Open", json!({"open": {"userAgent": PROXY, "ipAddress": "192.0.2.2"}})));
            }
            if i.is_multiple_of(9) {
                out.push(event("Click", json!({"click": {"userAgent": PERSON, "link": "https://clinic.example/"}})));
            }
            if i % 1000 == 1 {
                out.push(event("Complaint", json!({"complaint": {}})));
            }
            // SES delivers at least once: some deliveries arrive twice.
            if i % 100 == 5 {
                out.push(event("Delivery", json!({"delivery": {}})));
            }
        }
    }
    out
}

/// A campaign with `RECIPIENTS` sent messages, as fan-out and the sender leave it.
async fn seeded_campaign(app: &App, client: &super::helpers::Client) -> (CampaignId, Vec<String>) {
    let id = client.create_campaign("wellness-tips", everyone()).await;
    let campaign = CampaignId::parse(&id).unwrap();
    let progress = ShardProgress {
        shard: 0,
        done: true,
        evaluated: RECIPIENTS as u64,
        emitted: RECIPIENTS as u64,
        ..Default::default()
    };
    app.ports.campaigns.save_shard(&campaign, &progress).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let mut message_ids = Vec::with_capacity(RECIPIENTS);
    for i in 0..RECIPIENTS {
        let contact = ContactId::new_random();
        let ClaimOutcome::Claimed { attempt } =
            app.ports.ledger.claim(&campaign, &contact, now, std::time::Duration::from_secs(60)).await.unwrap()
        else {
            panic!("fresh claim")
        };
        let message_id = format!("0100019a-seeded-{i:05}");
        let sent = LedgerState::Sent { provider_message_id: ProviderMessageId::new(message_id.clone()) };
        app.ports.ledger.settle(&campaign, &contact, attempt, &sent).await.unwrap();
        message_ids.push(message_id);
    }
    (campaign, message_ids)
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Expected {
    delivered: u64,
    bounced_hard: u64,
    bounced_soft: u64,
    complained: u64,
    opened: u64,
    opened_machine: u64,
    clicked: u64,
    duplicates: u64,
}

#[tokio::test]
async fn report_counts_equal_the_events_fed_on_ten_thousand_recipients_and_the_html_report_draws_its_funnel() {
    let TestApp { client, stack, _dir } = spawn_app().await;
    let app = &stack.app;
    let (campaign, message_ids) = seeded_campaign(app, &client).await;
    let mut expected = Expected::default();
    let mut seen = HashSet::new();
    let started = Instant::now();
    let mut fed = 0usize;

    for (i, message_id) in message_ids.iter().enumerate() {
        for body in events_for(i, message_id) {
            let event = MailEvent::parse(&body).expect("an SES event");
            let key = (i, format!("{:?}{}", event.kind, event.machine));
            if event.kind != carepost::domain::MailEventKind::Send {
                if !seen.insert(key) {
                    expected.duplicates += 1;
                } else {
                    match (event.kind, event.machine) {
                        (carepost::domain::MailEventKind::Delivery, _) => expected.delivered += 1,
                        (carepost::domain::MailEventKind::Bounce(carepost::domain::BounceKind::Permanent), _) => {
                            expected.bounced_hard += 1
                        }
                        (carepost::domain::MailEventKind::Bounce(_), _) => expected.bounced_soft += 1,
                        (carepost::domain::MailEventKind::Complaint, _) => expected.complained += 1,
                        (carepost::domain::MailEventKind::Open, false) => expected.opened += 1,
                        (carepost::domain::MailEventKind::Open, true) => expected.opened_machine += 1,
                        (carepost::domain::MailEventKind::Click, _) => expected.clicked += 1,
                        _ => unreachable!(),
                    }
                }
            }
            app.events.process(&event).await.expect("applied");
            fed += 1;
        }
    }
    // Events for messages nobody sent are dropped, not counted.
    for stranger in 0..25 {
        let body = json!({"eventType": "Delivery", "mail": {"messageId": format!("unknown-{stranger}")}}).to_string();
        app.events.process(&MailEvent::parse(&body).unwrap()).await.unwrap();
    }
    eprintln!("{fed} events applied in {:.1} s", started.elapsed().as_secs_f64());

    let report = client.report(&campaign.to_string()).await;
    let (status, via_report_path) =
        client.admin(reqwest::Method::GET, &format!("/v1/campaigns/{campaign}/report"), None).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(via_report_path["delivered"], report["delivered"]);
    let count = |k: &str| report[k].as_u64().unwrap();
    let actual = Expected {
        delivered: count("delivered"),
        bounced_hard: count("bounced_hard"),
        bounced_soft: count("bounced_soft"),
        complained: count("complained"),
        opened: count("opened"),
        opened_machine: count("opened_machine"),
        clicked: count("clicked"),
        duplicates: count("duplicate_events"),
    };
    assert_eq!(actual, expected);
    assert_eq!((count("audience"), count("sent")), (RECIPIENTS as u64, RECIPIENTS as u64));
    let delivered = expected.delivered as f64;
    assert_eq!(
        report["rates"]["open"].as_f64().unwrap(),
        (expected.opened as f64 * 10_000.0 / delivered).round() / 100.0
    );
    let timeline_delivered: u64 =
        report["timeline"].as_array().unwrap().iter().filter_map(|h| h["delivered"].as_u64()).sum();
    assert_eq!(timeline_delivered, expected.delivered, "the hourly breakdown adds up to the total");

    screenshot_shows_the_funnel(&client, &campaign, _dir.path()).await;
}

/// `carepost campaign report --html`, opened in headless Chromium (Debian's
/// package): the screenshot's funnel bars are drawn in their colour.
async fn screenshot_shows_the_funnel(client: &super::helpers::Client, campaign: &CampaignId, dir: &Path) {
    let page = dir.join("report.html");
    let written = tokio::process::Command::new(carepost_binary())
        .args(["campaign", "report", &campaign.to_string(), "--html"])
        .arg(&page)
        .args(["--url", &client.base, "--token", &client.token])
        .output()
        .await
        .expect("the carepost binary runs");
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("id=\"funnel\"") && !html.contains("https://"), "self-contained");

    let shot = dir.join("report.png");
    let chromium = std::env::var("CAREPOST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let output = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1000,1100",
        ])
        .arg(format!("--user-data-dir={}", dir.join("chromium-profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .await
        .unwrap_or_else(|e| panic!("{chromium} cannot run ({e}): make test installs Debian's chromium"));
    assert!(shot.exists(), "no screenshot: {}", String::from_utf8_lossy(&output.stderr));
    if let Ok(keep) = std::env::var("CAREPOST_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("screenshot kept");
    }

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    let close = |px: &[u8], rgb: [u8; 3]| px[..3].iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 8);
    let (bar, delivered_line) = ([0x1f, 0x5f, 0xbf], [0x1a, 0x7f, 0x37]);
    let (mut count, mut min_x, mut max_x, mut line) = (0usize, usize::MAX, 0usize, 0usize);
    for (i, px) in pixels[..frame.buffer_size()].chunks(channels).enumerate() {
        if close(px, bar) {
            count += 1;
            let x = i % frame.width as usize;
            min_x = min_x.min(x);
            max_x = max_x.max(x);
        }
        line += usize::from(close(px, delivered_line));
    }
    assert!(count > 20_000, "the funnel's bars are drawn ({count} bar pixels)");
    assert!(max_x - min_x > 500, "the audience bar spans the chart ({min_x}..{max_x})");
    assert!(line > 500, "the timeline's delivered line is drawn ({line} pixels)");
}

/// `carepost campaign …` against the test stack; its standard output.
async fn cli(client: &super::helpers::Client, args: &[&str]) -> String {
    let output = tokio::process::Command::new(carepost_binary())
        .args(args)
        .args(["--url", &client.base, "--token", &client.token])
        .output()
        .await
        .expect("the carepost binary runs");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn a_small_campaign_reads_fewer_than_eleven_in_every_view_and_its_html_report_fits_a_phone() {
    let test = spawn_app_with(|c| c.knobs.min_cell_size = 11).await;
    let c = &test.client;
    let patients = carepost::synthetic::generate(4, 7);
    for p in &patients {
        assert_eq!(c.sign_up(p, &["wellness-tips"]).await.status(), StatusCode::ACCEPTED);
    }
    let emails: Vec<&str> = patients.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(c.confirm(&emails).await, 4);
    let campaign = c.create_campaign("wellness-tips", everyone()).await;
    let (_, estimate) = c.admin(reqwest::Method::POST, &format!("/v1/campaigns/{campaign}/dry-run"), None).await;
    c.launch(&campaign).await;
    let report = c.wait_completed(&campaign, std::time::Duration::from_secs(60)).await.unwrap();
    let (_, list) = c.admin(reqwest::Method::GET, "/v1/campaigns", None).await;

    let few = json!("fewer than 11");
    assert_eq!(estimate["included"], few, "the estimate: {estimate}");
    assert_eq!(list["campaigns"][0]["audience"], few, "the campaign list: {list}");
    for key in ["audience", "sent"] {
        assert_eq!(report[key], few, "the report's {key}: {report}");
    }
    assert_eq!(report["remaining"], 0, "zero is not a small cell");
    assert_eq!(report["rates"]["delivery"], Value::Null, "a rate over a small cell is withheld");
    assert!(report["timeline"].as_array().unwrap().iter().all(|h| h["sent"] == few || h["sent"] == 0), "{report}");
    let table = cli(c, &["campaign", "report", &campaign]).await;
    let rows: Vec<String> = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert!(rows.iter().any(|r| r == "sent fewer than 11"), "the CLI table:\n{table}");
    assert!(rows.iter().any(|r| r == "delivery - delivered / sent"), "{table}");
    let shown = cli(c, &["campaign", "show", &campaign]).await;
    assert!(shown.contains("fewer than 11") && shown.contains("wellness-tips"), "campaign show:\n{shown}");

    let page = test._dir.path().join("small-report.html");
    cli(c, &["campaign", "report", &campaign, "--html", page.to_str().unwrap()]).await;
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("fewer than 11") && !html.contains(">4<") && !html.contains("(100.0%)"), "{html}");
    for (width, name) in [("375", "report-375.png"), ("1280", "report-1280.png")] {
        let shot = test._dir.path().join(name);
        let url = format!("file://{}", page.display());
        let seen = super::browser::browser(&["screenshot", &url, shot.to_str().unwrap(), width]).await;
        assert!(shot.exists(), "{seen}");
        let scroll = seen["scroll_width"].as_u64().unwrap();
        assert!(scroll <= width.parse::<u64>().unwrap(), "the page is {scroll} px wide at {width} px: {seen}");
        if let Ok(dir) = std::env::var("CAREPOST_KEEP_SCREENSHOTS") {
            std::fs::copy(&shot, Path::new(&dir).join(name)).expect("screenshot kept");
        }
    }
}
