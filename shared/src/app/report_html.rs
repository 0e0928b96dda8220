//! The campaign report as one self-contained HTML page (`carepost campaign
//! report --html FILE`): a delivery funnel and an hourly timeline drawn in
//! inline SVG, the totals and rates, and the timeline as a table. No
//! scripts, fonts, images or styles from anywhere else; rendered with
//! minijinja's HTML auto-escaping, so a campaign name cannot inject markup.

use minijinja::{Environment, context};
use serde::Serialize;

use super::report::{CampaignReport, Cell, Rates};

const TEMPLATE: &str = include_str!("report.html.j2");

/// Chart geometry: the funnel's bars in percent of their track, the
/// timeline in SVG user units (scaled to the screen's width).
const FUNNEL_WIDTH: f64 = 100.0;
const TIMELINE_WIDTH: f64 = 640.0;
const TIMELINE_HEIGHT: f64 = 200.0;

#[derive(Serialize)]
struct Bar {
    label: &'static str,
    count: String,
    width: f64,
    percent: String,
}

#[derive(Serialize)]
struct Series {
    label: &'static str,
    class: &'static str,
    points: String,
}

fn funnel(report: &CampaignReport) -> Vec<Bar> {
    let steps = [
        ("Audience", report.cell(report.audience)),
        ("Sent", report.cell(report.sent)),
        ("Delivered", report.cell(report.delivered)),
        ("Opened (people)", report.cell(report.opened)),
        ("Clicked (people)", report.cell(report.clicked)),
    ];
    let top = steps.iter().map(|(_, n)| n.chartable()).max().unwrap_or(0).max(1) as f64;
    steps
        .iter()
        .map(|(label, count)| Bar {
            label,
            count: count.to_string(),
            // A non-zero step is always visible; a suppressed one is drawn as zero.
            width: match count.chartable() {
                0 => 0.0,
                n => ((n as f64 / top * FUNNEL_WIDTH * 10.0).round() / 10.0).max(0.5),
            },
            // A share of a suppressed count (or of one) would give it back.
            percent: match (count, report.cell(report.audience)) {
                (Cell::Count(n), Cell::Count(all)) if all > 0 => format!("{:.1}%", *n as f64 * 100.0 / all as f64),
                _ => String::new(),
            },
        })
        .collect()
}

/// Reads one column of an hour of the timeline.
type ColumnOf = fn(&super::report::TimelineHour) -> Cell;

fn timeline(report: &CampaignReport) -> Vec<Series> {
    let pick: [(&str, &str, ColumnOf); 3] = [
        ("Sent", "sent", |h| h.sent),
        ("Delivered", "delivered", |h| h.delivered),
        ("Opened (people)", "opened", |h| h.opened),
    ];
    let rows = &report.timeline;
    let top =
        rows.iter().flat_map(|h| pick.iter().map(move |(_, _, f)| f(h).chartable())).max().unwrap_or(0).max(1) as f64;
    let step = if rows.len() > 1 { TIMELINE_WIDTH / (rows.len() - 1) as f64 } else { 0.0 };
    pick.iter()
        .map(|(label, class, f)| Series {
            label,
            class,
            points: {
                let mut points: Vec<String> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, h)| {
                        let y = TIMELINE_HEIGHT - f(h).chartable() as f64 / top * TIMELINE_HEIGHT;
                        format!("{:.1},{:.1}", i as f64 * step, y)
                    })
                    .collect();
                // A single hour is drawn as a level line across the chart.
                if let [only] = points.as_slice() {
                    let y = only.split(',').nth(1).unwrap_or("0").to_owned();
                    points.push(format!("{TIMELINE_WIDTH:.1},{y}"));
                }
                points.join(" ")
            },
        })
        .collect()
}

