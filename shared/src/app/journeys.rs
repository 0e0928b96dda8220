//! What a journey's send steps must pass before it can run: each template
//! compiled and linted as a campaign's is (`mail::lint`: PHI only in a
//! PHI-personalized body, never in the subject, preheader or links; an
//! unsubscribe link; the postal address for marketing), and marketing mail
//! only where the stack has a postal address. Errors name the step.

use aws_lc_rs::digest::{SHA256, digest};

use super::campaigns::{CampaignInput, SenderInput};
use crate::domain::journey::{Condition, Journey, JourneyError, Step, StepId, StepKind};
use crate::domain::{CampaignId, CampaignPurpose, JourneyId, Sender, Tracking};
use crate::mail::{CompiledTemplate, LintContext, lint};

/// The campaign a send step of one journey version mails through: its ID
/// a function of the three, so every sweep, retry and process names the
/// same one (and the send ledger's claim on it is the step's exactly-once).
pub fn step_campaign(journey: &JourneyId, version: u32, step: &StepId) -> CampaignId {
    let input = format!("carepost-journey-step\0{journey}\0{version}\0{}", step.as_str());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest(&SHA256, input.as_bytes()).as_ref()[..16]);
    // An RFC 9562 version 8 (custom) UUID: derived, not random.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    CampaignId::from_bytes(bytes)
}

/// The campaign definition of each send step of a journey version, as
/// `CampaignAdmin` stores one: the step's template, category, purpose; its
/// segment "not yet sent this step" (fan-out never runs it: the journey
/// queues each send); open and click tracking where a branch reads them.
pub fn step_campaigns(
    journey: &Journey,
    id: &JourneyId,
    version: u32,
    sender: &Sender,
) -> Vec<(StepId, CampaignId, CampaignInput)> {
    let read = engagement_read(journey);
    journey
        .steps()
        .iter()
        .filter_map(|step| {
            let StepKind::Send { template, phi_personalized, purpose, .. } = &step.kind else { return None };
            let campaign = step_campaign(id, version, &step.id);
            let tracked = read.contains(&&step.id);
            let input = CampaignInput {
                name: format!("{} v{version} · {}", journey.name(), step.id.as_str()),
                category: journey.category().as_str().to_owned(),
                segment: serde_json::json!({"not": {"received_campaign": campaign.to_string()}}),
                template: template.clone(),
                phi_personalized: *phi_personalized,
                purpose: *purpose,
                tracking: Tracking { opens: tracked, clicks: tracked },
                tls_fallback: None,
                sender: Some(SenderInput { name: sender.name.clone(), address: sender.address.as_str().to_owned() }),
                launch_at: None,
            };
            Some((step.id.clone(), campaign, input))
        })
        .collect()
}

/// The send steps whose opens or clicks a branch or exit rule reads.
fn engagement_read(journey: &Journey) -> Vec<&StepId> {
    let branches = journey.steps().iter().filter_map(|s| match &s.kind {
        StepKind::Branch { when, .. } => Some(when),
        _ => None,
    });
    branches
        .chain(journey.exit_when())
        .filter_map(|c| match c {
            Condition::Opened(step) | Condition::Clicked(step) | Condition::NotOpenedWithin(step, _) => Some(step),
            Condition::Event(_) | Condition::Matches(_) => None,
        })
        .collect()
}

/// Checks every send step of `journey`; `postal_address` is whether the
/// stack has one (`POSTAL_ADDRESS`).
pub fn check_send_steps(journey: &Journey, postal_address: bool) -> Result<(), JourneyError> {
    journey.steps().iter().try_for_each(|step| check_send_step(step, postal_address))
}

/// One step's share of [`check_send_steps`]: a send step's template
/// compiles and passes the linter; any other step passes.
pub fn check_send_step(step: &Step, postal_address: bool) -> Result<(), JourneyError> {
    let StepKind::Send { template, phi_personalized, purpose, .. } = &step.kind else { return Ok(()) };
    let problem = |problem: String| JourneyError::Step { step: step.id.as_str().to_owned(), problem };
    CompiledTemplate::compile(template).map_err(|e| problem(format!("template.{}: {}", e.part, e.message)))?;
    let marketing = *purpose == Some(CampaignPurpose::Marketing);
    if marketing && !postal_address {
        return Err(problem("marketing mail must show the sender's postal address: set POSTAL_ADDRESS".into()));
    }
    lint(template, LintContext { phi_personalized: *phi_personalized, marketing }).map_err(|e| problem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContactSchema;

    fn journey(subject: &str, html: &str) -> Journey {
        let definition = serde_json::json!({
            "name": "Recall",
            "category": "wellness-tips",
            "entry": {"event": {"name": "visit.completed"}},
            "steps": [{"type": "send", "id": "recall",
                       "template": {"subject": subject, "html": html, "text": "Hi {{ unsubscribe_url }}"}}]
        });
        Journey::parse(&definition.to_string(), &ContactSchema::default()).unwrap()
    }

    #[test]
    fn a_send_step_is_linted_as_a_campaign_and_the_error_names_the_step() {
        let fine = journey("Time for a check-up", "<p>Hello <a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></p>");
        let phi_body =
            journey("Time for a check-up", "<p>Hello {{ first_name }} <a href=\"{{ unsubscribe_url }}\">x</a></p>");
        let phi_subject = journey("About your {{ conditions }}", "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>");
        let broken = journey("Hello {{ first_name", "<a href=\"{{ unsubscribe_url }}\">Unsubscribe</a>");

        assert_eq!(check_send_steps(&fine, false), Ok(()));
        let unflagged = check_send_steps(&phi_body, false).unwrap_err().to_string();
        assert!(unflagged.starts_with("step 'recall': phi_personalized: template.html uses PHI"), "{unflagged}");
        let phi = check_send_steps(&phi_subject, false).unwrap_err().to_string();
        assert!(phi.starts_with("step 'recall': template.subject"), "{phi}");
        let syntax = check_send_steps(&broken, false).unwrap_err().to_string();
        assert!(syntax.starts_with("step 'recall': template.subject"), "{syntax}");
    }
}
