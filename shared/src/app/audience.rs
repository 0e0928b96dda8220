//! The audience estimate (a dry run): every contact judged exactly as
//! fan-out judges it, with nothing enqueued, counted as included or by the
//! first reason it is left out. Counts from 1 to `min_cell - 1` are shown as
//! "fewer than N", so an estimate cannot single out a patient; the total
//! number of contacts evaluated is exact.

//!
//! A large population is judged over several calls: each call works until
//! its time budget (`Settings::dry_run_budget`, under API Gateway's 29 s)
//! and, if contacts remain, answers with a `resume` token that carries the
//! shards' cursors and the raw counts so far, sealed (`crypto::sealed_state`):
//! the caller can bring it back but cannot read a partial count.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::report::Cell;
use super::{AppError, AudienceJudge, Auditor, CampaignCatalog};
use crate::config::Settings;
use crate::crypto::Keyring;
use crate::domain::{CampaignId, ExclusionCounts, InvalidField};
use crate::ports::{Clock, ContactStore, ShardSpec};

/// What a resume token is sealed for, and how long it stays good: counts
/// gathered an hour ago no longer describe the contacts.
const RESUME_PURPOSE: &str = "audience-estimate";
const RESUME_LIFETIME: time::Duration = time::Duration::hours(1);

/// The answer to one estimate call.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EstimateProgress {
    Complete(AudienceEstimate),
    Partial(PartialEstimate),
}

#[derive(Debug, Clone, Serialize)]
pub struct AudienceEstimate {
    pub campaign_id: CampaignId,
    /// Always true: every contact was judged.
    pub complete: bool,
    pub evaluated: u64,
    pub included: Cell,
    pub excluded: ExcludedCells,
    pub min_cell: u64,
}

/// Contacts remain: call again with `resume`.
#[derive(Debug, Clone, Serialize)]
pub struct PartialEstimate {
    pub campaign_id: CampaignId,
    /// Always false.
    pub complete: bool,
    /// Contacts judged so far (exact: it says nothing of any one patient).
    pub evaluated: u64,
    pub resume: String,
}

/// One shard's place and counts, inside the sealed token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ShardTally {
    cursor: Option<String>,
    done: bool,
    evaluated: u64,
    included: u64,
    excluded: ExclusionCounts,
}
/// Why contacts are left out, in the order fan-out checks: each contact
/// counts under the first reason that applies.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExcludedCells {
    pub suppressed: Cell,
    pub no_consent: Cell,
    pub consent_pending: Cell,
    pub consent_withdrawn: Cell,
    pub no_hipaa_authorization: Cell,
    pub frequency_cap: Cell,
    pub missing_attribute: Cell,
    pub not_in_segment: Cell,
}

impl ExcludedCells {
    pub fn of(e: &ExclusionCounts, min_cell: u64) -> ExcludedCells {
        let cell = |n| Cell::of(n, min_cell);
        ExcludedCells {
            suppressed: cell(e.suppressed),
            no_consent: cell(e.no_consent),
            consent_pending: cell(e.consent_pending),
            consent_withdrawn: cell(e.consent_withdrawn),
            no_hipaa_authorization: cell(e.no_hipaa_authorization),
            frequency_cap: cell(e.frequency_cap),
            missing_attribute: cell(e.missing_attribute),
            not_in_segment: cell(e.not_in_segment),
        }
    }
}

pub struct AudienceEstimator {
    pub(super) contacts: Arc<dyn ContactStore>,
    pub(super) catalog: Arc<CampaignCatalog>,
    pub(super) judge: Arc<AudienceJudge>,
    pub(super) audit: Arc<Auditor>,
    pub(super) keyring: Arc<Keyring>,
    pub(super) settings: Arc<Settings>,
    pub(super) clock: Arc<dyn Clock>,
}

