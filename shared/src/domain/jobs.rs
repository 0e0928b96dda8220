//! Queue message bodies. They carry IDs only, never PHI (DESIGN §4.1).

use serde::{Deserialize, Serialize};

use super::{CampaignId, ContactId};

/// Ask the fan-out worker to scan one shard of the contact table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutShardJob {
    pub campaign_id: CampaignId,
    pub shard: u16,
    pub shards: u16,
}

/// Send one campaign to one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendJob {
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
}

#[derive(Debug, thiserror::Error)]
#[error("queue message is not a valid {kind} job: {reason}")]
pub struct ParseJobError {
    pub kind: &'static str,
    pub reason: String,
}

impl FanoutShardJob {
    pub fn parse(body: &str) -> Result<Self, ParseJobError> {
        let job: Self =
            serde_json::from_str(body).map_err(|e| ParseJobError { kind: "fan-out", reason: e.to_string() })?;
        if job.shards == 0 || job.shard >= job.shards {
            return Err(ParseJobError { kind: "fan-out", reason: "shard is out of range".into() });
        }
        Ok(job)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

impl SendJob {
    pub fn parse(body: &str) -> Result<Self, ParseJobError> {
        serde_json::from_str(body).map_err(|e| ParseJobError { kind: "send", reason: e.to_string() })
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}
