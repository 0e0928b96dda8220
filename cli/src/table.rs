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

fn count(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "0".to_owned(),
    }
}

fn rate(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".to_owned(), |r| format!("{r:.2}%"))
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
        ("complaint", "complaint", "complained / delivered"),
        ("open", "open", "opened / delivered"),
        ("click", "click", "clicked / delivered"),
        ("unsubscribe", "unsubscribe", "unsubscribed / delivered"),
    ]
    .into_iter()
    .map(|(name, key, of)| vec![name.to_owned(), rate(&rates[key]), of.to_owned()])
    .collect();
    out.push('\n');
    out.push_str(&render(&["RATE", "VALUE", "OF"], &rows));
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
            "rates": {"delivery": 95.0, "open": null}
        });
        let table = report(&sample);
        let rows: Vec<String> = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();

        for row in
            ["status: completed", "shards done 3/3", "delivery 95.00% delivered / sent", "open - opened / delivered"]
        {
            assert!(rows.iter().any(|r| r == row), "no row '{row}' in\n{table}");
        }
        assert!(rows.iter().any(|r| r == "no consent fewer than 11"), "{table}");
        assert!(!table.contains("suppressed"), "zero exclusions are left out: {table}");
    }
}
