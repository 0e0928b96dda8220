//! Campaigns: who (segment + consent category), what (template), from whom,
//! and where in its lifecycle it is.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CampaignId, ConsentCategory, EmailAddress, Segment};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    /// Launched with a `launch_at` still ahead: fan-out starts then.
    Scheduled,
    FanningOut,
    Sending,
    /// Stopped by an administrator or by the reputation guard; its send jobs
    /// are held in the ledger until it is resumed.
    Paused,
    Completed,
    /// Stopped for good by an administrator: no more fan-out, every job not
    /// yet handed over is settled as cancelled.
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::FanningOut => "fanning_out",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "scheduled" => Some(Self::Scheduled),
            "fanning_out" => Some(Self::FanningOut),
            "sending" => Some(Self::Sending),
            "paused" => Some(Self::Paused),
            "completed" => Some(Self::Completed),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Subject, optional preheader, HTML and text bodies in minijinja syntax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSource {
    pub subject: String,
    /// The line mail clients show after the subject in a message list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preheader: Option<String>,
    pub html: String,
    pub text: String,
}

/// Why a campaign is sent, as HIPAA sees it. PHI-personalized *marketing*
/// needs each patient's authorization (45 CFR 164.508(a)(3)); treatment
/// communications and health care operations do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignPurpose {
    Marketing,
    Treatment,
    Operations,
}

impl Campaign {
    /// Whether each recipient needs a valid HIPAA marketing authorization.
    pub fn needs_hipaa_authorization(&self) -> bool {
        self.phi_personalized && self.purpose == Some(CampaignPurpose::Marketing)
    }

    /// Whether the marketing frequency cap applies: marketing, or no stated
    /// purpose (a newsletter); treatment and operations mail (an appointment
    /// reminder) is never held back by it.
    pub fn counts_toward_frequency_cap(&self) -> bool {
        matches!(self.purpose, None | Some(CampaignPurpose::Marketing))
    }
}

/// What a campaign tracks itself. Both off by default: an open pixel and
/// rewritten links tell the clinic who read what, which for a
/// condition-specific campaign is PHI by context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tracking {
    #[serde(default)]
    pub opens: bool,
    #[serde(default)]
    pub clicks: bool,
}

/// The visible sender: an address of a verified identity and a display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: String,
    pub address: EmailAddress,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub category: ConsentCategory,
    pub segment: Segment,
    pub template: TemplateSource,
    /// PHI-personalized marketing: the template may use PHI attributes in
    /// the body (never in the subject, preheader or links).
    pub phi_personalized: bool,
    /// Why the campaign is sent; required when it is PHI-personalized.
    pub purpose: Option<CampaignPurpose>,
    /// First-party open and click tracking (off unless the campaign opts in).
    pub tracking: Tracking,
    /// This campaign's choice for recipients without TLS; `None`: the stack's `TLS_FALLBACK`.
    pub tls_fallback: Option<super::TlsFallback>,
    pub sender: Sender,
    /// When a launch starts fan-out; `None`: at once.
    pub launch_at: Option<OffsetDateTime>,
    pub status: CampaignStatus,
    pub shards: u16,
    pub created_at: OffsetDateTime,
}

/// One fan-out shard's progress, saved after every page so a crash or a
/// duplicate shard message resumes rather than restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProgress {
    pub shard: u16,
    /// Where the next page starts (the store's opaque scan cursor).
    pub cursor: Option<String>,
    pub done: bool,
    pub evaluated: u64,
    pub emitted: u64,
    pub excluded: ExclusionCounts,
}

/// Why contacts were left out of a campaign's audience, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionCounts {
    pub not_in_segment: u64,
    pub no_consent: u64,
    pub consent_pending: u64,
    pub consent_withdrawn: u64,
    pub suppressed: u64,
    /// PHI-personalized marketing without a valid HIPAA authorization.
    #[serde(default)]
    pub no_hipaa_authorization: u64,
    /// Already sent the most marketing emails the frequency cap allows.
    #[serde(default)]
    pub frequency_cap: u64,
    /// Left out by the segment while lacking an attribute it reads.
    #[serde(default)]
    pub missing_attribute: u64,
}

