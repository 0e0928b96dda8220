//! Port: metrics.

use super::*;

/// What is measured per campaign. Names are CloudWatch metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// One of the campaign's event counters moved.
    Counter(CampaignCounter),
    /// The provider asked us to slow down.
    Throttled,
    /// A job failed its last receive and goes to the dead-letter queue.
    DeadLettered,
    /// A provider event matched no send (no campaign to attribute it to).
    UnmatchedEvent,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Counter(c) => match c {
                CampaignCounter::Sent => "Sent",
                CampaignCounter::Delivered => "Delivered",
                CampaignCounter::BouncedHard => "BouncedHard",
                CampaignCounter::BouncedSoft => "BouncedSoft",
                CampaignCounter::BouncedUndetermined => "BouncedUndetermined",
                CampaignCounter::TlsUnavailable => "TlsUnavailable",
                CampaignCounter::SecureNotices => "SecureNotices",
                CampaignCounter::Complained => "Complained",
                CampaignCounter::Opened => "Opened",
                CampaignCounter::OpenedMachine => "OpenedMachine",
                CampaignCounter::Clicked => "Clicked",
                CampaignCounter::ClickedMachine => "ClickedMachine",
                CampaignCounter::LinksClicked => "LinksClicked",
                CampaignCounter::Unsubscribed => "Unsubscribed",
                CampaignCounter::Rejected => "Rejected",
                CampaignCounter::Delayed => "Delayed",
                CampaignCounter::RenderingFailed => "RenderingFailed",
                CampaignCounter::DuplicateEvents => "DuplicateEvents",
                CampaignCounter::Settled => "Settled",
            },
            Metric::Throttled => "Throttled",
            Metric::DeadLettered => "DeadLettered",
            Metric::UnmatchedEvent => "UnmatchedEvents",
        }
    }
}

/// Counts for dashboards and alarms, dimensioned by campaign ID only (a
/// random ID: never PHI). Best effort: a metric that cannot be written is
/// dropped, never an error for the caller.
pub trait Metrics: Send + Sync {
    fn count(&self, campaign: Option<&CampaignId>, metric: Metric, value: u64);
}
