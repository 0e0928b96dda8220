//! `carepost contacts import`: 100,000 CSV rows through the batch upsert,
//! with bad rows at known places; the reject report names each by row
//! number, field and rule, never the value; `--dry-run` stores nothing and
//! reports the same rejects.

use std::io::Write;
use std::path::Path;

use super::helpers::{TestApp, carepost_binary, spawn_app};

const ROWS: usize = 100_000;

/// The CSV, and the (row number, field) of each row that must be refused.
fn write_csv(path: &Path) -> Vec<(u64, &'static str)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "external_id,email,first_name,date_of_birth,zip,conditions").unwrap();
    let mut bad = Vec::new();
    for i in 0..ROWS {
        let row = i as u64 + 2; // the header is row 1
        let (email, dob) = match i % 9973 {
            17 => {
                bad.push((row, "email"));
                ("not-an-address".to_owned(), "1980-02-03")
            }
            4242 => {
                bad.push((row, "date_of_birth"));
                (format!("p{i}@example.org"), "03/02/1980")
            }
            _ => (format!("p{i}@example.org"), "1980-02-03"),
        };
        writeln!(out, "mrn-{i:06},{email},Name{i},{dob},{:05},asthma;diabetes", i % 99999).unwrap();
    }
    out.flush().unwrap();
    bad
}

async fn import(test: &TestApp, csv: &Path, rejects: &Path, dry_run: bool) -> String {
    let mut command = tokio::process::Command::new(carepost_binary());
    command.args(["contacts", "import"]).arg(csv).arg("--rejects").arg(rejects);
    command.args(["--url", &test.client.base, "--token", &test.client.token]);
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().await.expect("the carepost binary runs");
    // Every file here has bad rows: the import finishes, and a script sees exit code 2.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("rows were rejected"), "{stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn reported(rejects: &Path) -> Vec<(u64, String)> {
    let mut reader = csv::Reader::from_path(rejects).unwrap();
    reader.records().map(|r| r.unwrap()).map(|r| (r[0].parse().unwrap(), r[1].to_owned())).collect()
}

#[tokio::test]
async fn a_hundred_thousand_rows_import_with_a_correct_reject_report_and_a_dry_run_stores_nothing() {
    let test = spawn_app().await;
    let dir = test._dir.path();
    let (csv, rejects) = (dir.join("contacts.csv"), dir.join("rejected.csv"));
    let bad = write_csv(&csv);
    let expected: Vec<(u64, String)> = bad.iter().map(|(row, field)| (*row, (*field).to_owned())).collect();

    let dry = import(&test, &csv, &rejects, true).await;
    let dry_rejects = reported(&rejects);
    let (_, before) = test.client.admin(reqwest::Method::GET, "/v1/contacts?limit=1", None).await;
    let started = std::time::Instant::now();
    let done = import(&test, &csv, &rejects, false).await;
    eprintln!("{ROWS} rows imported in {:.1} s", started.elapsed().as_secs_f64());

    assert!(dry.contains(&format!("{} would be imported", ROWS - bad.len())), "{dry}");
    assert_eq!(dry_rejects, expected, "the dry run finds the same rows");
    assert_eq!(before["contacts"].as_array().unwrap().len(), 0, "the dry run stored nothing");
    assert!(
        done.contains(&format!(
            "{} imported ({} new, 0 updated), {} rejected",
            ROWS - bad.len(),
            ROWS - bad.len(),
            bad.len()
        )),
        "{done}"
    );
    assert_eq!(reported(&rejects), expected);
    let report = std::fs::read_to_string(&rejects).unwrap();
    assert!(!report.contains("not-an-address") && !report.contains("03/02/1980"), "values are not echoed");
}
