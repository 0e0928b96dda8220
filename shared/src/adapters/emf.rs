//! Metrics in CloudWatch's embedded metric format (EMF): one JSON object per
//! line, which CloudWatch Logs turns into metrics when Lambda writes it to
//! stdout. The embedded stack writes the same lines to `metrics.jsonl` in
//! its data directory, so an operator reads one format everywhere.
//!
//! A line carries the metric, its value, the timestamp and the campaign ID
//! (a random ID) as the only dimension; nothing else.

use std::io::Write;
use std::sync::Mutex;

use serde_json::json;
use time::OffsetDateTime;

use crate::domain::CampaignId;
use crate::ports::{Metric, Metrics};

/// The CloudWatch namespace of every Carepost metric.
pub const NAMESPACE: &str = "Carepost";

pub struct EmfMetrics {
    out: Mutex<Box<dyn Write + Send>>,
}

impl EmfMetrics {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        Self { out: Mutex::new(out) }
    }

    /// Lambda: CloudWatch Logs reads EMF lines from stdout.
    pub fn stdout() -> Self {
        Self::new(Box::new(std::io::stdout()))
    }

    /// The embedded stack: appends to a file.
    pub fn append_to(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self::new(Box::new(file)))
    }
}

/// One EMF line for `metric` (without the trailing newline).
pub fn emf_line(campaign: Option<&CampaignId>, metric: Metric, value: u64, at: OffsetDateTime) -> String {
    let name = metric.name();
    let timestamp = at.unix_timestamp_nanos() / 1_000_000;
    let dimensions: Vec<Vec<&str>> = if campaign.is_some() { vec![vec!["CampaignId"]] } else { vec![vec![]] };
    let mut line = json!({
        "_aws": {
            "Timestamp": timestamp as i64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": [{ "Name": name, "Unit": "Count" }],
            }],
        },
        name: value,
    });
    if let Some(id) = campaign {
        line["CampaignId"] = json!(id.to_string());
    }
    line.to_string()
}

impl Metrics for EmfMetrics {
    fn count(&self, campaign: Option<&CampaignId>, metric: Metric, value: u64) {
        let line = emf_line(campaign, metric, value, OffsetDateTime::now_utc());
        if let Ok(mut out) = self.out.lock() {
            // One write per line, so concurrent writers never interleave within a line.
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CampaignCounter;

    #[test]
    fn a_line_names_the_metric_its_unit_and_the_campaign_dimension() {
        let campaign = CampaignId::new_random();
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(Some(&campaign), Metric::Counter(CampaignCounter::Delivered), 3, at))
                .unwrap();
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Carepost");
        assert_eq!(directive["Dimensions"], json!([["CampaignId"]]));
        assert_eq!(directive["Metrics"], json!([{"Name": "Delivered", "Unit": "Count"}]));
        assert_eq!(line["Delivered"], 3);
        assert_eq!(line["CampaignId"], campaign.to_string());
        assert_eq!(line.as_object().unwrap().len(), 3, "nothing but the directive, the value and the dimension");
    }

    #[test]
    fn an_unattributed_metric_has_no_dimension() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line(None, Metric::UnmatchedEvent, 1, OffsetDateTime::now_utc())).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
        assert_eq!(line["UnmatchedEvents"], 1);
        assert!(line.get("CampaignId").is_none());
    }
}
