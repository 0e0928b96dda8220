//! Why a send job was skipped: the `Skipped` reasons of the send ledger.
//!
//! The ledger stores these as strings and reports count them by string, so
//! `as_str` and `parse` round-trip exactly the stored text.

/// Why an address is suppressed (never mailed again).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    UnsubscribeAll,
    /// `soft_bounce_limit` soft bounces within `soft_bounce_window`.
    RepeatedSoftBounce,
    /// The contact was erased; the address must never be mailed again.
    Erased,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 5] = [
        SuppressionReason::HardBounce,
        SuppressionReason::Complaint,
        SuppressionReason::UnsubscribeAll,
        SuppressionReason::RepeatedSoftBounce,
        SuppressionReason::Erased,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::UnsubscribeAll => "unsubscribe_all",
            SuppressionReason::RepeatedSoftBounce => "repeated_soft_bounce",
            SuppressionReason::Erased => "erased",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard_bounce" => Some(Self::HardBounce),
            "complaint" => Some(Self::Complaint),
            "unsubscribe_all" => Some(Self::UnsubscribeAll),
            "repeated_soft_bounce" => Some(Self::RepeatedSoftBounce),
            "erased" => Some(Self::Erased),
            _ => None,
        }
    }
}

/// Why the sender settled a job as `Skipped` rather than sending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Held: the campaign was paused when the job ran (`campaign_paused`);
    /// resuming reopens these.
    CampaignPaused,
    /// The campaign was cancelled (`cancelled`).
    Cancelled,
    /// The contact was erased before its job ran (`contact_erased`).
    ContactErased,
    /// The address is suppressed (`suppressed_<reason>`).
    Suppressed(SuppressionReason),
    /// Consent for the campaign's category is not confirmed yet (`consent_pending`).
    ConsentPending,
    /// Consent for the campaign's category was withdrawn (`consent_withdrawn`).
    ConsentWithdrawn,
    /// No consent for the campaign's category (`no_consent`).
    NoConsent,
    /// The campaign needs a HIPAA authorization the contact has not given, or
    /// has revoked or let expire (`no_hipaa_authorization`).
    NoHipaaAuthorization,
    /// The contact's marketing frequency cap is reached (`frequency_cap`).
    FrequencyCap,
}

const SUPPRESSED_PREFIX: &str = "suppressed_";

impl SkipReason {
    /// Every reason, for reports and tests.
    pub const ALL: [SkipReason; 13] = [
        SkipReason::CampaignPaused,
        SkipReason::Cancelled,
        SkipReason::ContactErased,
        SkipReason::Suppressed(SuppressionReason::HardBounce),
        SkipReason::Suppressed(SuppressionReason::Complaint),
        SkipReason::Suppressed(SuppressionReason::UnsubscribeAll),
        SkipReason::Suppressed(SuppressionReason::RepeatedSoftBounce),
        SkipReason::Suppressed(SuppressionReason::Erased),
        SkipReason::ConsentPending,
        SkipReason::ConsentWithdrawn,
        SkipReason::NoConsent,
        SkipReason::NoHipaaAuthorization,
        SkipReason::FrequencyCap,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::CampaignPaused => "campaign_paused",
            SkipReason::Cancelled => "cancelled",
            SkipReason::ContactErased => "contact_erased",
            SkipReason::Suppressed(SuppressionReason::HardBounce) => "suppressed_hard_bounce",
            SkipReason::Suppressed(SuppressionReason::Complaint) => "suppressed_complaint",
            SkipReason::Suppressed(SuppressionReason::UnsubscribeAll) => "suppressed_unsubscribe_all",
            SkipReason::Suppressed(SuppressionReason::RepeatedSoftBounce) => "suppressed_repeated_soft_bounce",
            SkipReason::Suppressed(SuppressionReason::Erased) => "suppressed_erased",
            SkipReason::ConsentPending => "consent_pending",
            SkipReason::ConsentWithdrawn => "consent_withdrawn",
            SkipReason::NoConsent => "no_consent",
            SkipReason::NoHipaaAuthorization => "no_hipaa_authorization",
            SkipReason::FrequencyCap => "frequency_cap",
        }
    }

    /// The reason a stored text names, if any.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(suppression) = s.strip_prefix(SUPPRESSED_PREFIX) {
            return SuppressionReason::parse(suppression).map(SkipReason::Suppressed);
        }
        Some(match s {
            "campaign_paused" => SkipReason::CampaignPaused,
            "cancelled" => SkipReason::Cancelled,
            "contact_erased" => SkipReason::ContactErased,
            "consent_pending" => SkipReason::ConsentPending,
            "consent_withdrawn" => SkipReason::ConsentWithdrawn,
            "no_consent" => SkipReason::NoConsent,
            "no_hipaa_authorization" => SkipReason::NoHipaaAuthorization,
            "frequency_cap" => SkipReason::FrequencyCap,
            _ => return None,
        })
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<SkipReason> for String {
    fn from(reason: SkipReason) -> String {
        reason.as_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_stored_text() {
        for reason in SkipReason::ALL {
            assert_eq!(SkipReason::parse(reason.as_str()), Some(reason), "{reason}");
        }
        let texts: std::collections::HashSet<_> = SkipReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts.len(), SkipReason::ALL.len(), "no two reasons share a text");
    }

    #[test]
    fn the_stored_texts_are_the_ones_the_ledger_already_holds() {
        // The sender wrote these before the enum existed; they must not change.
        assert_eq!(SkipReason::CampaignPaused.as_str(), crate::ports::HELD_REASON);
        assert_eq!(SkipReason::Cancelled.as_str(), crate::ports::CANCELLED_REASON);
        for reason in SuppressionReason::ALL {
            assert_eq!(SkipReason::Suppressed(reason).as_str(), format!("suppressed_{}", reason.as_str()));
        }
        assert_eq!(SkipReason::parse("suppressed_"), None);
        assert_eq!(SkipReason::parse("suppressed_nonsense"), None);
        assert_eq!(SkipReason::parse("Frequency_cap"), None);
    }
}
