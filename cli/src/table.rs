//! Plain-text tables for people: left-aligned text, right-aligned numbers,
//! columns as wide as their widest cell.

use serde_json::Value;

/// A count, rate, ratio, a suppressed small count or a dash: right-aligned.
fn is_number(cell: &str) -> bool {
    let numeric = !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '%' | '/'));
    numeric || cell == "-" || cell.starts_with("fewer than ")
}

/// The header and rows, one line each, columns two spaces apart.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    // A column is right-aligned, header included, when every cell in it is a number.
    let right: Vec<bool> =
        (0..header.len()).map(|i| !rows.is_empty() && rows.iter().all(|r| is_number(&r[i]))).collect();
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            if i > 0 {
                out.push_str("  ");
            }
            if right[i] {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// A count as the API gives it: a number, or a small cell ("fewer than 11").
/// The elements of a JSON array in an answer, none if it is missing.
pub fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub fn count(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "-".to_owned(),
    }
}

/// A rate as the API gives it: a percentage, a bound ("below 0.11%") or
/// withheld (null: no denominator, or a small one).
pub fn rate(v: &Value) -> String {
    match v {
        Value::Number(n) => n.as_f64().map_or_else(|| "-".to_owned(), |r| format!("{r:.2}%")),
        Value::String(s) => s.clone(),
        _ => "-".to_owned(),
    }
}

/// One campaign (`campaign show`): its state and what it was created with.
pub fn campaign(c: &Value) -> String {
    let d = &c["definition"];
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    };
    let sender = match (d["sender"]["name"].as_str(), d["sender"]["address"].as_str()) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        _ => "the stack's default sender".to_owned(),
    };
    let rows = vec![
        vec!["id".to_owned(), text(&c["id"])],
        vec!["name".to_owned(), text(&c["name"])],
        vec!["status".to_owned(), text(&c["status"]).replace('_', " ")],
        vec!["paused because".to_owned(), text(&c["paused_reason"])],
        vec!["launch at".to_owned(), text(&c["launch_at"])],
        vec!["topic".to_owned(), text(&d["category"])],
        vec!["purpose".to_owned(), text(&d["purpose"])],
        vec!["PHI-personalized".to_owned(), text(&d["phi_personalized"])],
        vec!["sender".to_owned(), sender],
        vec!["subject".to_owned(), text(&d["template"]["subject"])],
        vec!["segment".to_owned(), text(&d["segment"])],
        vec!["tracking".to_owned(), text(&d["tracking"])],
        vec!["shards done".to_owned(), format!("{}/{}", count(&c["shards_done"]), count(&c["shards_total"]))],
        vec!["audience".to_owned(), count(&c["audience"])],
        vec!["sent".to_owned(), count(&c["sent"])],
        vec!["remaining".to_owned(), count(&c["remaining"])],
    ];
    let rows: Vec<Vec<String>> = rows.into_iter().filter(|r| r[1] != "-").collect();
    render(&["CAMPAIGN", ""], &rows)
}

/// An audience estimate: who would be reached and why the others would not.
pub fn estimate(e: &Value) -> String {
    let mut rows =
        vec![vec!["evaluated".to_owned(), count(&e["evaluated"])], vec!["included".to_owned(), count(&e["included"])]];
    if let Some(excluded) = e["excluded"].as_object() {
        rows.extend(
            excluded
                .iter()
                .filter(|(_, v)| v.as_u64() != Some(0))
                .map(|(k, v)| vec![format!("excluded: {}", k.replace('_', " ")), count(v)]),
        );
    }
    let mut out = render(&["AUDIENCE", "CONTACTS"], &rows);
    out.push_str(&format!(
        "\ncounts from 1 to {} are shown as \"fewer than {}\"\n",
        e["min_cell"].as_u64().unwrap_or(11).saturating_sub(1),
        e["min_cell"].as_u64().unwrap_or(11)
    ));
    out
}

