//! Port: send ledger.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerState {
    /// A sender holds the claim until `lease_until`.
    Claimed {
        attempt: u32,
        lease_until: OffsetDateTime,
    },
    Sent {
        provider_message_id: ProviderMessageId,
    },
    /// Not sent and never will be for this campaign: consent gone, suppressed.
    /// `reason` is a `SkipReason`'s stored text (`SkipReason::as_str`).
    Skipped {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

/// A row's state and what the provider (or first-party tracking) reported
/// a person did with the message: what a journey's engagement branch reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRow {
    pub state: LedgerState,
    /// A human open (an image proxy's is not one).
    pub opened: bool,
    /// A click on any link.
    pub clicked: bool,
}

impl LedgerRow {
    /// From the event names marked on the row (`EventMark::key`).
    pub fn from_marks<'a>(state: LedgerState, marks: impl IntoIterator<Item = &'a str>) -> LedgerRow {
        let (opened, clicked) = (CampaignCounter::Opened.as_str(), CampaignCounter::Clicked.as_str());
        let mut row = LedgerRow { state, opened: false, clicked: false };
        for mark in marks {
            row.opened |= mark == opened;
            row.clicked |= mark == clicked || mark.strip_prefix(clicked).is_some_and(|rest| rest.starts_with('#'));
        }
        row
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// This caller now holds the claim; `attempt` > 1 means an earlier holder
    /// let its lease lapse (it may have crashed after the provider accepted).
    Claimed { attempt: u32 },
    /// Another sender holds an unexpired claim: try again later.
    Busy,
    /// Already in a terminal state: acknowledge the job, do nothing.
    Done(LedgerState),
}

/// Terminal outcomes that can be undone, so their jobs can run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopenable {
    /// `Failed` rows: `carepost campaign retry-failed`.
    Failed,
    /// `Skipped` with `HELD_REASON`: jobs that met a paused campaign.
    Held,
}

/// The skip reason of a job held because its campaign was paused.
pub const HELD_REASON: &str = crate::domain::SkipReason::CampaignPaused.as_str();
/// The `Skipped` reason of a send job of a cancelled campaign.
pub const CANCELLED_REASON: &str = crate::domain::SkipReason::Cancelled.as_str();

/// What `first_event` marks as counted for one message: a counter, and for
/// clicks the link (so clicks on two links of one message are two, and a
/// repeat of either is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMark {
    pub counter: CampaignCounter,
    pub link: Option<crate::domain::LinkKey>,
}

impl EventMark {
    pub fn link(counter: CampaignCounter, link: crate::domain::LinkKey) -> Self {
        Self { counter, link: Some(link) }
    }

    /// The stored name: `clicked`, or `clicked#h0123456789abcdef`.
    pub fn key(&self) -> String {
        match &self.link {
            Some(link) => format!("{}#{}", self.counter.as_str(), link.as_str()),
            None => self.counter.as_str().to_owned(),
        }
    }
}

impl From<CampaignCounter> for EventMark {
    fn from(counter: CampaignCounter) -> Self {
        Self { counter, link: None }
    }
}

/// How far a sent message got, as the provider reported it. A later report
/// replaces an earlier one only if it ranks at least as high (`rank`): a
/// delay does not undo a delivery, a bounce after a delivery is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Delayed,
    Delivered,
    Bounced(crate::domain::BounceKind),
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Delayed,
        DeliveryState::Delivered,
        DeliveryState::Bounced(crate::domain::BounceKind::Permanent),
        DeliveryState::Bounced(crate::domain::BounceKind::Transient),
        DeliveryState::Bounced(crate::domain::BounceKind::Undetermined),
        DeliveryState::Bounced(crate::domain::BounceKind::TlsUnavailable),
    ];

    pub fn as_str(self) -> &'static str {
        use crate::domain::BounceKind;
        match self {
            DeliveryState::Delayed => "delayed",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Bounced(BounceKind::Permanent) => "bounced_permanent",
            DeliveryState::Bounced(BounceKind::Transient) => "bounced_transient",
            DeliveryState::Bounced(BounceKind::Undetermined) => "bounced_undetermined",
            DeliveryState::Bounced(BounceKind::TlsUnavailable) => "tls_unavailable",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// A stored column or attribute: absent is none, an unknown word is corrupt data.
    pub fn parse_stored(stored: Option<&str>) -> Result<Option<Self>, StoreError> {
        stored
            .map(|s| Self::parse(s).ok_or_else(|| StoreError::corrupt("stored delivery state is unknown")))
            .transpose()
    }

    pub fn rank(self) -> u8 {
        match self {
            DeliveryState::Delayed => 1,
            DeliveryState::Delivered => 2,
            DeliveryState::Bounced(_) => 3,
        }
    }

    /// The states this one may replace (its rank or below).
    pub fn replaces(self) -> Vec<DeliveryState> {
        Self::ALL.into_iter().filter(|d| d.rank() <= self.rank()).collect()
    }
}

