//! The `carepost` CLI against a stack that takes only SigV4-signed admin
//! requests, as a deployed one does. The signatures are checked by
//! botocore (AWS's own Python signer, `tests/support/sigv4_proxy.py`), which
//! stands in for API Gateway's AWS_IAM authorizer in front of the embedded
//! stack and refuses any request whose signature does not match.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::Context;
use carepost::synthetic;
use reqwest::Method;
use tokio::io::AsyncBufReadExt;

use super::helpers::{TestApp, carepost_binary, spawn_app};

const ACCESS_KEY: &str = "AKIDCAREPOSTTEST";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYCAREPOSTKEY";
const REGION: &str = "eu-west-1";

struct Proxy {
    _child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

async fn start_proxy(app: &TestApp, dir: &Path) -> anyhow::Result<Proxy> {
    let python = std::env::var("CAREPOST_PYTHON").expect("CAREPOST_PYTHON is set by `make test`");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("support/sigv4_proxy.py");
    let log = dir.join("proxy.log");
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args([&app.client.base, &app.client.token, ACCESS_KEY, SECRET_KEY, REGION])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await??.context("proxy exited")?;
    let url = line.strip_prefix("listening on ").context("the proxy's first line")?.to_owned();
    Ok(Proxy { _child: child, url, log })
}

/// The CLI with AWS-style credentials in the environment and nothing else:
/// no admin token, no AWS config files, no instance metadata.
async fn carepost(dir: &Path, secret: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(carepost_binary())
        .current_dir(dir)
        .args(["--target", "clinic", "--targets-file"])
        .arg(dir.join("targets.toml"))
        .args(args)
        .env_remove("CAREPOST_ADMIN_TOKEN")
        .env_remove("CAREPOST_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env("HOME", dir)
        .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", REGION)
        .output()
        .await
        .expect("the carepost binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn succeeded(what: &str, output: &Output) -> String {
    assert!(output.status.success(), "{what}: {}\n{}", String::from_utf8_lossy(&output.stderr), stdout(output));
    stdout(output)
}

/// The campaign files docs/operations.md walks through (docs/examples), copied into `dir`.
pub fn write_campaign_files(dir: &Path) -> PathBuf {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    for name in ["flu.toml", "flu-subject.txt", "flu.html", "flu.txt"] {
        std::fs::copy(examples.join(name), dir.join(name)).unwrap_or_else(|e| panic!("docs/examples/{name}: {e}"));
    }
    dir.join("flu.toml")
}

fn write_contacts(path: &Path, first: usize, count: usize) {
    let mut csv = String::from("external_id,email,first_name,date_of_birth\n");
    for i in first..first + count {
        csv.push_str(&format!("mrn-{i:04},imported{i}@example.org,Name{i},1970-01-0{}\n", 1 + i % 9));
    }
    std::fs::write(path, csv).unwrap();
}

async fn contact_count(app: &TestApp) -> usize {
    let (_, page) = app.client.admin(Method::GET, "/v1/contacts?limit=1000", None).await;
    page["contacts"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn the_cli_signs_every_request_so_a_botocore_check_lets_it_run_a_campaign_and_a_wrong_secret_changes_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(&app, dir.path()).await.expect("the botocore proxy starts");
    std::fs::write(
        dir.path().join("targets.toml"),
        format!("[clinic]\nendpoint_url = \"{}\"\nregion = \"{REGION}\"\n", proxy.url),
    )
    .unwrap();
    let consented = synthetic::generate(3, 7);
    for p in &consented {
        app.client.sign_up(p, &["wellness-tips"]).await;
    }
    app.client.confirm(&consented.iter().map(|p| p.email.as_str()).collect::<Vec<_>>()).await;
    let (contacts, more_contacts) = (dir.path().join("contacts.csv"), dir.path().join("more.csv"));
    write_contacts(&contacts, 0, 12);
    write_contacts(&more_contacts, 100, 5);
    let campaign_file = write_campaign_files(dir.path());

    let imported =
        succeeded("import", &carepost(dir.path(), SECRET_KEY, &["contacts", "import", "contacts.csv"]).await);
    let created = succeeded("create", &carepost(dir.path(), SECRET_KEY, &["campaign", "create", "flu.toml"]).await);
    let id = created.trim().to_owned();
    succeeded("launch", &carepost(dir.path(), SECRET_KEY, &["campaign", "launch", &id]).await);
    let watched = succeeded("watch", &carepost(dir.path(), SECRET_KEY, &["campaign", "watch", &id]).await);
    let report = succeeded("report", &carepost(dir.path(), SECRET_KEY, &["campaign", "report", &id]).await);
    let json = succeeded(
        "report json",
        &carepost(dir.path(), SECRET_KEY, &["campaign", "report", &id, "--output", "json"]).await,
    );
    let before_wrong = contact_count(&app).await;
    let wrong_import = carepost(dir.path(), "not-the-secret", &["contacts", "import", "more.csv"]).await;
    let wrong_create =
        carepost(dir.path(), "not-the-secret", &["campaign", "create", campaign_file.to_str().unwrap()]).await;
    let proxy_log = std::fs::read_to_string(&proxy.log).unwrap();

    assert!(imported.contains("12 imported (12 new, 0 updated), 0 rejected"), "{imported}");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "create prints the new campaign's ID: {created}");
    assert!(watched.contains("campaign completed: 3 sent"), "{watched}");
    assert!(report.contains("status: completed"), "{report}");
    assert!(report.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["sent", "3"]), "{report}");
    assert!(report.lines().any(|l| l.trim_start().starts_with("no consent") && l.ends_with("12")), "{report}");
    let json: serde_json::Value = serde_json::from_str(&json).expect("--output json is JSON");
    assert_eq!((json["sent"].as_u64(), json["excluded"]["no_consent"].as_u64()), (Some(3), Some(12)));

    for (what, output) in [("import", &wrong_import), ("create", &wrong_create)] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what} with a wrong secret fails: {stderr}");
        assert!(stderr.contains("refused the signed request (403 Forbidden)"), "{what}: {stderr}");
        assert!(stderr.contains("signature we calculated does not match"), "{what}: {stderr}");
        assert!(stderr.contains("check the AWS credentials"), "{what}: {stderr}");
    }
    let refused: Vec<&str> = proxy_log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 2, "the first request of each wrong-secret command is refused: {proxy_log}");
    assert!(proxy_log.lines().filter(|l| l.ends_with(" ok")).count() >= 6, "{proxy_log}");
    assert_eq!(contact_count(&app).await, before_wrong, "nothing imported with the wrong secret");
    let (_, campaigns) = app.client.admin(Method::GET, "/v1/campaigns", None).await;
    assert_eq!(campaigns["campaigns"].as_array().map(Vec::len), Some(1), "no campaign created with it: {campaigns}");
    assert_eq!(before_wrong, 15);
}
