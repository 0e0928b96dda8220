//! Template preview: a template rendered for a sample contact, with the
//! linter's verdict, before a campaign is created. The sample is made up
//! (or given by the caller); no stored contact is read.

use serde::{Deserialize, Serialize};

use super::{AppError, CampaignAdmin};
use crate::domain::{
    CampaignPurpose, Contact, ContactId, EmailAddress, InvalidField, ProfileInput, Sensitive, TemplateSource,
};
use crate::mail::{CompiledTemplate, LintContext, lint};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewInput {
    pub template: TemplateSource,
    #[serde(default)]
    pub phi_personalized: bool,
    /// As at creation: marketing mail is linted for its unsubscribe link and postal address.
    #[serde(default)]
    pub purpose: Option<CampaignPurpose>,
    /// Attributes of the sample contact; a made-up patient when absent.
    #[serde(default)]
    pub sample: Option<ProfileInput>,
}

/// Rendered for a sample that may be a real patient's: `Sensitive`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Preview {
    pub subject: Sensitive<String>,
    pub html: Sensitive<String>,
    pub text: Sensitive<String>,
    /// What the linter would refuse at creation, if anything.
    pub lint: Option<LintFinding>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LintFinding {
    pub field: String,
    pub message: String,
}

fn made_up_patient() -> ProfileInput {
    ProfileInput {
        first_name: Some("Alex".into()),
        last_name: Some("Sample".into()),
        date_of_birth: Some("1970-01-01".into()),
        language: Some("en".into()),
        journey_stage: Some("active".into()),
        ..ProfileInput::default()
    }
}

impl CampaignAdmin {
    pub fn preview(&self, input: PreviewInput) -> Result<Preview, AppError> {
        let template = CompiledTemplate::compile(&input.template)
            .map_err(|e| InvalidField::new(format!("template.{}", e.part), e.message))?;
        let today = self.clock.now().date();
        let sample = input.sample.unwrap_or_else(made_up_patient);
        let profile =
            self.settings.schema.apply(&sample, Default::default(), today).map_err(|e| prefixed("sample", e))?;
        let contact = Contact {
            id: ContactId::new_random(),
            external_id: None,
            email: EmailAddress::parse("sample.patient@example.org").expect("built-in address is valid"),
            profile,
        };
        let unsubscribe_url = self.settings.public_base_url.join("/u/preview");
        let rendered = template
            .render(&contact, &unsubscribe_url, self.settings.postal_address.as_deref(), today)
            .map_err(|e| InvalidField::new(format!("template.{}", e.part), "does not render for the sample"))?;
        let context = LintContext {
            phi_personalized: input.phi_personalized,
            marketing: input.purpose == Some(CampaignPurpose::Marketing),
        };
        let lint = lint(&input.template, context).err().map(|e| LintFinding { field: e.field, message: e.message });
        Ok(Preview { subject: rendered.subject.into(), html: rendered.html.into(), text: rendered.text.into(), lint })
    }
}

fn prefixed(prefix: &str, e: InvalidField) -> InvalidField {
    InvalidField::new(format!("{prefix}.{}", e.field), e.message)
}
