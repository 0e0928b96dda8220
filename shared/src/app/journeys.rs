//! What a journey's send steps must pass before it can run: each template
//! compiled and linted as a campaign's is (`mail::lint`: PHI only in a
//! PHI-personalized body, never in the subject, preheader or links; an
//! unsubscribe link; the postal address for marketing), and marketing mail
//! only where the stack has a postal address. Errors name the step.

use crate::domain::CampaignPurpose;
use crate::domain::journey::{Journey, JourneyError, StepKind};
use crate::mail::{CompiledTemplate, LintContext, lint};

/// Checks every send step of `journey`; `postal_address` is whether the
/// stack has one (`POSTAL_ADDRESS`).
pub fn check_send_steps(journey: &Journey, postal_address: bool) -> Result<(), JourneyError> {
    for step in journey.steps() {
        let StepKind::Send { template, phi_personalized, purpose, .. } = &step.kind else { continue };
        let problem = |problem: String| JourneyError::Step { step: step.id.as_str().to_owned(), problem };
        CompiledTemplate::compile(template).map_err(|e| problem(format!("template.{}: {}", e.part, e.message)))?;
        let marketing = *purpose == Some(CampaignPurpose::Marketing);
        if marketing && !postal_address {
            return Err(problem("marketing mail must show the sender's postal address: set POSTAL_ADDRESS".into()));
        }
        lint(template, LintContext { phi_personalized: *phi_personalized, marketing })
            .map_err(|e| problem(e.to_string()))?;
    }
    Ok(())
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