/// The report page.
pub fn render_report_html(report: &CampaignReport, generated_at: &str) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("report.html", TEMPLATE)?;
    let r = Rates::of(report);
    let rates = [
        ("Delivery rate (of sent)", r.delivery),
        ("Hard-bounce rate (of sent)", r.hard_bounce),
        ("Soft-bounce rate (of sent)", r.soft_bounce),
        ("Complaint rate (of delivered)", r.complaint),
        ("Open rate, people (of delivered)", r.open),
        ("Click rate, people (of delivered)", r.click),
        ("Click-to-open rate (of opened)", r.click_to_open),
        ("Unsubscribe rate (of delivered)", r.unsubscribe),
    ];
    let totals = [
        ("Audience", report.audience),
        ("Sent", report.sent),
        ("Delivered", report.delivered),
        ("Bounced, hard", report.bounced_hard),
        ("Bounced, soft", report.bounced_soft),
        ("Bounced, undetermined", report.bounced_undetermined),
        ("Not delivered: recipient's server lacks TLS", report.tls_unavailable),
        ("Of those, sent a secure message notice", report.secure_notices),
        ("Complained", report.complained),
        ("Rejected by the provider", report.rejected),
        ("Rendering failures", report.rendering_failed),
        ("Delayed", report.delayed),
        ("Opened by people", report.opened),
        ("Opened by machines only", report.opened_machine),
        ("Clicked by people", report.clicked),
        ("Clicked by machines only", report.clicked_machine),
        ("Links clicked by people (distinct per message)", report.links_clicked),
        ("Unsubscribed", report.unsubscribed),
        ("Failed (incl. provider rejects and rendering failures)", report.failed),
        ("Skipped at send", report.skipped_at_send),
        ("Remaining", report.remaining),
        ("Duplicate events (not counted)", report.duplicate_events),
    ];
    let hours: Vec<_> = report
        .timeline
        .iter()
        .map(|h| {
            context! {
                hour => h.hour, sent => h.sent.to_string(), delivered => h.delivered.to_string(),
                bounced => h.bounced.to_string(), complained => h.complained.to_string(),
                opened => h.opened.to_string(), clicked => h.clicked.to_string(),
                unsubscribed => h.unsubscribed.to_string(),
            }
        })
        .collect();
    env.get_template("report.html")?.render(context! {
        name => report.name,
        id => report.id.to_string(),
        status => report.status.as_str(),
        stalled => report.stalled.as_ref().map(|s| context! { stranded => s.stranded, reason => s.reason.clone() }),
        category => report.category.to_string(),
        generated_at,
        funnel => funnel(report),
        series => timeline(report),
        timeline_width => TIMELINE_WIDTH,
        timeline_height => TIMELINE_HEIGHT,
        totals => totals.iter().map(|(k, v)| context! { label => k, value => report.cell(*v).to_string() }).collect::<Vec<_>>(),
        rates => rates.iter().map(|(k, v)| context! { label => k, value => v.to_string() }).collect::<Vec<_>>(),
        hours,
        domains => super::report::domain_cells(&report.by_domain, report.min_cell).into_iter().map(|d| context! {
            domain => d.domain, recipients => d.recipients.to_string(), sent => d.sent.to_string(),
            delivered => d.delivered.to_string(), bounced => d.bounced.to_string(),
            tls_unavailable => d.tls_unavailable.to_string(), opened => d.opened.to_string(),
            complained => d.complained.to_string(),
        }).collect::<Vec<_>>(),
        min_cell => report.min_cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::report::TimelineHour;
    use crate::domain::{CampaignId, CampaignStatus, ConsentCategory, ExclusionCounts};

    fn report(name: &str) -> CampaignReport {
        CampaignReport {
            id: CampaignId::new_random(),
            name: name.into(),
            status: CampaignStatus::Completed,
            paused_reason: None,
            stalled: None,
            launch_at: None,
            category: ConsentCategory::parse("wellness-tips").unwrap(),
            shards_total: 1,
            shards_done: 1,
            evaluated: 120,
            audience: 100,
            excluded: ExclusionCounts::default(),
            sent: 100,
            skipped_at_send: 0,
            failed: 0,
            remaining: 0,
            delivered: 90,
            bounced_hard: 5,
            bounced_soft: 5,
            bounced_undetermined: 0,
            tls_unavailable: 0,
            secure_notices: 0,
            complained: 1,
            rejected: 0,
            delayed: 0,
            rendering_failed: 0,
            opened: 40,
            opened_machine: 12,
            clicked: 10,
            clicked_machine: 0,
            links_clicked: 14,
            unsubscribed: 2,
            duplicate_events: 0,
            min_cell: 11,
            by_domain: Vec::new(),
            timeline: vec![TimelineHour {
                hour: "2026-11-30T10:00:00Z".into(),
                sent: Cell::Count(100),
                delivered: Cell::Count(90),
                bounced: Cell::Count(10),
                complained: Cell::FewerThan(11),
                opened: Cell::Count(40),
                clicked: Cell::FewerThan(11),
                unsubscribed: Cell::FewerThan(11),
            }],
            definition: serde_json::json!({}),
        }
    }

    #[test]
    fn the_page_has_the_funnel_scaled_to_the_audience_and_no_external_assets() {
        let html = render_report_html(&report("Flu shots"), "2026-11-30T12:00:00Z").unwrap();
        assert!(html.contains(r#"<ol class="funnel" id="funnel">"#));
        assert!(html.contains(r#"style="width:100.0%""#), "the audience bar spans the track: {html}");
        assert!(html.contains(r#"style="width:90.0%""#), "delivered is 90% of it");
        assert!(html.contains("fewer than 11"));
        for external in ["http://", "https://", "<script", "<link", "@import", "url("] {
            assert!(!html.contains(external), "found {external}");
        }
    }

    #[test]
    fn reach_by_domain_names_only_domains_with_enough_recipients_and_sums_the_rest() {
        let reach = |domain: &str, recipients: u64, tls: u64| crate::ports::DomainReach {
            domain: crate::domain::RecipientDomain::parse(domain).unwrap(),
            recipients,
            sent: recipients - tls,
            delivered: recipients - tls,
            bounced: 0,
            tls_unavailable: tls,
            opened: 0,
            complained: 0,
        };
        let mut r = report("Reach");
        r.by_domain = vec![reach("big.example", 40, 12), reach("jane-doe.example", 2, 0), reach("small.example", 9, 0)];

        let html = render_report_html(&r, "now").unwrap();

        assert!(html.contains("<th scope=\"row\">big.example</th>"), "{html}");
        assert!(html.contains(">12<"), "the big domain's TLS failures are shown");
        assert!(!html.contains("jane-doe.example") && !html.contains("small.example"), "small domains are never named");
        assert!(html.contains("<th scope=\"row\">other domains</th><td class=\"n\">11</td>"), "{html}");
    }

    #[test]
    fn a_campaign_name_with_markup_is_escaped() {
        let html = render_report_html(&report("<script>alert(1)</script>"), "now").unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_page_shows_rendering_failures_rejects_and_failed_sends() {
        let mut r = report("Broken template");
        (r.rendering_failed, r.rejected, r.failed, r.sent) = (97, 3, 100, 0);

        let html = render_report_html(&r, "now").unwrap();

        let row = |label: &str, value: &str| {
            let at = html.find(label).unwrap_or_else(|| panic!("no row {label}"));
            html[at..].split("</tr>").next().unwrap().contains(&format!(">{value}<"))
        };
        assert!(row("Rendering failures", "97"), "{html}");
        assert!(row("Rejected by the provider", "fewer than 11"));
        assert!(row("Failed (incl. provider rejects and rendering failures)", "100"));
    }
}
