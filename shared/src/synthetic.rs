//! Synthetic patients for the demo, tests and benchmarks: varied,
//! reproducible, obviously fake (every address is at example.org).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Maria", "Luis", "Amara", "Kenji", "Priya", "Noah", "Olivia", "Mateo", "Zara", "Ibrahim",
    "Chloe", "Dmitri", "Fatima", "Hiro", "Ines", "Jonas", "Keisha",
];
const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Garcia", "Okafor", "Tanaka", "Patel", "Kowalski", "Nguyen", "Haddad", "Moreau",
    "Silva", "Kim", "Novak", "Osei", "Larsen", "Rossi", "Cohen", "Mendez", "Walsh",
];
pub const CONDITIONS: &[&str] = &["type-2-diabetes", "hypertension", "asthma", "copd", "heart-failure"];
pub const CATEGORIES: &[&str] = &["appointment-reminders", "wellness-tips", "condition-updates"];

/// Made up, but shaped like PHI: `Debug` shows the index only.
#[derive(Clone)]
pub struct Patient {
    pub index: usize,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: String,
    pub sex: &'static str,
    /// ZIP+4 ("12345-6789"): a PHI scan can look for it without matching
    /// digits that happen to occur in ciphertext, IDs or timestamps.
    pub zip: String,
    pub language: &'static str,
    pub conditions: Vec<&'static str>,
    pub categories: Vec<&'static str>,
    /// Whether this patient clicks the confirmation link.
    pub confirms: bool,
    pub journey_stage: &'static str,
    pub last_visit: String,
}

impl std::fmt::Debug for Patient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Patient").field("index", &self.index).finish_non_exhaustive()
    }
}

impl Patient {
    pub fn external_id(&self) -> String {
        format!("crm-{:06}", self.index)
    }

    /// Every profile attribute set (at least one condition, and a medication
    /// for each), for benchmarks that must seal and open all ten.
    pub fn full_profile(&self) -> crate::domain::Profile {
        use crate::domain::{Sex, parse_date};
        let mut conditions: Vec<String> = self.conditions.iter().map(|c| (*c).to_owned()).collect();
        if conditions.is_empty() {
            conditions.push(CONDITIONS[self.index % CONDITIONS.len()].to_owned());
        }
        let medications = conditions
            .iter()
            .map(|c| MEDICATIONS[CONDITIONS.iter().position(|k| k == c).unwrap_or(0)].to_owned())
            .collect();
        crate::domain::Profile {
            first_name: Some(self.first_name.clone()),
            last_name: Some(self.last_name.clone()),
            date_of_birth: parse_date("date_of_birth", &self.date_of_birth).ok(),
            sex: Sex::parse(self.sex),
            zip: Some(self.zip.clone()),
            language: Some(self.language.to_owned()),
            conditions,
            medications,
            journey_stage: Some(self.journey_stage.to_owned()),
            last_visit: parse_date("last_visit", &self.last_visit).ok(),
            custom: Default::default(),
        }
    }
}

/// The patient as a stored record (no external ID) with every attribute
/// sealed: seeding for benchmarks that bypass the API.
pub async fn sealed_record(
    envelope: &crate::crypto::Envelope,
    patient: &Patient,
) -> Result<crate::ports::ContactRecord, crate::crypto::SealError> {
    let id = crate::domain::ContactId::new_random();
    let email = crate::domain::EmailAddress::parse(&patient.email).expect("synthetic addresses are valid");
    Ok(crate::ports::ContactRecord {
        id,
        external_id: None,
        // Not the address's index (that needs the keyring): unique per patient, of the same shape.
        email_index: crate::domain::BlindIndex::from_stored(format!("{:064x}", patient.index)).expect("64 hex digits"),
        sealed: envelope.seal(&id, &email, &patient.full_profile()).await?,
        updated_at: time::OffsetDateTime::now_utc(),
    })
}

