//! Shared helpers: an in-process stack (`spawn_app`), an HTTP client that
//! plays patients and admins, the `carepost` binary for tests that kill it,
//! and the PHI probes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use carepost::config::Throughput;
use carepost::runtime::{EmbeddedConfig, EmbeddedStack};
use carepost::synthetic::Patient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

/// A client for one running stack, in-process or a separate process.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub outbox: PathBuf,
    /// The Origin a browser on the service's own example form sends.
    pub origin: String,
    /// An in-process stack's send queue: consent requests are finished by
    /// its worker, so `sign_up` waits until the queue is empty.
    pub send_queue: Option<std::sync::Arc<dyn carepost::ports::Queue>>,
}

pub struct TestApp {
    pub client: Client,
    pub stack: EmbeddedStack,
    /// Keeps the data directory alive for the test's duration.
    pub _dir: tempfile::TempDir,
}

pub fn quick_throughput() -> Throughput {
    Throughput {
        send_rate_per_second: 1000,
        sender_max_concurrency: 2,
        fanout_shards: 3,
        visibility_timeout_seconds: 2,
        ..Throughput::default()
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut EmbeddedConfig)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = EmbeddedConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().expect("address");
    config.knobs = quick_throughput().into();
    // Every test's patients sign up from 127.0.0.1; the limit tests set it.
    config.knobs.consent_limit_per_ip_per_hour = 10_000;
    // The tests' campaigns are small, and they check counts exactly; the
    // small-cell tests set the real minimum (11) themselves.
    config.knobs.min_cell_size = 1;
    configure(&mut config);
    let workers = config.run_workers;
    let stack = EmbeddedStack::start(config).await.expect("stack starts");
    let client = Client {
        http: http_client(),
        base: stack.base_url(),
        origin: stack.app.settings.own_origin(),
        token: stack.admin_token.clone(),
        outbox: stack.outbox_dir.clone().unwrap_or_else(|| dir.path().join("no-outbox")),
        // Without workers the test drives the queue itself.
        send_queue: workers.then(|| stack.app.ports.send_queue.clone()),
    };
    TestApp { client, stack, _dir: dir }
}

/// A parsed message from the outbox or an SMTP sink.
#[derive(Debug, Clone)]
pub struct Mail {
    pub file: PathBuf,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub list_unsubscribe: Vec<String>,
    pub list_unsubscribe_post: Vec<String>,
}

pub fn read_mail(path: &Path) -> anyhow::Result<Mail> {
    let bytes = std::fs::read(path)?;
    let message = mail_parser::MessageParser::default().parse(&bytes).context("unparseable message")?;
    let raw_headers = |name: &str| -> Vec<String> {
        message
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| {
                let range = h.offset_start() as usize..h.offset_end() as usize;
                String::from_utf8_lossy(&bytes[range]).trim().to_owned()
            })
            .collect()
    };
    Ok(Mail {
        file: path.to_owned(),
        to: message.to().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        html: message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
        list_unsubscribe: raw_headers("List-Unsubscribe"),
        list_unsubscribe_post: raw_headers("List-Unsubscribe-Post"),
    })
}

pub fn mails_in(dir: &Path, prefix: &str) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "eml")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    files.iter().map(|f| read_mail(f).expect("message parses")).collect()
}

