//! The audience estimate (a dry run): every contact judged exactly as
//! fan-out judges it, with nothing enqueued, counted as included or by the
//! first reason it is left out. Counts from 1 to `min_cell - 1` are shown as
//! "fewer than N", so an estimate cannot single out a patient; the total
//! number of contacts evaluated is exact.

use serde::Serialize;

use super::report::Cell;
use super::{App, AppError};
use crate::domain::{CampaignId, ExclusionCounts};
use crate::ports::ShardSpec;

#[derive(Debug, Clone, Serialize)]
pub struct AudienceEstimate {
    pub campaign_id: CampaignId,
    pub evaluated: u64,
    pub included: Cell,
    pub excluded: ExcludedCells,
    pub min_cell: u64,
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

impl App {
    /// Judges every contact for the campaign (whatever its status) without
    /// sending anything. The shards run concurrently; each page's decryption
    /// is one `campaign.dry_run` audit entry.
    pub async fn estimate_audience(&self, id: &CampaignId) -> Result<AudienceEstimate, AppError> {
        let loaded = self.load_campaign(id).await?;
        let shards = self.settings.throughput.fanout_shards.max(1);
        let pages = (0..shards).map(|index| self.estimate_shard(&loaded.campaign, ShardSpec { index, total: shards }));
        let mut evaluated = 0u64;
        let mut included = 0u64;
        let mut excluded = ExclusionCounts::default();
        for shard in futures::future::join_all(pages).await {
            let (n, inc, exc) = shard?;
            evaluated += n;
            included += inc;
            excluded.add(&exc);
        }
        let min_cell = self.settings.min_cell;
        Ok(AudienceEstimate {
            campaign_id: *id,
            evaluated,
            included: Cell::of(included, min_cell),
            excluded: ExcludedCells::of(&excluded, min_cell),
            min_cell,
        })
    }

    async fn estimate_shard(
        &self,
        campaign: &crate::domain::Campaign,
        spec: ShardSpec,
    ) -> Result<(u64, u64, ExclusionCounts), AppError> {
        let (mut evaluated, mut included, mut excluded) = (0u64, 0u64, ExclusionCounts::default());
        let mut cursor: Option<String> = None;
        loop {
            let page = self.ports.contacts.scan_shard(spec, cursor.as_deref(), self.settings.fanout_page_size).await?;
            let facts = self.page_facts(campaign, &page.records).await?;
            let mut opened = 0usize;
            for record in &page.records {
                let verdict = self.verdict(campaign, record, &facts).await?;
                opened += usize::from(verdict.decrypted());
                evaluated += 1;
                included += u64::from(verdict.tally(&mut excluded));
            }
            if opened > 0 {
                let reason = format!("campaign {} dry run: segment evaluated for {opened} contacts", campaign.id);
                let attributes = campaign.segment.attribute_names();
                self.record_access(super::audit::FANOUT_ACTOR, "campaign.dry_run", None, attributes, reason).await?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok((evaluated, included, excluded)),
            }
        }
    }
}
