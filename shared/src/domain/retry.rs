//! The one retry policy: what becomes of a queue message once its job has
//! run. Both runtimes apply it through the same batch driver
//! (`runtime/driver.rs`), so retry behaviour cannot differ between them;
//! each runtime only maps the [`Decision`] onto its queue.

use std::time::Duration;

/// Back-off base after a transient failure.
pub const TRANSIENT_BASE: Duration = Duration::from_secs(1);
/// Back-off base after the provider throttled: storms last longer.
pub const THROTTLED_BASE: Duration = Duration::from_secs(2);
/// No back-off is longer than this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What running one job came to, as far as its message is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobResult {
    /// Done, or in a recorded terminal state: the message is finished with.
    Done,
    /// A retry can help: back off exponentially from `base`.
    Transient { base: Duration },
    /// Another worker holds the job: wait out its lease in one step, so a
    /// busy job does not use up its receives.
    Busy { retry_after: Duration },
    /// The message can never succeed as it is (unparsable, permanent error).
    Permanent,
}

/// What the runtime does with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Delete it (Lambda: leave it out of the batch item failures).
    Ack,
    /// Make it visible again after `after` (a batch item failure in Lambda).
    Retry { after: Duration },
    /// Leave it to the queue's redrive policy: it is not re-timed and reaches
    /// the dead-letter queue after `MaxReceiveCount` receives.
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_receive_count: u32,
}

impl RetryPolicy {
    pub fn new(max_receive_count: u32) -> Self {
        Self { max_receive_count }
    }

    /// The decision for a job that ran on the `receive_count`th delivery of
    /// its message. `jitter` is a number in [0, 1] (random in the runtimes,
    /// fixed in tests): the back-off is drawn from half its ceiling up to the
    /// ceiling, so the retries of one burst spread out.
    pub fn decide(&self, result: JobResult, receive_count: u32, jitter: f64) -> Decision {
        match result {
            JobResult::Done => Decision::Ack,
            JobResult::Permanent => Decision::DeadLetter,
            JobResult::Busy { retry_after } => Decision::Retry { after: retry_after },
            JobResult::Transient { base } => Decision::Retry { after: backoff(receive_count, base, jitter) },
        }
    }

    /// Whether a message that failed on this receive moves to the
    /// dead-letter queue instead of being delivered again.
    pub fn exhausted(&self, receive_count: u32) -> bool {
        receive_count >= self.max_receive_count
    }

    /// How long after a row's last lease ended a job for it can still be
    /// waiting in the queue: the longest back-off of its last receive. Past
    /// that, a row neither terminal nor claimed has no job left (it reached
    /// the dead-letter queue) and is stranded.
    pub fn longest_wait(&self) -> Duration {
        ceiling(self.max_receive_count, THROTTLED_BASE)
    }
}

fn ceiling(receive_count: u32, base: Duration) -> Duration {
    base.saturating_mul(1 << receive_count.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

/// Exponential back-off with "equal jitter": between half and all of
/// 2^(n-1) × base, capped at [`MAX_BACKOFF`].
pub fn backoff(receive_count: u32, base: Duration, jitter: f64) -> Duration {
    let ceiling = ceiling(receive_count, base);
    ceiling.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy { max_receive_count: 5 };

    #[test]
    fn a_finished_job_is_acknowledged() {
        assert_eq!(POLICY.decide(JobResult::Done, 5, 0.3), Decision::Ack);
    }

    #[test]
    fn a_permanent_failure_is_left_for_the_dead_letter_queue() {
        assert_eq!(POLICY.decide(JobResult::Permanent, 1, 0.3), Decision::DeadLetter);
    }

    #[test]
    fn a_busy_job_waits_out_the_holders_lease_in_one_step() {
        let result = JobResult::Busy { retry_after: Duration::from_secs(42) };
        assert_eq!(POLICY.decide(result, 4, 0.9), Decision::Retry { after: Duration::from_secs(42) });
    }

    #[test]
    fn transient_back_off_doubles_per_receive_between_half_and_all_of_its_ceiling() {
        let transient = JobResult::Transient { base: TRANSIENT_BASE };
        assert_eq!(POLICY.decide(transient, 1, 0.0), Decision::Retry { after: Duration::from_millis(500) });
        assert_eq!(POLICY.decide(transient, 1, 1.0), Decision::Retry { after: Duration::from_secs(1) });
        assert_eq!(POLICY.decide(transient, 4, 0.0), Decision::Retry { after: Duration::from_secs(4) });
        assert_eq!(POLICY.decide(transient, 4, 1.0), Decision::Retry { after: Duration::from_secs(8) });
    }

    #[test]
    fn throttling_backs_off_from_a_longer_base_and_no_back_off_passes_five_minutes() {
        let throttled = JobResult::Transient { base: THROTTLED_BASE };
        assert_eq!(POLICY.decide(throttled, 3, 1.0), Decision::Retry { after: Duration::from_secs(8) });
        assert_eq!(POLICY.decide(throttled, 40, 1.0), Decision::Retry { after: MAX_BACKOFF });
    }

    #[test]
    fn the_last_receive_is_the_max_receive_count() {
        assert!(!POLICY.exhausted(4));
        assert!(POLICY.exhausted(5));
    }

    #[test]
    fn a_row_is_stranded_only_after_the_longest_back_off_of_the_last_receive() {
        assert_eq!(POLICY.longest_wait(), Duration::from_secs(32));
        assert_eq!(RetryPolicy::new(20).longest_wait(), MAX_BACKOFF);
    }
}