impl Client {
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request is answered");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits (up to 20 s) until an in-process stack's send worker has
    /// finished every queued consent request and send job.
    pub async fn settled(&self) {
        let Some(queue) = &self.send_queue else { return };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if queue.depth().await.is_ok_and(|(waiting, _)| waiting == 0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the send queue did not drain in 20 s");
    }

    /// Signs a patient up through the public endpoint, as JSON, and waits
    /// until the request is finished.
    pub async fn sign_up(&self, p: &Patient, categories: &[&str]) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}/v1/consent", self.base))
            .header("user-agent", "e2e-test-browser/1.0")
            // A browser on the service's own example form.
            .header("origin", &self.origin)
            .json(&json!({
                "form_id": "web-signup",
                "email": p.email,
                "categories": categories,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "date_of_birth": p.date_of_birth,
                "sex": p.sex,
                "zip": p.zip,
                "language": p.language,
                "conditions": p.conditions,
            }))
            .send()
            .await
            .expect("consent is answered");
        self.settled().await;
        response
    }

    /// Opens each confirmation email for the given addresses and presses the button.
    pub async fn confirm(&self, emails: &[&str]) -> usize {
        // The send worker mails confirmations after the request is answered:
        // wait (up to 30 s) until each address has one.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mails = mails_in(&self.outbox, "confirm-");
            if emails.iter().all(|e| mails.iter().any(|m| m.to == *e)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut confirmed = 0;
        for mail in mails_in(&self.outbox, "confirm-") {
            if !emails.contains(&mail.to.as_str()) {
                continue;
            }
            let link = confirmation_link(&mail);
            let response = self.http.post(&link).send().await.expect("confirmation is answered");
            assert_eq!(response.status(), StatusCode::OK);
            confirmed += 1;
        }
        confirmed
    }

    pub async fn create_campaign(&self, category: &str, segment: Value) -> String {
        let (status, body) = self
            .admin(
                Method::POST,
                "/v1/campaigns",
                Some(json!({
                    "name": format!("Test campaign {category}"),
                    "category": category,
                    "phi_personalized": true,
                    "purpose": "treatment",
                    "segment": segment,
                    "template": {
                        "subject": "A note from your clinic",
                        "html": "<p>Hello {{ first_name | default('there') }}</p>",
                        "text": "Hello {{ first_name | default('there') }}\nUnsubscribe: {{ unsubscribe_url }}"
                    }
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn launch(&self, id: &str) {
        let (status, body) = self.admin(Method::POST, &format!("/v1/campaigns/{id}/launch"), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }

    pub async fn report(&self, id: &str) -> Value {
        let (status, body) = self.admin(Method::GET, &format!("/v1/campaigns/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn wait_completed(&self, id: &str, within: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (status, report) = self.admin(Method::GET, &format!("/v1/campaigns/{id}"), None).await;
            if status == StatusCode::OK && report["status"] == "completed" {
                return Ok(report);
            }
            if Instant::now() > deadline {
                bail!("campaign not completed in {within:?}: {report}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn run_campaign(&self, category: &str, segment: Value) -> (String, Value) {
        let id = self.create_campaign(category, segment).await;
        self.launch(&id).await;
        let report = self.wait_completed(&id, Duration::from_secs(60)).await.expect("campaign completes");
        (id, report)
    }
}

pub fn confirmation_link(mail: &Mail) -> String {
    mail.text.split_whitespace().find(|w| w.contains("/confirm/")).expect("confirmation link").to_owned()
}

/// Every patient's profile matches this segment.
pub fn everyone() -> Value {
    json!({"exists": {"attr": "date_of_birth"}})
}

// ---------------------------------------------------------------- the binary

pub fn carepost_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CAREPOST_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/carepost");
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p carepost-cli` (make test does)",
        path.display()
    );
    path
}

/// `carepost dev` as a child process we can kill.
pub struct DevProcess {
    pub child: tokio::process::Child,
    pub base: String,
}

pub async fn start_dev(data_dir: &Path, log: &Path, extra: &[&str]) -> anyhow::Result<DevProcess> {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let mut child = tokio::process::Command::new(carepost_binary())
        .arg("dev")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env("RUST_LOG", "debug")
        // As in spawn_app: exact counts for small test campaigns (a flag in `extra` wins).
        .env("CAREPOST_MIN_CELL_SIZE", "1")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("Carepost is serving on ") {
                return Ok(rest.trim().to_owned());
            }
        }
        bail!("carepost dev exited before serving")
    })
    .await
    .context("carepost dev did not start in 30 s")??;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(DevProcess { child, base })
}

pub fn client_for(base: &str, data_dir: &Path) -> Client {
    Client {
        http: http_client(),
        base: base.to_owned(),
        origin: base.to_owned(),
        token: std::fs::read_to_string(data_dir.join("admin-token")).expect("admin token").trim().to_owned(),
        outbox: data_dir.join("outbox"),
        send_queue: None,
    }
}

// ---------------------------------------------------------------- PHI probes

/// Strings that must never appear outside the outbox: every seeded email,
/// date of birth and ZIP, names long enough not to occur by chance in
/// ciphertext (≥ 5 bytes), and the given conditions. The synthetic ZIPs are
/// ZIP+4 ("02139-4321", see `synthetic::generate`): ten bytes in that shape
/// do not occur by chance in ciphertext, UUIDs, timestamps or counters,
/// where a bare five-digit ZIP would.
pub fn phi_probes(population: &[Patient], conditions: &[&str]) -> Vec<String> {
    let mut probes = Vec::new();
    for p in population {
        probes.push(p.email.clone());
        probes.push(p.date_of_birth.clone());
        assert!(is_zip_plus_four(&p.zip), "a distinctive ZIP probe: {}", p.zip);
        probes.push(p.zip.clone());
        for name in [&p.first_name, &p.last_name] {
            if name.len() >= 5 {
                probes.push(name.clone());
            }
        }
    }
    probes.extend(conditions.iter().map(|c| (*c).to_owned()));
    probes.sort();
    probes.dedup();
    probes
}

fn is_zip_plus_four(zip: &str) -> bool {
    let b = zip.as_bytes();
    b.len() == 10 && b[5] == b'-' && b.iter().enumerate().all(|(i, c)| i == 5 || c.is_ascii_digit())
}

pub fn find_probes(haystack: &[u8], probes: &[String]) -> Vec<String> {
    probes.iter().filter(|p| count(haystack, p.as_bytes()) > 0).cloned().collect()
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || haystack.len() < needle.len() {
        return 0;
    }
    haystack.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Every queue row (live, in flight and dead-lettered) in a database file.
pub fn queue_rows(db: &Path) -> anyhow::Result<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT queue || ' ' || message_id || ' ' || body FROM queue_messages")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn ensure_no_probes(what: &str, haystack: &[u8], probes: &[String]) -> anyhow::Result<()> {
    let found = find_probes(haystack, probes);
    ensure!(found.is_empty(), "{what} contains plaintext PHI (synthetic): {found:?}");
    Ok(())
}

/// The contact's consent status per topic, in topic order.
pub async fn consent_statuses(
    app: &carepost::app::App,
    contact: &carepost::domain::ContactId,
) -> Vec<(String, carepost::domain::ConsentStatus)> {
    let mut out: Vec<_> = app
        .ports
        .consent
        .grants(contact)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.category.to_string(), g.status))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Runs `carepost ARGS` against the test stack (its URL and token):
/// (exit code, stdout, stderr).
pub async fn cli(test: &TestApp, args: &[&str]) -> (i32, String, String) {
    let c = &test.client;
    let output = tokio::process::Command::new(carepost_binary())
        .args(args)
        .args(["--url", &c.base, "--token", &c.token])
        .output()
        .await
        .expect("the CLI runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}