impl AudienceEstimator {
    /// Judges contacts for the campaign (whatever its status) without
    /// sending anything, from the start or from a `resume` token, until
    /// every contact is judged or the time budget is spent. The shards run
    /// concurrently, each at least one page per call; each page's
    /// decryption is one `campaign.dry_run` audit entry.
    pub async fn estimate(&self, id: &CampaignId, resume: Option<&str>) -> Result<EstimateProgress, AppError> {
        let loaded = self.catalog.load(id).await?;
        let tallies = match resume {
            None => vec![ShardTally::default(); usize::from(self.settings.throughput.fanout_shards.max(1))],
            Some(token) => self.open_resume(id, token)?,
        };
        let total = u16::try_from(tallies.len()).map_err(|_| bad_resume())?;
        let deadline = Instant::now() + self.settings.dry_run_budget;
        let rounds = tallies.into_iter().enumerate().map(|(index, tally)| {
            let spec = ShardSpec { index: index as u16, total };
            self.estimate_shard(&loaded.campaign, spec, tally, deadline)
        });
        let tallies: Vec<ShardTally> = futures::future::join_all(rounds).await.into_iter().collect::<Result<_, _>>()?;
        let evaluated = tallies.iter().map(|t| t.evaluated).sum();
        if tallies.iter().any(|t| !t.done) {
            let expires = self.clock.now() + RESUME_LIFETIME;
            let resume = self.keyring.state.seal(RESUME_PURPOSE, id.as_bytes(), &tallies, expires);
            return Ok(EstimateProgress::Partial(PartialEstimate {
                campaign_id: *id,
                complete: false,
                evaluated,
                resume,
            }));
        }
        let included = tallies.iter().map(|t| t.included).sum();
        let mut excluded = ExclusionCounts::default();
        tallies.iter().for_each(|t| excluded.add(&t.excluded));
        let min_cell = self.settings.min_cell;
        Ok(EstimateProgress::Complete(AudienceEstimate {
            campaign_id: *id,
            complete: true,
            evaluated,
            included: Cell::of(included, min_cell),
            excluded: ExcludedCells::of(&excluded, min_cell),
            min_cell,
        }))
    }

    fn open_resume(&self, id: &CampaignId, token: &str) -> Result<Vec<ShardTally>, AppError> {
        let tallies: Vec<ShardTally> = self
            .keyring
            .state
            .open(RESUME_PURPOSE, id.as_bytes(), token, self.clock.now())
            .map_err(|_| bad_resume())?;
        if tallies.is_empty() {
            return Err(bad_resume());
        }
        Ok(tallies)
    }

    async fn estimate_shard(
        &self,
        campaign: &crate::domain::Campaign,
        spec: ShardSpec,
        mut tally: ShardTally,
        deadline: Instant,
    ) -> Result<ShardTally, AppError> {
        let mut first_page = true;
        while !tally.done && (first_page || Instant::now() < deadline) {
            first_page = false;
            let page_size = self.settings.fanout_page_size;
            let page = self.contacts.scan_shard(spec, tally.cursor.as_deref(), page_size).await?;
            let facts = self.judge.page_facts(campaign, &page.records).await?;
            let mut opened = 0usize;
            for record in &page.records {
                let verdict = self.judge.verdict(campaign, record, &facts).await?;
                opened += usize::from(verdict.decrypted());
                tally.evaluated += 1;
                tally.included += u64::from(verdict.tally(&mut tally.excluded));
            }
            if opened > 0 {
                let reason = format!("campaign {} dry run: segment evaluated for {opened} contacts", campaign.id);
                let attributes = campaign.segment.attribute_names();
                self.audit.record(super::audit::FANOUT_ACTOR, "campaign.dry_run", None, attributes, reason).await?;
            }
            tally.done = page.next.is_none();
            tally.cursor = page.next;
        }
        Ok(tally)
    }
}

fn bad_resume() -> AppError {
    InvalidField::new("resume", "not a resume token of this campaign's estimate, or older than an hour: start again")
        .into()
}