/// One provider report about a sent message, for its ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub state: DeliveryState,
    /// SES's bounce subtype (a fixed vocabulary), for a bounce.
    pub bounce_subtype: Option<String>,
    /// SES's delay type (a fixed vocabulary), for a delay.
    pub delay_type: Option<String>,
}

/// What the ledger row keeps of the provider's reports: the highest-ranked
/// state, and the latest bounce subtype and delay type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub state: Option<DeliveryState>,
    pub bounce_subtype: Option<String>,
    pub delay_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerCounts {
    pub claimed: u64,
    pub sent: u64,
    pub skipped: u64,
    pub failed: u64,
}

/// How far a campaign's mail got at one recipient domain, counted from the
/// ledger rows settled with it. `tls_unavailable` covers both a relay's
/// refusal (row failed with that reason) and SES's expiry (delivery state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainReach {
    pub domain: crate::domain::RecipientDomain,
    /// Rows settled with this domain: sent, or refused by the provider.
    pub recipients: u64,
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
    pub tls_unavailable: u64,
    pub opened: u64,
    pub complained: u64,
}

/// One ledger row settled with a domain, as `reach_by_domain` reads it.
pub struct ReachRow<'a> {
    pub domain: &'a str,
    /// The stored state: `sent`, `failed`, …
    pub state: &'a str,
    pub reason: Option<&'a str>,
    pub delivery: Option<DeliveryState>,
    pub opened: bool,
    pub complained: bool,
}

/// Sums rows into one `DomainReach` per domain, most sent first (ties by
/// name). Both adapters read their rows and call this, so the rule is one.
pub fn tally_reach<'a>(rows: impl IntoIterator<Item = ReachRow<'a>>) -> Result<Vec<DomainReach>, StoreError> {
    use crate::domain::{BounceKind, RecipientDomain};
    let mut by: std::collections::BTreeMap<RecipientDomain, DomainReach> = Default::default();
    for row in rows {
        let domain =
            RecipientDomain::parse(row.domain).ok_or_else(|| StoreError::corrupt("ledger recipient domain"))?;
        let reach = by.entry(domain.clone()).or_insert_with(|| DomainReach {
            domain,
            recipients: 0,
            sent: 0,
            delivered: 0,
            bounced: 0,
            tls_unavailable: 0,
            opened: 0,
            complained: 0,
        });
        let refused_for_tls = row.state == "failed" && row.reason == Some("tls_unavailable");
        // As the report's `sent`: rows in state `sent` (a reject later makes one `failed`).
        reach.recipients += 1;
        reach.sent += u64::from(row.state == "sent");
        match row.delivery {
            Some(DeliveryState::Delivered) => reach.delivered += 1,
            Some(DeliveryState::Bounced(BounceKind::TlsUnavailable)) => reach.tls_unavailable += 1,
            Some(DeliveryState::Bounced(_)) => reach.bounced += 1,
            _ if refused_for_tls => reach.tls_unavailable += 1,
            _ => {}
        }
        reach.opened += u64::from(row.opened);
        reach.complained += u64::from(row.complained);
    }
    let mut reach: Vec<DomainReach> = by.into_values().collect();
    reach.sort_by(|a, b| b.sent.cmp(&a.sent).then_with(|| a.domain.cmp(&b.domain)));
    Ok(reach)
}