/// A campaign report as a people-readable table: the state, the funnel, the
/// exclusions and the rates (each rate's denominator named).
pub fn report(r: &Value) -> String {
    let mut out = format!(
        "{}  {}\nstatus: {}{}\n\n",
        r["id"].as_str().unwrap_or(""),
        r["name"].as_str().unwrap_or(""),
        r["status"].as_str().unwrap_or("unknown").replace('_', " "),
        r["paused_reason"].as_str().map_or(String::new(), |why| format!(" ({why})")),
    );
    let funnel = [
        ("shards done", format!("{}/{}", count(&r["shards_done"]), count(&r["shards_total"]))),
        ("evaluated", count(&r["evaluated"])),
        ("audience", count(&r["audience"])),
        ("sent", count(&r["sent"])),
        ("skipped at send", count(&r["skipped_at_send"])),
        ("failed", count(&r["failed"])),
        ("remaining", count(&r["remaining"])),
        ("delivered", count(&r["delivered"])),
        ("bounced (hard)", count(&r["bounced_hard"])),
        ("bounced (soft)", count(&r["bounced_soft"])),
        ("TLS unavailable", count(&r["tls_unavailable"])),
        ("secure message notices", count(&r["secure_notices"])),
        ("complained", count(&r["complained"])),
        ("opened", count(&r["opened"])),
        ("clicked", count(&r["clicked"])),
        ("unsubscribed", count(&r["unsubscribed"])),
    ];
    let rows: Vec<Vec<String>> = funnel.into_iter().map(|(k, v)| vec![k.to_owned(), v]).collect();
    out.push_str(&render(&["COUNT", "VALUE"], &rows));
    if let Some(excluded) = r["excluded"].as_object() {
        let rows: Vec<Vec<String>> = excluded
            .iter()
            .filter(|(_, v)| v.as_u64() != Some(0))
            .map(|(k, v)| vec![k.replace('_', " "), count(v)])
            .collect();
        if !rows.is_empty() {
            out.push('\n');
            out.push_str(&render(&["EXCLUDED", "CONTACTS"], &rows));
        }
    }
    let rates = &r["rates"];
    let rows: Vec<Vec<String>> = [
        ("delivery", "delivery", "delivered / sent"),
        ("hard bounce", "hard_bounce", "bounced hard / sent"),
        ("soft bounce", "soft_bounce", "bounced soft or undetermined / sent"),
        ("complaint", "complaint", "complained / delivered"),
        ("open", "open", "opened (people) / delivered"),
        ("click", "click", "clicked (people) / delivered"),
        ("click to open", "click_to_open", "clicked / opened (people)"),
        ("unsubscribe", "unsubscribe", "unsubscribed / delivered"),
    ]
    .into_iter()
    .map(|(name, key, of)| vec![name.to_owned(), rate(&rates[key]), of.to_owned()])
    .collect();
    out.push('\n');
    out.push_str(&render(&["RATE", "VALUE", "OF"], &rows));
    if let Some(domains) = r["by_domain"].as_array().filter(|d| !d.is_empty()) {
        let columns = ["recipients", "sent", "delivered", "bounced", "tls_unavailable", "opened", "complained"];
        let rows: Vec<Vec<String>> = domains
            .iter()
            .map(|d| {
                let mut row = vec![d["domain"].as_str().unwrap_or("").to_owned()];
                row.extend(columns.iter().map(|c| count(&d[*c])));
                row
            })
            .collect();
        out.push('\n');
        out.push_str(&render(
            &["DOMAIN", "RECIPIENTS", "SENT", "DELIVERED", "BOUNCED", "NO TLS", "OPENED", "COMPLAINED"],
            &rows,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_right_aligned_and_text_left_aligned() {
        let rows = vec![vec!["a".to_owned(), "5".to_owned()], vec!["longer".to_owned(), "1234".to_owned()]];
        assert_eq!(render(&["NAME", "N"], &rows), "NAME       N\na          5\nlonger  1234\n");
    }

    #[test]
    fn a_report_shows_its_counts_rates_and_the_rates_denominators() {
        let sample = serde_json::json!({
            "id": "c1", "name": "Flu", "status": "completed", "sent": 20, "delivered": 19,
            "shards_done": 3, "shards_total": 3, "excluded": {"no_consent": "fewer than 11", "suppressed": 0},
            "rates": {"delivery": 95.0, "open": null, "complaint": "below 0.55%"},
            "by_domain": [{"domain": "big.example", "recipients": 20, "sent": 20, "delivered": 19, "bounced": 0,
                "tls_unavailable": "fewer than 11", "opened": 0, "complained": 0}]
        });
        let table = report(&sample);
        let rows: Vec<String> = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();

        for row in [
            "status: completed",
            "shards done 3/3",
            "delivery 95.00% delivered / sent",
            "open - opened (people) / delivered",
            "complaint below 0.55% complained / delivered",
            "big.example 20 20 19 0 fewer than 11 0 0",
        ] {
            assert!(rows.iter().any(|r| r == row), "no row '{row}' in\n{table}");
        }
        assert!(rows.iter().any(|r| r == "no consent fewer than 11"), "{table}");
        assert!(!table.contains("suppressed"), "zero exclusions are left out: {table}");
    }

    #[test]
    fn a_campaign_shows_its_state_and_definition_and_leaves_out_what_it_has_not() {
        let sample = serde_json::json!({
            "id": "c1", "name": "Flu", "status": "scheduled", "launch_at": "2026-12-03T09:00:00Z",
            "shards_done": 0, "shards_total": 4, "audience": 0, "sent": 0, "remaining": 0,
            "definition": {"category": "wellness-tips", "purpose": "treatment", "phi_personalized": false,
                "sender": {"name": "Clinic", "address": "news@clinic.example"},
                "template": {"subject": "A note"}, "segment": {"exists": {"attr": "zip"}}, "tracking": null}
        });
        let table = campaign(&sample);
        let rows: Vec<String> = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();

        for row in [
            "status scheduled",
            "launch at 2026-12-03T09:00:00Z",
            "sender Clinic <news@clinic.example>",
            r#"segment {"exists":{"attr":"zip"}}"#,
            "shards done 0/4",
        ] {
            assert!(rows.iter().any(|r| r == row), "no row '{row}' in\n{table}");
        }
        assert!(!table.contains("paused because") && !table.contains("tracking"), "{table}");
    }

    #[test]
    fn an_estimate_lists_included_and_each_non_zero_exclusion() {
        let sample = serde_json::json!({
            "evaluated": 40, "included": 25, "min_cell": 11,
            "excluded": {"no_consent": "fewer than 11", "suppressed": 0, "not_in_segment": 12}
        });
        let table = estimate(&sample);
        let rows: Vec<String> = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();

        for row in ["included 25", "excluded: no consent fewer than 11", "excluded: not in segment 12"] {
            assert!(rows.iter().any(|r| r == row), "no row '{row}' in\n{table}");
        }
        assert!(!table.contains("suppressed"), "{table}");
        assert!(table.contains("counts from 1 to 10"), "{table}");
    }
}
