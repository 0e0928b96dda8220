//! Whether a contact is in a campaign's audience, judged the same way by
//! fan-out and by the audience estimate: suppression, consent, HIPAA
//! authorization, frequency cap, then the segment (decrypting only what it
//! reads).

use std::sync::Arc;

use super::AppError;
use crate::config::FrequencyCap;
use crate::crypto::Envelope;
use crate::domain::{Behaviour, ConsentStatus, ContactId, ExclusionCounts, Segment, hipaa_authorized};
use crate::ports::{ActivityStore, Clock, ConsentStore, ContactRecord, LedgerState, SendLedger, SuppressionList};

/// What fan-out reads for a whole page before judging its contacts.
pub struct PageFacts {
    suppressed: std::collections::HashSet<crate::domain::BlindIndex>,
    grants: std::collections::HashMap<ContactId, Vec<crate::domain::ConsentGrant>>,
}

/// Whether a contact is in a campaign's audience, or the first reason it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Include,
    NotInSegment,
    MissingAttribute,
    NoConsent,
    ConsentPending,
    ConsentWithdrawn,
    Suppressed,
    NoHipaaAuthorization,
    FrequencyCap,
}

impl Verdict {
    /// Adds an exclusion to its reason's count; true if the contact is included.
    pub(crate) fn tally(self, excluded: &mut ExclusionCounts) -> bool {
        let counter = match self {
            Verdict::Include => return true,
            Verdict::NotInSegment => &mut excluded.not_in_segment,
            Verdict::MissingAttribute => &mut excluded.missing_attribute,
            Verdict::NoConsent => &mut excluded.no_consent,
            Verdict::ConsentPending => &mut excluded.consent_pending,
            Verdict::ConsentWithdrawn => &mut excluded.consent_withdrawn,
            Verdict::Suppressed => &mut excluded.suppressed,
            Verdict::NoHipaaAuthorization => &mut excluded.no_hipaa_authorization,
            Verdict::FrequencyCap => &mut excluded.frequency_cap,
        };
        *counter += 1;
        false
    }

    /// Whether reaching this verdict decrypted the contact's segment attributes.
    pub(crate) fn decrypted(self) -> bool {
        matches!(self, Verdict::Include | Verdict::NotInSegment | Verdict::MissingAttribute)
    }
}

pub struct AudienceJudge {
    pub(super) suppression: Arc<dyn SuppressionList>,
    pub(super) consent: Arc<dyn ConsentStore>,
    pub(super) activity: Arc<dyn ActivityStore>,
    pub(super) ledger: Arc<dyn SendLedger>,
    pub(super) envelope: Arc<Envelope>,
    pub(super) frequency_cap: Option<FrequencyCap>,
    pub(super) clock: Arc<dyn Clock>,
}

impl AudienceJudge {
    /// Suppression and consent of a page of contacts, read in two calls.
    pub async fn page_facts(
        &self,
        campaign: &crate::domain::Campaign,
        records: &[ContactRecord],
    ) -> Result<PageFacts, AppError> {
        self.page_facts_for(&campaign.category, records).await
    }

    /// [`Self::page_facts`] for mail of `category`.
    pub(super) async fn page_facts_for(
        &self,
        category: &crate::domain::ConsentCategory,
        records: &[ContactRecord],
    ) -> Result<PageFacts, AppError> {
        let indexes: Vec<crate::domain::BlindIndex> = records.iter().map(|r| r.email_index.clone()).collect();
        let ids: Vec<ContactId> = records.iter().map(|r| r.id).collect();
        let categories = [category.clone(), crate::domain::ConsentCategory::hipaa_authorization()];
        Ok(PageFacts {
            suppressed: self.suppression.suppressed_among(&indexes).await?,
            grants: self.consent.grants_of(&ids, &categories).await?,
        })
    }

    pub async fn verdict(
        &self,
        campaign: &crate::domain::Campaign,
        record: &ContactRecord,
        facts: &PageFacts,
    ) -> Result<Verdict, AppError> {
        let now = self.clock.now();
        let standing = Self::standing(&campaign.category, campaign.needs_hipaa_authorization(), record, facts, now);
        if standing != Verdict::Include {
            return Ok(standing);
        }
        if let Some(cap) = self.frequency_cap
            && campaign.counts_toward_frequency_cap()
        {
            let sent = self.activity.marketing_sends_since(&record.id, now - cap.window, &campaign.id).await?;
            if sent >= cap.max {
                return Ok(Verdict::FrequencyCap);
            }
        }
        // Decrypt only what the segment reads (not even the email).
        let read = campaign.segment.read_codes();
        let (_, profile) = self.envelope.open_where(&record.id, &record.sealed, |code| read.contains(&code)).await?;
        let behaviour = self.behaviour(&campaign.segment, &record.id).await?;
        Ok(if campaign.segment.matches(&profile, now.date(), &behaviour) {
            Verdict::Include
        } else if campaign.segment.lacks_attribute(&profile) {
            Verdict::MissingAttribute
        } else {
            Verdict::NotInSegment
        })
    }

    /// Suppression, consent to `category` and, where `needs_hipaa`, the
    /// HIPAA marketing authorization: what must hold before anything about
    /// the contact's attributes is read.
    pub(super) fn standing(
        category: &crate::domain::ConsentCategory,
        needs_hipaa: bool,
        record: &ContactRecord,
        facts: &PageFacts,
        now: time::OffsetDateTime,
    ) -> Verdict {
        if facts.suppressed.contains(&record.email_index) {
            return Verdict::Suppressed;
        }
        let grants = facts.grants.get(&record.id).map(Vec::as_slice).unwrap_or_default();
        match grants.iter().find(|g| &g.category == category) {
            None => return Verdict::NoConsent,
            Some(g) if g.status == ConsentStatus::Pending => return Verdict::ConsentPending,
            Some(g) if !g.allows_send(now) => return Verdict::ConsentWithdrawn,
            Some(_) => {}
        }
        if needs_hipaa && !hipaa_authorized(grants, now) {
            return Verdict::NoHipaaAuthorization;
        }
        Verdict::Include
    }

    /// What the segment's behavioural rules need to know of the contact.
    pub(super) async fn behaviour(&self, segment: &Segment, contact: &ContactId) -> Result<Behaviour, AppError> {
        self.behaviour_of([segment], contact).await
    }

    /// What the behavioural rules of all these segments need to know of the
    /// contact: its activity read once if any rule asks about engagement,
    /// and each named campaign's ledger row once. Nothing is read when no
    /// rule is behavioural.
    pub(super) async fn behaviour_of<'a>(
        &self,
        segments: impl IntoIterator<Item = &'a Segment>,
        contact: &ContactId,
    ) -> Result<Behaviour, AppError> {
        let (mut engagement, mut campaigns) = (false, Vec::new());
        for segment in segments {
            engagement |= segment.reads_engagement();
            for campaign in segment.campaigns_read() {
                if !campaigns.contains(campaign) {
                    campaigns.push(*campaign);
                }
            }
        }
        let mut behaviour = Behaviour::default();
        if engagement && let Some(activity) = self.activity.activity(contact).await? {
            behaviour.last_open = activity.last_open.map(|t| t.date());
            behaviour.last_click = activity.last_click.map(|t| t.date());
        }
        for campaign in campaigns {
            if let Some(LedgerState::Sent { .. }) = self.ledger.state(&campaign, contact).await? {
                behaviour.received.push(campaign);
            }
        }
        Ok(behaviour)
    }
}
