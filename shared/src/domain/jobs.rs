//! Queue message bodies. They carry IDs only, never PHI (DESIGN §4.1).

use serde::{Deserialize, Serialize};

use super::{CampaignId, ContactId, IntakeId};

/// Ask the fan-out worker to scan one shard of the contact table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanoutShardJob {
    pub campaign_id: CampaignId,
    pub shard: u16,
    pub shards: u16,
}

/// Ask the fan-out worker to launch a scheduled campaign if its time has
/// come (else it sends itself again, delayed, up to SQS's 15 minutes a hop).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledLaunchJob {
    pub launch_campaign_id: CampaignId,
}

/// A sending campaign's reconciliation tick: re-queue its stranded ledger
/// rows, then send itself again, delayed, until the campaign is finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileJob {
    pub reconcile_campaign_id: CampaignId,
}

impl ReconcileJob {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

/// What the fan-out queue carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutMessage {
    Shard(FanoutShardJob),
    Launch(ScheduledLaunchJob),
    Reconcile(ReconcileJob),
}

impl FanoutMessage {
    pub fn parse(body: &str) -> Result<Self, ParseJobError> {
        if let Ok(launch) = serde_json::from_str::<ScheduledLaunchJob>(body) {
            return Ok(FanoutMessage::Launch(launch));
        }
        if let Ok(tick) = serde_json::from_str::<ReconcileJob>(body) {
            return Ok(FanoutMessage::Reconcile(tick));
        }
        FanoutShardJob::parse(body).map(FanoutMessage::Shard)
    }

    pub fn campaign_id(&self) -> CampaignId {
        match self {
            FanoutMessage::Shard(job) => job.campaign_id,
            FanoutMessage::Launch(job) => job.launch_campaign_id,
            FanoutMessage::Reconcile(job) => job.reconcile_campaign_id,
        }
    }
}

impl ScheduledLaunchJob {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

/// Send one campaign to one contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendJob {
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
}

/// Finish one consent request: its contact, ledger entry and confirmation
/// email. It rides the send queue, so confirmations share the send rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationJob {
    pub intake_id: IntakeId,
}

impl ConfirmationJob {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

/// Send a secure message's notice for a campaign message the provider
/// could not deliver over TLS (the `secure_message` fallback, after SES's
/// expiry). IDs only; it rides the send queue and its rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureNoticeJob {
    pub notice_campaign_id: CampaignId,
    pub notice_contact_id: ContactId,
}

impl SecureNoticeJob {
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

/// What the send queue carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendQueueJob {
    Campaign(SendJob),
    Confirmation(ConfirmationJob),
    SecureNotice(SecureNoticeJob),
}

impl SendQueueJob {
    pub fn parse(body: &str) -> Result<Self, ParseJobError> {
        if let Ok(job) = serde_json::from_str::<ConfirmationJob>(body) {
            return Ok(SendQueueJob::Confirmation(job));
        }
        if let Ok(job) = serde_json::from_str::<SecureNoticeJob>(body) {
            return Ok(SendQueueJob::SecureNotice(job));
        }
        SendJob::parse(body).map(SendQueueJob::Campaign)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue message is not a valid {kind} job: {reason}")]
pub struct ParseJobError {
    pub kind: &'static str,
    /// Never the input: a scrubbed parse error (`scrub::parse_error`) or a fixed rule.
    pub reason: String,
}

impl FanoutShardJob {
    pub fn parse(body: &str) -> Result<Self, ParseJobError> {
        let job: Self = serde_json::from_str(body)
            .map_err(|e| ParseJobError { kind: "fan-out", reason: super::scrub::parse_error(&e).to_string() })?;
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
        serde_json::from_str(body)
            .map_err(|e| ParseJobError { kind: "send", reason: super::scrub::parse_error(&e).to_string() })
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parse_error_never_quotes_the_message() {
        let bodies = [
            r#"{"campaign_id":"jane.probe@example.org","contact_id":"x"}"#,
            r#"{"campaign_id":"7c0d3f5e-2a9b-4c1e-9f3a-1b2c3d4e5f60","shard":1,"shards":2,"jane.probe":1}"#,
            r#"{"launch_campaign_id":["jane.probe"]}"#,
            r#"jane.probe@example.org"#,
        ];
        for body in bodies {
            let send = SendJob::parse(body).unwrap_err();
            let fanout = FanoutMessage::parse(body).unwrap_err();
            let shown = format!("{send} {send:?} {fanout} {fanout:?}");
            assert!(!shown.contains("jane.probe"), "{shown}");
        }
        assert!(SendJob::parse("{").unwrap_err().to_string().contains("line 1 column 1"));
    }
}
