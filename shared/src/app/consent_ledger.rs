//! The consent ledger as the use cases write it: evidence chained onto the
//! contact's head (retrying when another writer moved it), proof sealed
//! inside the entry, and withdrawal of topics.

use std::sync::Arc;

use super::AppError;
use super::consent::RequestProof;
use crate::crypto::Envelope;
use crate::domain::{
    ConsentCategory, ConsentEntry, ConsentEntryKind, ConsentEvidence, ConsentMethod, ConsentStatus, ContactId,
};
use crate::ports::{Clock, ConsentStore, StoreError};

pub struct ConsentLedger {
    consent: Arc<dyn ConsentStore>,
    envelope: Arc<Envelope>,
    clock: Arc<dyn Clock>,
}

impl ConsentLedger {
    pub fn new(consent: Arc<dyn ConsentStore>, envelope: Arc<Envelope>, clock: Arc<dyn Clock>) -> ConsentLedger {
        ConsentLedger { consent, envelope, clock }
    }

    /// Withdraws the given categories; returns those that were not already withdrawn.
    pub async fn withdraw(
        &self,
        contact_id: &ContactId,
        categories: &[ConsentCategory],
        method: ConsentMethod,
        proof: RequestProof,
    ) -> Result<Vec<ConsentCategory>, AppError> {
        let grants = self.consent.grants(contact_id).await?;
        let changed: Vec<ConsentCategory> = categories
            .iter()
            .filter(|c| grants.iter().any(|g| &g.category == *c && g.status != ConsentStatus::Withdrawn))
            .cloned()
            .collect();
        if changed.is_empty() {
            return Ok(changed);
        }
        let now = self.clock.now();
        let mut evidence =
            ConsentEvidence::without_proof(*contact_id, ConsentEntryKind::Withdrawn, changed.clone(), now, method);
        evidence.sealed_proof = self.seal_proof(contact_id, &proof).await?;
        self.append(evidence, ConsentStatus::Withdrawn).await?;
        Ok(changed)
    }

    /// Chains and appends, retrying if another writer moved the head.
    pub async fn append(&self, evidence: ConsentEvidence, status: ConsentStatus) -> Result<ConsentEntry, AppError> {
        let mut last_error = None;
        for _ in 0..5 {
            let head = self.consent.head(&evidence.contact_id).await?;
            let entry = ConsentEntry::chain(head.as_ref(), evidence.clone());
            match self.consent.append(&entry, status).await {
                Ok(()) => return Ok(entry),
                Err(StoreError::Conflict(m)) => last_error = Some(m),
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Conflict(last_error.unwrap_or_default()))
    }

    pub async fn seal_proof(&self, contact_id: &ContactId, proof: &RequestProof) -> Result<Vec<u8>, AppError> {
        let json = serde_json::to_vec(proof).expect("proof serializes");
        Ok(self.envelope.seal_proof(contact_id, &json).await?)
    }

    /// Reads sealed consent proof back (admin use only).
    pub async fn open_proof(&self, contact_id: &ContactId, sealed: &[u8]) -> Result<serde_json::Value, AppError> {
        let bytes = self.envelope.open_proof(contact_id, sealed).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}