/// Exactly-once bookkeeping per (campaign, contact).
#[async_trait]
pub trait SendLedger: Send + Sync {
    async fn claim(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        now: OffsetDateTime,
        lease: Duration,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Records the outcome of the claim held as `attempt`; `Conflict` if that
    /// claim is no longer ours. `domain`: for a message that went to (or was
    /// refused at) the provider, the recipient's domain, kept on the row for
    /// `reach_by_domain`; nothing else of the address is stored.
    async fn settle_with(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        state: &LedgerState,
        domain: Option<&crate::domain::RecipientDomain>,
    ) -> Result<(), StoreError>;
    /// `settle_with` for an outcome that names no recipient domain.
    async fn settle(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        attempt: u32,
        state: &LedgerState,
    ) -> Result<(), StoreError> {
        self.settle_with(campaign, contact, attempt, state, None).await
    }
    /// Sent, delivered, bounced, TLS failures, opened and complained per
    /// recipient domain of the campaign, most sent first.
    async fn reach_by_domain(&self, campaign: &CampaignId) -> Result<Vec<DomainReach>, StoreError>;
    /// Gives up a claim known not to have been sent (transient failure).
    async fn release(&self, campaign: &CampaignId, contact: &ContactId, attempt: u32) -> Result<(), StoreError>;
    async fn state(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerState>, StoreError>;
    /// The state with the opens and clicks marked on the row, in one read.
    async fn row(&self, campaign: &CampaignId, contact: &ContactId) -> Result<Option<LedgerRow>, StoreError>;
    async fn find_by_provider_id(&self, id: &ProviderMessageId) -> Result<Option<(CampaignId, ContactId)>, StoreError>;
    async fn counts(&self, campaign: &CampaignId) -> Result<LedgerCounts, StoreError>;
    /// Records that the provider reported `event` for this message; true
    /// the first time, false for a repeat (providers deliver events at least
    /// once, and a repeat must not be counted again).
    async fn first_mark(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        event: &EventMark,
    ) -> Result<bool, StoreError>;

    /// `first_mark` of a counter alone (no link).
    async fn first_event(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        event: CampaignCounter,
    ) -> Result<bool, StoreError> {
        self.first_mark(campaign, contact, &event.into()).await
    }

    /// The provider could not send a message it had accepted (an SES Reject
    /// or Rendering Failure): a `Sent` row becomes `Failed` with `reason`,
    /// keeping its provider message ID so later events still match it.
    /// Returns whether it changed anything (false for any other state, or
    /// no row).
    async fn fail_sent(&self, campaign: &CampaignId, contact: &ContactId, reason: &str) -> Result<bool, StoreError>;

    /// Keeps the provider's report of how far the message got on its row
    /// (state by rank; bounce subtype and delay type, latest wins) and
    /// extends the row's retention from `now`. Nothing happens without a row.
    async fn record_delivery(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// `record_delivery`, then `first_mark` of the same event: whether this
    /// is the first time the mark is made. An adapter
    /// may do both in one write (DynamoDB does: the two were two writes on
    /// the same item for every delivery event).
    async fn record_delivery_marked(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        report: &DeliveryReport,
        now: OffsetDateTime,
        mark: &EventMark,
    ) -> Result<bool, StoreError> {
        self.record_delivery(campaign, contact, report, now).await?;
        self.first_mark(campaign, contact, mark).await
    }

    /// What the row keeps of the provider's reports (empty without a row).
    async fn delivery(&self, campaign: &CampaignId, contact: &ContactId) -> Result<DeliveryRecord, StoreError>;
    /// Up to `limit` contacts of `campaign` in the `which` state whose ID
    /// sorts after `after`, in ID order.
    async fn reopenable(
        &self,
        campaign: &CampaignId,
        which: Reopenable,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;
    /// Up to `limit` contacts of `campaign`, after `after` in ID order, whose
    /// rows are neither terminal nor held: released, or claimed, with the
    /// last lease ended before `lapsed_before`. Past the longest back-off
    /// such a row has no job left in the queue (it was dead-lettered).
    async fn stranded(
        &self,
        campaign: &CampaignId,
        lapsed_before: OffsetDateTime,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<ContactId>, StoreError>;
    /// Makes a `which` row claimable again (as if released); returns false
    /// (and changes nothing) if the row is not in that state.
    async fn reopen(&self, campaign: &CampaignId, contact: &ContactId, which: Reopenable) -> Result<bool, StoreError>;

    /// The provider reports it accepted this (campaign, contact) message (its
    /// Send event): a claim still open, whatever its attempt, becomes `Sent`.
    /// Returns whether it changed anything. Safe against races: `settle` is
    /// conditional on the attempt read here.
    async fn record_acceptance(
        &self,
        campaign: &CampaignId,
        contact: &ContactId,
        provider_message_id: &ProviderMessageId,
    ) -> Result<bool, StoreError> {
        match self.state(campaign, contact).await? {
            Some(LedgerState::Claimed { attempt, .. }) => {
                let sent = LedgerState::Sent { provider_message_id: provider_message_id.clone() };
                match self.settle(campaign, contact, attempt, &sent).await {
                    Ok(()) => Ok(true),
                    Err(StoreError::Conflict(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            _ => Ok(false),
        }
    }
}
