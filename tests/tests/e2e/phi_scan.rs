//! After the demo flow, no seeded PHI is in the SQLite file, the queue rows or
//! the logs. The outbox is the mail itself and is the control: the same probes
//! do find the patients there, so the scan is able to fail.

use std::process::Stdio;

use carepost::synthetic;

use super::helpers::{carepost_binary, count, ensure_no_probes, find_probes, phi_probes, queue_rows};

/// Conditions the demo campaign's segment names; the campaign definition
/// (configuration, not patient data) legitimately contains them.
const TARGETED: [&str; 3] = ["type-2-diabetes", "hypertension", "heart-failure"];

#[tokio::test]
async fn the_database_queue_rows_and_logs_hold_no_plaintext_phi_after_the_demo() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let output = tokio::process::Command::new(carepost_binary())
        .args(["demo", "--exit", "--patients", "300", "--seed", "99", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("Campaign report"), "{stdout}");
    assert!(output.stderr.len() > 1000, "debug logs were captured");

    let population = synthetic::generate(300, 99);
    let probes = phi_probes(&population, &["asthma", "copd"]);
    let db_path = data.join("carepost.sqlite3");
    let mut db = std::fs::read(&db_path)?;
    for extra in ["carepost.sqlite3-wal", "carepost.sqlite3-journal"] {
        if let Ok(bytes) = std::fs::read(data.join(extra)) {
            db.extend(bytes);
        }
    }

    ensure_no_probes("the SQLite file", &db, &probes)?;
    ensure_no_probes("the queue rows", queue_rows(&db_path)?.join("\n").as_bytes(), &probes)?;
    ensure_no_probes("stdout", &output.stdout, &probes)?;
    ensure_no_probes("the logs", &output.stderr, &probes)?;
    let definitions = {
        let conn = rusqlite::Connection::open(&db_path)?;
        let mut stmt = conn.prepare("SELECT definition FROM campaigns")?;
        stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?.join("\n")
    };
    for condition in TARGETED {
        assert_eq!(
            count(&db, condition.as_bytes()),
            count(definitions.as_bytes(), condition.as_bytes()),
            "'{condition}' appears in the database beyond the campaign definition"
        );
    }

    let mut mail = Vec::new();
    for entry in std::fs::read_dir(data.join("outbox"))? {
        mail.extend(std::fs::read(entry?.path())?);
    }
    assert!(find_probes(&mail, &probes).len() > 100, "control: the outbox holds the patients' mail");
    Ok(())
}
