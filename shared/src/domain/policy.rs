//! Pure sending policy: when a campaign pauses itself for its reputation,
//! and how many marketing emails a contact may get in a window.

use std::time::Duration;

/// Breakdowns in reports and estimates show counts below this as "fewer than N".
pub const DEFAULT_MIN_CELL: u64 = 11;

/// How long a recipient domain whose server could not do TLS is remembered
/// so: later sends to it go to the fallback without being tried. A domain
/// that fixes its server is tried again after this; a new failure renews it.
pub const TLS_GAP_MEMORY: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// How long a secure message can be opened after its notice was sent.
pub const SECURE_MESSAGE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// What happens to a message whose recipient's server cannot do TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsFallback {
    /// Not delivered: recorded as `tls_unavailable` for the operator.
    #[default]
    Drop,
    /// The patient gets a notice without PHI linking to a page on the stack
    /// that shows the message once they prove who they are.
    SecureMessage,
}

impl TlsFallback {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsFallback::Drop => "drop",
            TlsFallback::SecureMessage => "secure_message",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 'drop' or 'secure_message'")]
pub struct InvalidTlsFallback;

impl std::str::FromStr for TlsFallback {
    type Err = InvalidTlsFallback;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "drop" => Ok(TlsFallback::Drop),
            "secure_message" => Ok(TlsFallback::SecureMessage),
            _ => Err(InvalidTlsFallback),
        }
    }
}

/// At most `max` marketing emails per contact in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencyCap {
    pub max: u32,
    pub window: Duration,
}

/// A frequency cap that is not `N/DAYS` within the limits (operator
/// configuration, so the value is named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frequency cap '{0}' must be N/DAYS, e.g. 3/7, with N from 1 to 100 and DAYS from 1 to 90")]
pub struct InvalidFrequencyCap(String);

impl FrequencyCap {
    /// Parses `N/DAYS`, e.g. `3/7`: at most 3 marketing emails in any 7 days.
    pub fn parse(input: &str) -> Result<FrequencyCap, InvalidFrequencyCap> {
        let bad = || InvalidFrequencyCap(input.trim().to_owned());
        let (max, days) = input.trim().split_once('/').ok_or_else(bad)?;
        let max: u32 = max.trim().parse().map_err(|_| bad())?;
        let days: u64 = days.trim().parse().map_err(|_| bad())?;
        if !(1..=100).contains(&max) || !(1..=90).contains(&days) {
            return Err(bad());
        }
        Ok(FrequencyCap { max, window: Duration::from_secs(days * 24 * 3600) })
    }
}

/// A campaign pauses itself when, over the last `window`, its hard-bounce
/// rate passes `bounce_rate` or its complaint rate passes `complaint_rate`
/// (SES reviews an account at 5 % and 0.1 %). Rates are judged only once
/// the window holds `min_sample` deliveries and bounces, so one early
/// bounce cannot stop a campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReputationGuard {
    pub bounce_rate: f64,
    pub complaint_rate: f64,
    pub window: Duration,
    /// Width of one time bucket of the window's counters.
    pub bucket: Duration,
    pub min_sample: u64,
}

impl Default for ReputationGuard {
    fn default() -> Self {
        Self {
            bounce_rate: 0.05,
            complaint_rate: 0.001,
            window: Duration::from_secs(3600),
            bucket: Duration::from_secs(300),
            min_sample: 200,
        }
    }
}

impl ReputationGuard {
    /// The time bucket `at` falls in.
    pub fn bucket_of(&self, at: time::OffsetDateTime) -> i64 {
        at.unix_timestamp().div_euclid(self.bucket.as_secs().max(1) as i64)
    }

    /// The first bucket of the window that ends at `now`.
    pub fn window_start(&self, now: time::OffsetDateTime) -> i64 {
        self.bucket_of(now - self.window) + 1
    }

    /// Why the campaign must pause, given the window's delivered, hard-bounced
    /// and complained counts; `None` while it is healthy.
    pub fn verdict(&self, delivered: u64, bounced_hard: u64, complained: u64) -> Option<String> {
        let minutes = self.window.as_secs() / 60;
        let percent = |x: f64| format!("{:.2}", x * 100.0).trim_end_matches('0').trim_end_matches('.').to_owned();
        // Judged only once its denominator holds the minimum sample.
        let judge = |what: &str, count: u64, out_of: u64, limit: f64| {
            let rate = count as f64 / out_of.max(1) as f64;
            (out_of >= self.min_sample.max(1) && rate > limit).then(|| {
                format!("{what} rate {}% over the last {minutes} minutes passed {}%", percent(rate), percent(limit))
            })
        };
        judge("bounce", bounced_hard, delivered + bounced_hard, self.bounce_rate)
            .or_else(|| judge("complaint", complained, delivered, self.complaint_rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_rate_over_five_percent_pauses_once_the_sample_is_large_enough() {
        let guard = ReputationGuard { min_sample: 100, ..ReputationGuard::default() };
        assert_eq!(guard.verdict(94, 6, 0).as_deref(), Some("bounce rate 6% over the last 60 minutes passed 5%"));
        assert_eq!(guard.verdict(95, 5, 0), None, "exactly 5% is not past it");
        assert_eq!(guard.verdict(5, 4, 0), None, "too few to judge");
    }

    #[test]
    fn a_complaint_rate_over_a_tenth_of_a_percent_pauses() {
        let guard = ReputationGuard { min_sample: 100, ..ReputationGuard::default() };
        assert_eq!(
            guard.verdict(1000, 0, 2).as_deref(),
            Some("complaint rate 0.2% over the last 60 minutes passed 0.1%")
        );
        assert_eq!(guard.verdict(1000, 0, 1), None);
    }

    #[test]
    fn the_window_starts_after_the_bucket_that_holds_its_beginning() {
        let guard = ReputationGuard::default();
        let now = time::OffsetDateTime::from_unix_timestamp(7_200).unwrap();
        assert_eq!(guard.bucket_of(now), 24);
        assert_eq!(guard.window_start(now), 13);
    }

    #[test]
    fn a_frequency_cap_is_n_per_days() {
        assert_eq!(
            FrequencyCap::parse(" 3/7 "),
            Ok(FrequencyCap { max: 3, window: Duration::from_secs(7 * 24 * 3600) })
        );
        assert!(FrequencyCap::parse("0/7").is_err());
        assert!(FrequencyCap::parse("3").is_err());
    }
}
