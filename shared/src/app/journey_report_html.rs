//! The journey report as one self-contained HTML page (`carepost journey
//! report --html FILE`, `GET /v1/journeys/{id}/report?format=html`): the
//! steps drawn as a flow of cards, each with its counts and where it leads
//! (a branch's yes and no, a split's shares), and the exits by reason. No
//! scripts, fonts, images or styles from anywhere else; minijinja's HTML
//! auto-escaping, so a journey or step name cannot inject markup.

use minijinja::{Environment, context};

use super::journey_report::JourneyReport;

const TEMPLATE: &str = include_str!("journey_report.html.j2");

pub fn render_journey_report_html(report: &JourneyReport, generated_at: &str) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("journey_report.html", TEMPLATE)?;
    let r = minijinja::Value::from_serialize(report);
    // The holdout is no step: named, not linked.
    let holdout = super::journey_report::HOLDOUT;
    env.get_template("journey_report.html")?.render(context! { r, generated_at, holdout })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::app::journey_report::{HOLDOUT, Link, StepReport};
    use crate::app::report::Cell;
    use crate::domain::JourneyId;

    fn step(name: &str, kind: &'static str, next: Vec<Link>) -> StepReport {
        let send = (kind == "send").then_some(Cell::Count(4));
        StepReport {
            step: name.into(),
            kind,
            here: Cell::FewerThan(11),
            sent: send,
            skipped: send.map(|_| Cell::Count(0)),
            failed: send.map(|_| Cell::Count(0)),
            opened: send.map(|_| Cell::Count(0)),
            clicked: send.map(|_| Cell::Count(0)),
            next,
        }
    }

    #[test]
    fn the_page_draws_each_step_with_where_it_leads_and_escapes_every_name() {
        let link = |when: &str, to: &str| Link { when: when.into(), step: to.into(), contacts: None };
        let counted = |when: &str, to: &str, n: u64| Link { contacts: Some(Cell::Count(n)), ..link(when, to) };
        let report = JourneyReport {
            id: JourneyId::new_random(),
            name: "<script>alert(1)</script> series".into(),
            version: 2,
            status: "live",
            entered: Cell::Count(40),
            active: Cell::Count(12),
            steps: vec![
                step("welcome", "send", vec![link("", "opened")]),
                step("opened", "branch", vec![counted("yes", "tips", 12), counted("no", "reminder", 16)]),
                step("tips", "send", vec![]),
                step("split", "split", vec![counted("90%", "tips", 9), counted("10%", HOLDOUT, 1)]),
            ],
            exited: BTreeMap::from([("completed", Cell::Count(28))]),
            min_cell: 11,
        };

        let page = render_journey_report_html(&report, "2026-12-04T12:00:00Z").unwrap();

        assert!(!page.contains("<script>"), "the name is escaped");
        assert!(page.contains("&lt;script&gt;"));
        assert!(
            page.contains(
                "yes: → <a href=\"#step-tips\">tips</a> (12) · no: → <a href=\"#step-reminder\">reminder</a> (16)"
            ),
            "each way with how many went it"
        );
        assert!(page.contains("10%: → holdout (never mailed) (1)"), "the holdout named, not linked");
        assert!(page.contains("here now <b>fewer than 11</b>"), "a small cell as the API shows it");
        assert_eq!(page.matches("<li>sent <b>4</b></li>").count(), 2, "only send steps show sends");
        assert!(page.contains("the end: contacts leave here"));
        assert!(page.contains("Counts from 1 to 10 are shown as \"fewer than 11\""));
        let counted_exactly = JourneyReport { min_cell: 1, ..report };
        let exact = render_journey_report_html(&counted_exactly, "2026-12-04T12:00:00Z").unwrap();
        assert!(!exact.contains("Counts from 1 to"), "no rule to explain when every count is shown");
    }
}
