//! `carepost campaign watch ID`: the campaign's progress, polled from its
//! report, as a progress bar: fan-out shards first, then the audience's
//! sends settling (sent, skipped or failed). Ends when the campaign
//! completes, is cancelled, or pauses (saying why).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::campaign::Target;
use crate::client::AdminConnection;

const POLL: Duration = Duration::from_millis(500);

/// A count for the bar; a small cell ("fewer than 11") draws as zero.
fn count(report: &Value, key: &str) -> u64 {
    report[key].as_u64().unwrap_or(0)
}

/// A count as text, small cells as the API words them.
fn shown(report: &Value, key: &str) -> String {
    crate::table::count(&report[key])
}

pub async fn watch(target: &Target, admin: &AdminConnection) -> anyhow::Result<()> {
    let path = format!("/v1/campaigns/{}", target.checked_id()?);
    let bar = ProgressBar::new(0)
        .with_style(ProgressStyle::with_template("{prefix:>12} [{bar:40}] {pos}/{len} {msg}  {per_sec}  eta {eta}")?);
    loop {
        let report = admin.get_json(&path).await?;
        let status = report["status"].as_str().unwrap_or("unknown").to_owned();
        let (audience, remaining) = (count(&report, "audience"), count(&report, "remaining"));
        let settled = audience.saturating_sub(remaining);
        let fanning_out = status == "fanning_out" || status == "draft";
        let stalled = report["stalled"]["reason"].as_str();
        bar.set_prefix(if stalled.is_some() { "stalled".to_owned() } else { status.replace('_', " ") });
        bar.set_length(audience.max(1));
        bar.set_position(settled);
        bar.set_message(format!(
            "sent {} · skipped {} · failed {} · shards {}/{} · evaluated {}{}",
            shown(&report, "sent"),
            shown(&report, "skipped_at_send"),
            shown(&report, "failed"),
            shown(&report, "shards_done"),
            shown(&report, "shards_total"),
            shown(&report, "evaluated"),
            if fanning_out { " (audience still growing)" } else { "" }
        ));
        if let Some(why) = stalled {
            bar.println(format!("stalled: {why}"));
        }
        match status.as_str() {
            "completed" | "cancelled" => {
                bar.finish();
                println!(
                    "campaign {status}: {} sent of an audience of {}",
                    shown(&report, "sent"),
                    shown(&report, "audience")
                );
                return Ok(());
            }
            "paused" => {
                bar.abandon();
                let why = report["paused_reason"].as_str().unwrap_or("no reason recorded");
                println!("campaign paused ({why}); `carepost campaign resume {}` continues it", target.id);
                return Ok(());
            }
            _ => tokio::time::sleep(POLL).await,
        }
    }
}