/// A typical medication for each of `CONDITIONS`, in the same order.
const MEDICATIONS: &[&str] = &["metformin", "lisinopril", "albuterol", "tiotropium", "furosemide"];

pub fn generate(count: usize, seed: u64) -> Vec<Patient> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let first = FIRST[rng.random_range(0..FIRST.len())];
            let last = LAST[rng.random_range(0..LAST.len())];
            let year = rng.random_range(1936..=2006);
            let conditions: Vec<&str> = CONDITIONS.iter().copied().filter(|_| rng.random_bool(0.25)).collect();
            let mut categories: Vec<&str> = CATEGORIES.iter().copied().filter(|_| rng.random_bool(0.6)).collect();
            if categories.is_empty() {
                categories.push(CATEGORIES[i % CATEGORIES.len()]);
            }
            Patient {
                index: i,
                email: format!("{}.{}.{i:04}@example.org", first.to_lowercase(), last.to_lowercase()),
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                date_of_birth: format!("{year}-{:02}-{:02}", rng.random_range(1..=12), rng.random_range(1..=28)),
                sex: ["female", "male", "female", "male", "other"][rng.random_range(0..5)],
                // The +4 comes from the index, not the generator, so every
                // other attribute of a seed's population stays as it was.
                zip: format!("{:05}-{:04}", rng.random_range(1001..99950), 1000 + (i * 7919) % 9000),
                language: if rng.random_bool(0.8) { "en" } else { "es" },
                conditions,
                categories,
                confirms: rng.random_bool(0.9),
                journey_stage: ["new-patient", "active", "follow-up", "lapsed"][rng.random_range(0..4)],
                last_visit: format!("2026-{:02}-{:02}", rng.random_range(1..=10), rng.random_range(1..=28)),
            }
        })
        .collect()
}

/// Signs `email` up for `category` through the web-signup form, as a form
/// post would, and (if `confirm`) confirms it as the confirmation link
/// would, without reading the email: seeding for tests and benchmarks.
pub async fn sign_up_directly(
    app: &crate::app::App,
    email: &str,
    category: &str,
    confirm: bool,
) -> Result<crate::domain::ContactId, crate::app::AppError> {
    use crate::app::AppError;
    use crate::app::consent::{ConsentSubmission, RequestProof};
    let submission = ConsentSubmission {
        form_id: "web-signup".into(),
        email: crate::domain::Sensitive::from(email),
        categories: vec![category.into()],
        // An in-process caller, trusted as the form's own server is.
        server_authenticated: true,
        ..Default::default()
    };
    app.consent.submit_now(submission, RequestProof::default()).await?;
    let address = crate::domain::EmailAddress::parse(email)
        .map_err(|e| crate::domain::InvalidField::new("email", e.to_string()))?;
    let index = app.keyring.blind_index.index(&address);
    let id = app.ports.contacts.find_by_email_index(&index).await?.ok_or(AppError::NotFound("contact"))?.id;
    if confirm {
        let history = app.ports.consent.history(&id).await?;
        // This submission's request: its link confirms its topics only.
        let request = history
            .iter()
            .rev()
            .find(|e| e.evidence.kind == crate::domain::ConsentEntryKind::Requested)
            .and_then(|e| e.evidence.request_id)
            .ok_or(AppError::NotFound("consent request"))?;
        let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let token =
            app.keyring.tokens.sign(crate::crypto::TokenPurpose::ConfirmConsent, &id, request.as_bytes(), expires);
        app.consent.confirm(&token, RequestProof::default()).await?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_reproducible_and_addresses_are_unique() {
        let a = generate(200, 7);
        let b = generate(200, 7);
        assert_eq!(a.iter().map(|p| &p.email).collect::<Vec<_>>(), b.iter().map(|p| &p.email).collect::<Vec<_>>());
        let mut emails: Vec<_> = a.iter().map(|p| p.email.clone()).collect();
        emails.sort();
        emails.dedup();
        assert_eq!(emails.len(), 200);
        assert!(a.iter().all(|p| !p.categories.is_empty()));
    }
}