impl ExclusionCounts {
    pub fn add(&mut self, other: &ExclusionCounts) {
        self.not_in_segment += other.not_in_segment;
        self.no_consent += other.no_consent;
        self.consent_pending += other.consent_pending;
        self.consent_withdrawn += other.consent_withdrawn;
        self.suppressed += other.suppressed;
        self.no_hipaa_authorization += other.no_hipaa_authorization;
        self.frequency_cap += other.frequency_cap;
        self.missing_attribute += other.missing_attribute;
    }
}

/// Event counters kept per campaign. `Opened` and `Clicked` count people
/// (first human open or click per message); the `Machine` ones count
/// messages opened or clicked only by image proxies and link scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignCounter {
    /// Accepted by the provider (kept in time buckets for the timeline; the
    /// report's total comes from the send ledger).
    Sent,
    Delivered,
    BouncedHard,
    BouncedSoft,
    /// SES could not classify the bounce; counted with the soft ones' rate.
    BouncedUndetermined,
    /// Not delivered because the recipient's server could not do TLS (an
    /// SES expiry naming TLS, or an SMTP relay refusing STARTTLS): counted
    /// apart from bounces, never suppresses.
    TlsUnavailable,
    /// Of those, the recipients sent a secure message's notice instead
    /// (the `secure_message` fallback).
    SecureNotices,
    Complained,
    Opened,
    OpenedMachine,
    Clicked,
    ClickedMachine,
    /// Distinct links of a message clicked by people (a message's clicks on
    /// two links are two, a repeat of one is a duplicate).
    LinksClicked,
    Unsubscribed,
    Rejected,
    Delayed,
    RenderingFailed,
    /// Provider events received again for a message (at-least-once delivery).
    DuplicateEvents,
    /// Send jobs settled (sent, skipped or failed), added once per send
    /// batch: the senders' own tally, so a batch need not count the whole
    /// ledger to learn whether the campaign may be complete. A lower bound
    /// (a batch that dies before writing it loses its share); the ledger
    /// stays the truth.
    Settled,
}

impl CampaignCounter {
    pub const ALL: [CampaignCounter; 19] = [
        CampaignCounter::Sent,
        CampaignCounter::Delivered,
        CampaignCounter::BouncedHard,
        CampaignCounter::BouncedSoft,
        CampaignCounter::BouncedUndetermined,
        CampaignCounter::TlsUnavailable,
        CampaignCounter::SecureNotices,
        CampaignCounter::Complained,
        CampaignCounter::Opened,
        CampaignCounter::OpenedMachine,
        CampaignCounter::Clicked,
        CampaignCounter::ClickedMachine,
        CampaignCounter::LinksClicked,
        CampaignCounter::Unsubscribed,
        CampaignCounter::Rejected,
        CampaignCounter::Delayed,
        CampaignCounter::RenderingFailed,
        CampaignCounter::DuplicateEvents,
        CampaignCounter::Settled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CampaignCounter::Sent => "sent",
            CampaignCounter::Delivered => "delivered",
            CampaignCounter::BouncedHard => "bounced_hard",
            CampaignCounter::BouncedSoft => "bounced_soft",
            CampaignCounter::BouncedUndetermined => "bounced_undetermined",
            CampaignCounter::TlsUnavailable => "tls_unavailable",
            CampaignCounter::SecureNotices => "secure_notices",
            CampaignCounter::Complained => "complained",
            CampaignCounter::Opened => "opened",
            CampaignCounter::OpenedMachine => "opened_machine",
            CampaignCounter::Clicked => "clicked",
            CampaignCounter::ClickedMachine => "clicked_machine",
            CampaignCounter::LinksClicked => "links_clicked",
            CampaignCounter::Unsubscribed => "unsubscribed",
            CampaignCounter::Rejected => "rejected",
            CampaignCounter::Delayed => "delayed",
            CampaignCounter::RenderingFailed => "rendering_failed",
            CampaignCounter::DuplicateEvents => "duplicate_events",
            CampaignCounter::Settled => "settled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}
