//! `carepost journey create|list|show|revise|launch|pause|resume|report|simulate`:
//! journeys on a stack through its admin API (`client.rs`). The definition
//! file is the JSON `journey validate` checks; the stack checks it again
//! against its own topics and schema and names the step at fault.

use std::path::Path;

use anyhow::{Context, ensure};
use reqwest::Method;
use serde_json::Value;

use crate::client::{AdminConnection, Output};

/// A journey's ID, checked before any request.
pub fn checked_id(id: &str) -> anyhow::Result<&str> {
    ensure!(uuid::Uuid::parse_str(id).is_ok(), "'{id}' is not a journey ID");
    Ok(id)
}

fn definition(file: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The stack's answer at `path` for a table, or `None` once it has been
/// printed as it came (`--output json`).
async fn get_for_table(admin: &AdminConnection, path: &str) -> anyhow::Result<Option<Value>> {
    let body = admin.get_json(path).await?;
    if admin.output == Output::Json {
        print_json(&body)?;
        return Ok(None);
    }
    Ok(Some(body))
}

pub async fn create(file: &Path, admin: &AdminConnection) -> anyhow::Result<()> {
    let created = admin.send_json(Method::POST, "/v1/journeys", Some(&definition(file)?)).await?;
    if admin.output == Output::Json {
        return print_json(&created);
    }
    let id = created["id"].as_str().context("the answer has no journey ID")?;
    println!("{id}");
    eprintln!("created draft journey from {}; launch it with: carepost journey launch {id}", file.display());
    Ok(())
}

pub async fn revise(id: &str, file: &Path, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let revised = admin.send_json(Method::PUT, &format!("/v1/journeys/{id}"), Some(&definition(file)?)).await?;
    if admin.output == Output::Json {
        return print_json(&revised);
    }
    let version = crate::table::count(&revised["version"]);
    println!("journey {id}: version {version} (new entries walk it; contacts already in finish theirs)");
    Ok(())
}

pub async fn list(admin: &AdminConnection) -> anyhow::Result<()> {
    let Some(body) = get_for_table(admin, "/v1/journeys").await? else { return Ok(()) };
    let rows: Vec<Vec<String>> = crate::table::items(&body["journeys"])
        .iter()
        .map(|j| {
            let text = |k: &str| j[k].as_str().unwrap_or("").to_owned();
            vec![text("id"), text("created_at"), text("status"), crate::table::count(&j["version"]), text("name")]
        })
        .collect();
    print!("{}", crate::table::render(&["ID", "CREATED", "STATUS", "VERSION", "NAME"], &rows));
    Ok(())
}

pub async fn show(id: &str, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let Some(body) = get_for_table(admin, &format!("/v1/journeys/{id}")).await? else { return Ok(()) };
    let text = |k: &str| body[k].as_str().unwrap_or("").to_owned();
    println!("journey {id}: {} ({}, version {})", text("name"), text("status"), crate::table::count(&body["version"]));
    println!("created {}", text("created_at"));
    let steps = crate::table::items(&body["definition"]["steps"]);
    for step in steps {
        let field = |k: &str| step[k].as_str().unwrap_or("").to_owned();
        println!("  {:<8} {}", field("type"), field("id"));
    }
    Ok(())
}

/// `launch`, `pause` or `resume`: the journey's status afterwards.
pub async fn transition(id: &str, action: &str, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let body = admin.request_json(Method::POST, &format!("/v1/journeys/{id}/{action}")).await?;
    if admin.output == Output::Json {
        return print_json(&body);
    }
    println!("journey {id}: {}", body["status"].as_str().unwrap_or("unknown"));
    Ok(())
}

/// Per branch and split of a report or a simulation: each way on (yes, no,
/// an arm, the holdout) and how many contacts took it.
fn print_ways(body: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let ways: Vec<Vec<String>> = crate::table::items(&body["steps"])
        .iter()
        .filter(|s| s["kind"] == "branch" || s["kind"] == "split")
        .flat_map(|s| {
            crate::table::items(&s["next"])
                .iter()
                .map(|l| {
                    vec![text(&s["step"]), text(&l["when"]), text(&l["step"]), crate::table::count(&l["contacts"])]
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if !ways.is_empty() {
        print!("{}", crate::table::render(&["STEP", "WHEN", "ON TO", "CONTACTS"], &ways));
    }
}

pub async fn report(id: &str, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let Some(body) = get_for_table(admin, &format!("/v1/journeys/{id}/report")).await? else { return Ok(()) };
    let n = |v: &Value| crate::table::count(v);
    println!(
        "journey {id}: {} ({}, version {}): entered {}, still in {}",
        body["name"].as_str().unwrap_or(""),
        body["status"].as_str().unwrap_or(""),
        n(&body["version"]),
        n(&body["entered"]),
        n(&body["active"]),
    );
    let rows: Vec<Vec<String>> = crate::table::items(&body["steps"])
        .iter()
        .map(|s| {
            vec![
                s["step"].as_str().unwrap_or("").to_owned(),
                s["kind"].as_str().unwrap_or("").to_owned(),
                n(&s["here"]),
                n(&s["sent"]),
                n(&s["opened"]),
                n(&s["clicked"]),
            ]
        })
        .collect();
    print!("{}", crate::table::render(&["STEP", "KIND", "HERE", "SENT", "OPENED", "CLICKED"], &rows));
    print_ways(&body);
    let exits: Vec<Vec<String>> = body["exited"]
        .as_object()
        .map(|o| o.iter().map(|(reason, count)| vec![reason.replace('_', " "), n(count)]).collect())
        .unwrap_or_default();
    print!("{}", crate::table::render(&["EXITED", "CONTACTS"], &exits));
    Ok(())
}

pub async fn simulate(id: &str, days: u32, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let path = format!("/v1/journeys/{id}/simulate");
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_style(indicatif::ProgressStyle::with_template("{spinner} walking contacts: {pos} so far {elapsed}")?);
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut body = admin.send_json(Method::POST, &path, Some(&serde_json::json!({ "days": days }))).await?;
    // A large population takes several calls: each partial answer carries the token to go on with.
    while body["complete"] == Value::Bool(false) {
        spinner.set_position(body["evaluated"].as_u64().unwrap_or(0));
        let resume = body["resume"].as_str().context("a partial simulation without a resume token")?.to_owned();
        let asked = serde_json::json!({ "days": days, "resume": resume });
        body = admin.send_json(Method::POST, &path, Some(&asked)).await?;
    }
    spinner.finish_and_clear();
    if admin.output == Output::Json {
        return print_json(&body);
    }
    let n = |v: &Value| crate::table::count(v);
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    println!(
        "journey {id}: {} (version {}), simulated {days} days from {} over {} contacts: {} would enter \
         (no email sent)",
        text(&body["name"]),
        n(&body["version"]),
        text(&body["start"]),
        n(&body["evaluated"]),
        n(&body["entered"]),
    );
    let rows: Vec<Vec<String>> = crate::table::items(&body["steps"])
        .iter()
        .map(|s| {
            // Only the reasons anyone leaves by ("completed 40, holdout <10").
            let exited: Vec<String> = s["exited"]
                .as_object()
                .map(|o| {
                    o.iter().filter(|(_, c)| c.as_u64() != Some(0)).map(|(r, c)| format!("{r} {}", n(c))).collect()
                })
                .unwrap_or_default();
            vec![
                text(&s["step"]),
                text(&s["kind"]),
                n(&s["reached"]),
                n(&s["sent"]),
                n(&s["waiting"]),
                if exited.is_empty() { "-".to_owned() } else { exited.join(", ") },
                text(&s["first"]),
                text(&s["last"]),
                text(&s["lint"]),
            ]
        })
        .collect();
    let header = ["STEP", "KIND", "REACHED", "SENT", "WAITING", "LEAVE", "FIRST", "LAST", "LINT"];
    print!("{}", crate::table::render(&header, &rows));
    print_ways(&body);
    let out: Vec<Vec<String>> = body["not_entered"]
        .as_object()
        .map(|o| o.iter().map(|(reason, count)| vec![reason.replace('_', " "), n(count)]).collect())
        .unwrap_or_default();
    print!("{}", crate::table::render(&["NOT ENTERED", "CONTACTS"], &out));
    println!(
        "a count from 1 to {} is shown as \"fewer than {}\"",
        body["min_cell"].as_u64().unwrap_or(1).saturating_sub(1),
        n(&body["min_cell"])
    );
    Ok(())
}

pub async fn write_html_report(id: &str, path: &Path, admin: &AdminConnection) -> anyhow::Result<()> {
    let id = checked_id(id)?;
    let body = admin.get_text(&format!("/v1/journeys/{id}/report?format=html")).await?;
    std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))?;
    println!("report written to {}", path.display());
    Ok(())
}
