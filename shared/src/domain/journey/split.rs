//! Which arm of a random split a contact takes: a stable function of the
//! journey, the step and the contact, so a repeated or retried step puts
//! the contact where it went the first time, and a simulation on the same
//! population predicts the run exactly.

use aws_lc_rs::digest::{SHA256, digest};

use super::{Arm, StepId};
use crate::domain::ContactId;

/// The index of the arm `contact` takes at `step` of `journey` (its ID or name).
pub fn arm_for(journey: &str, step: &StepId, contact: &ContactId, arms: &[Arm]) -> usize {
    let input = format!("carepost-journey-split\0{journey}\0{}\0{contact}", step.as_str());
    let hash = digest(&SHA256, input.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    // Ten thousand buckets: shares to the hundredth of a percent.
    let bucket = (u64::from_be_bytes(first) % 10_000) as u32;
    let mut upto = 0u32;
    for (i, arm) in arms.iter().enumerate() {
        upto += u32::from(arm.percent) * 100;
        if bucket < upto {
            return i;
        }
    }
    arms.len().saturating_sub(1)
}
