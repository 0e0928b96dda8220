//! Form definitions: which web forms may post consent, from which origins,
//! for which topics, with which consent text, double opt-in or not, where an
//! HTML submission is sent after success or failure, and which attribute
//! fields it may set. Loaded from JSON (`carepost dev --forms FILE`,
//! `FORMS_JSON` in AWS); see `docs/forms.example.json`.

use serde::Deserialize;

use crate::domain::{Attribute, ConsentCategory, InvalidOrigin, Origin};

/// A web form allowed to post consent.
#[derive(Debug, Clone)]
pub struct FormDefinition {
    pub id: String,
    /// Origins (`https://host[:port]`) whose pages may post this form. The
    /// service's own origin (the example form) is always allowed.
    pub allowed_origins: Vec<Origin>,
    pub categories: Vec<ConsentCategory>,
    /// The consent text the form shows.
    pub consent_text: String,
    /// SHA-256 (hex) of the consent text, kept as proof.
    pub consent_text_sha256: String,
    pub double_opt_in: bool,
    /// Where an HTML form submission is redirected (303) after it is received.
    pub thank_you_url: String,
    /// Where an HTML form submission that cannot be accepted is redirected
    /// (303, with `?error=<field>`); without one it gets the JSON error.
    pub error_url: Option<String>,
    /// The contact attributes the form may set (besides the email).
    pub fields: Vec<Attribute>,
    /// Who is asking, as the form, the confirmation email and its page name
    /// them; without one, the default sender's name.
    pub clinic_name: Option<String>,
    /// The clinic's privacy notice, linked from the form.
    pub privacy_url: Option<String>,
    /// The shared secret of a server that posts this form without a
    /// browser (HMAC-signed bodies, see docs/consent.md); without one, a
    /// request with no Origin is refused.
    pub server_secret: Option<ServerSecret>,
    /// The form's own per-client limits (`limits` in the forms JSON); unset
    /// parts take the deployment's (`CONSENT_LIMIT_PER_*_PER_HOUR`).
    pub limits: Option<FormLimits>,
}

/// How many consent requests one client IP and one email address may make
/// to a form per clock hour; more are answered 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentLimits {
    pub per_ip_per_hour: u32,
    pub per_address_per_hour: u32,
}

impl ConsentLimits {
    /// 20 per IP: a family or a clinic's front desk sharing one address
    /// fits; 5 per address: a patient correcting a typo fits.
    pub const DEFAULT: ConsentLimits = ConsentLimits { per_ip_per_hour: 20, per_address_per_hour: 5 };
}

/// A form's own limits, each at least 1 where set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormLimits {
    #[serde(default)]
    pub per_ip_per_hour: Option<u32>,
    #[serde(default)]
    pub per_address_per_hour: Option<u32>,
}

/// A form's server-to-server secret: at least 32 characters, never printed.
#[derive(Clone)]
pub struct ServerSecret(String);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

/// How far a signed request's timestamp may be from the server's clock.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 300;

impl ServerSecret {
    pub fn parse(raw: &str) -> Result<ServerSecret, &'static str> {
        if raw.len() < 32 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("server_secret must be at least 32 printable ASCII characters");
        }
        Ok(ServerSecret(raw.to_owned()))
    }

    /// The signature of a body sent at `timestamp` (Unix seconds):
    /// `v1=` and the hex HMAC-SHA256 of `"{timestamp}.{body}"`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.as_bytes());
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1={}", hex::encode(ctx.sign().as_ref()))
    }

    /// Whether `signature` signs `body` at `timestamp`, within
    /// `SIGNATURE_WINDOW_SECONDS` of `now` (compared in constant time).
    pub fn verify(&self, timestamp: &str, signature: &str, body: &[u8], now: time::OffsetDateTime) -> bool {
        let Ok(at) = timestamp.parse::<i64>() else { return false };
        if (now.unix_timestamp() - at).abs() > SIGNATURE_WINDOW_SECONDS {
            return false;
        }
        let Some(tag) = signature.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()) else { return false };
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.as_bytes());
        let mut message = at.to_string().into_bytes();
        message.push(b'.');
        message.extend_from_slice(body);
        aws_lc_rs::hmac::verify(&key, &message, &tag).is_ok()
    }
}

/// SHA-256 (hex) of a consent text, kept as proof of what was shown.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}

/// The consent text of the example form.
pub const EXAMPLE_CONSENT_TEXT: &str = "I agree to receive emails from the clinic about the topics I ticked. \
I can withdraw at any time with the unsubscribe link in every email.";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("forms configuration: {0}")]
pub struct ParseFormsConfigError(String);

/// The topics and forms of one deployment.
#[derive(Debug, Clone)]
pub struct FormsConfig {
    pub categories: Vec<ConsentCategory>,
    pub forms: Vec<FormDefinition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    categories: Vec<String>,
    forms: Vec<RawForm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForm {
    id: String,
    #[serde(default)]
    allowed_origins: Vec<String>,
    categories: Vec<String>,
    /// The consent text the form shows; its SHA-256 is kept as proof.
    consent_text: String,
    #[serde(default = "yes")]
    double_opt_in: bool,
    thank_you_url: String,
    #[serde(default)]
    error_url: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    clinic_name: Option<String>,
    #[serde(default)]
    privacy_url: Option<String>,
    #[serde(default)]
    server_secret: Option<String>,
    #[serde(default)]
    limits: Option<FormLimits>,
}

fn yes() -> bool {
    true
}

/// A comma-separated list of origins (`ALLOWED_ORIGINS`); empty entries are skipped.
pub fn parse_origins(list: &str) -> Result<Vec<Origin>, InvalidOrigin> {
    list.split(',').filter(|o| !o.trim().is_empty()).map(Origin::parse).collect()
}

/// The origin (`scheme://host[:port]`) of a URL.
pub fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)),
        None => url.to_owned(),
    }
}

/// A redirect target: a path of this service, or a URL on one of the form's origins.
fn parse_redirect(field: &'static str, raw: &str, origins: &[Origin]) -> Result<String, InvalidRedirect> {
    let url = raw.trim();
    if url.starts_with('/') && !url.starts_with("//") {
        return Ok(url.to_owned());
    }
    if origins.iter().any(|o| o.contains_url(url)) {
        Ok(url.to_owned())
    } else {
        Err(InvalidRedirect { field, url: url.to_owned() })
    }
}

/// A link shown on the form: a path of this service or any https URL.
fn parse_link(field: &'static str, raw: &str) -> Result<String, String> {
    let url = raw.trim();
    let path = url.starts_with('/') && !url.starts_with("//");
    let https = url.strip_prefix("https://").is_some_and(|rest| !rest.is_empty());
    if (path || https) && !url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '"') {
        Ok(url.to_owned())
    } else {
        Err(format!("{field} '{url}' must be a path or an https URL"))
    }
}

/// A form's redirect that goes neither to this service nor to the form's
/// own origins (configuration, so the URL is named).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} '{url}' must be a path or a URL on one of the form's allowed origins")]
pub struct InvalidRedirect {
    pub field: &'static str,
    pub url: String,
}

impl FormsConfig {
    /// The example topics and form, used when a deployment configures none
    /// (no `FORMS_JSON`, no `--forms`; see docs/consent.md): three topics and
    /// the double opt-in `web-signup` form, posted from the service's own
    /// origin and from `allowed_origins`.
    pub fn example(allowed_origins: Vec<Origin>) -> FormsConfig {
        let categories: Vec<ConsentCategory> = ["appointment-reminders", "wellness-tips", "condition-updates"]
            .into_iter()
            .map(|c| ConsentCategory::parse(c).expect("built-in category is valid"))
            .collect();
        let form = FormDefinition {
            id: "web-signup".into(),
            allowed_origins,
            categories: categories.clone(),
            consent_text: EXAMPLE_CONSENT_TEXT.into(),
            consent_text_sha256: sha256_hex(EXAMPLE_CONSENT_TEXT),
            double_opt_in: true,
            thank_you_url: "/thanks".into(),
            error_url: None,
            // What a sign-up page may fairly ask; medications, journey stage
            // and last visit come from the clinic's records, not a form.
            fields: vec![
                Attribute::FirstName,
                Attribute::LastName,
                Attribute::DateOfBirth,
                Attribute::Sex,
                Attribute::Zip,
                Attribute::Language,
                Attribute::Conditions,
            ],
            clinic_name: None,
            privacy_url: Some("/privacy".into()),
            server_secret: None,
            limits: None,
        };
        FormsConfig { categories, forms: vec![form] }
    }

    pub fn parse(json: &str) -> Result<FormsConfig, ParseFormsConfigError> {
        let raw: RawConfig = serde_json::from_str(json).map_err(|e| ParseFormsConfigError(e.to_string()))?;
        let err = |m: String| ParseFormsConfigError(m);
        let mut categories = Vec::new();
        for name in &raw.categories {
            let category = ConsentCategory::parse(name).map_err(|e| err(format!("category '{name}': {e}")))?;
            if category.is_hipaa_authorization() {
                return Err(err(format!("'{name}' is reserved for HIPAA authorizations")));
            }
            categories.push(category);
        }
        if categories.is_empty() {
            return Err(err("at least one category is needed".into()));
        }
        let mut forms: Vec<FormDefinition> = Vec::new();
        for form in raw.forms {
            let id = form.id.trim().to_owned();
            let valid_id = (1..=64).contains(&id.len())
                && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_id {
                return Err(err(format!("form id '{id}' must be 1 to 64 of a-z, 0-9 and '-'")));
            }
            if forms.iter().any(|f| f.id == id) {
                return Err(err(format!("form id '{id}' appears twice")));
            }
            let ctx = |m: String| err(format!("form '{id}': {m}"));
            let allowed_origins = form
                .allowed_origins
                .iter()
                .map(|o| Origin::parse(o))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ctx(e.to_string()))?;
            let mut form_categories = Vec::new();
            for name in &form.categories {
                let category = ConsentCategory::parse(name)
                    .ok()
                    .filter(|c| categories.contains(c))
                    .ok_or_else(|| ctx(format!("category '{name}' is not one of the deployment's categories")))?;
                form_categories.push(category);
            }
            if form_categories.is_empty() {
                return Err(ctx("offers no category".into()));
            }
            if form.consent_text.trim().is_empty() {
                return Err(ctx("consent_text is empty".into()));
            }
            let mut fields = Vec::new();
            for name in &form.fields {
                match Attribute::parse(name) {
                    Some(Attribute::Email) | None => {
                        return Err(ctx(format!("field '{name}' is not a contact attribute a form can set")));
                    }
                    Some(attribute) => fields.push(attribute),
                }
            }
            let clinic_name = form.clinic_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
            if clinic_name.as_deref().is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control)) {
                return Err(ctx("clinic_name must be at most 100 characters, without control characters".into()));
            }
            let server_secret =
                form.server_secret.as_deref().map(ServerSecret::parse).transpose().map_err(|e| ctx(e.into()))?;
            if let Some(limits) = form.limits
                && (limits.per_ip_per_hour == Some(0) || limits.per_address_per_hour == Some(0))
            {
                return Err(ctx("limits must be at least 1 per hour".into()));
            }
            forms.push(FormDefinition {
                limits: form.limits,
                privacy_url: form
                    .privacy_url
                    .as_deref()
                    .map(|u| parse_link("privacy_url", u))
                    .transpose()
                    .map_err(ctx)?,
                clinic_name,
                server_secret,
                thank_you_url: parse_redirect("thank_you_url", &form.thank_you_url, &allowed_origins)
                    .map_err(|e| ctx(e.to_string()))?,
                error_url: form
                    .error_url
                    .as_deref()
                    .map(|u| parse_redirect("error_url", u, &allowed_origins))
                    .transpose()
                    .map_err(|e| ctx(e.to_string()))?,
                id,
                allowed_origins,
                categories: form_categories,
                consent_text_sha256: sha256_hex(&form.consent_text),
                consent_text: form.consent_text,
                double_opt_in: form.double_opt_in,
                fields,
            });
        }
        if forms.is_empty() {
            return Err(err("at least one form is needed".into()));
        }
        Ok(FormsConfig { categories, forms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(form: &str) -> Result<FormsConfig, ParseFormsConfigError> {
        FormsConfig::parse(&format!(
            r#"{{"categories": ["wellness-tips", "appointment-reminders"], "forms": [{form}]}}"#
        ))
    }

    #[test]
    fn the_example_configuration_parses() {
        let example = include_str!("../../docs/forms.example.json");
        let parsed = FormsConfig::parse(example).unwrap();
        assert_eq!(parsed.forms[0].allowed_origins, ["https://www.clinic.example"]);
        assert_eq!(parsed.forms[0].consent_text_sha256.len(), 64);
    }

    #[test]
    fn the_example_form_offers_every_example_topic_and_every_attribute_but_the_email() {
        let example = FormsConfig::example(vec![Origin::parse("https://www.clinic.example").unwrap()]);
        assert_eq!(example.forms.len(), 1);
        assert_eq!(example.forms[0].id, "web-signup");
        assert_eq!(example.forms[0].categories, example.categories);
        assert!(!example.forms[0].fields.contains(&Attribute::Email));
        assert_eq!(example.forms[0].consent_text_sha256, sha256_hex(EXAMPLE_CONSENT_TEXT));
    }

    #[test]
    fn a_comma_separated_origin_list_skips_empty_entries() {
        assert_eq!(parse_origins("").unwrap(), Vec::<Origin>::new());
        assert_eq!(
            parse_origins("https://a.example, ,https://B.example/").unwrap(),
            ["https://a.example", "https://b.example"]
        );
        assert!(parse_origins("https://a.example,http://b.example").is_err());
        assert_eq!(origin_of("https://mail.clinic.example/x/y"), "https://mail.clinic.example");
    }

    #[test]
    fn origins_are_https_or_loopback_http_without_a_path() {
        assert_eq!(Origin::parse("https://WWW.Clinic.example/").unwrap(), "https://www.clinic.example");
        assert!(Origin::parse("http://127.0.0.1:8080").is_ok());
        assert!(Origin::parse("http://clinic.example").is_err());
        assert!(Origin::parse("https://clinic.example/form").is_err());
        assert!(Origin::parse("clinic.example").is_err());
    }

    #[test]
    fn a_redirect_off_the_forms_origins_or_an_unknown_category_or_field_is_refused() {
        let form = |extra: &str| {
            format!(
                r#"{{"id": "f", "allowed_origins": ["https://a.example"], "categories": ["wellness-tips"],
                    "consent_text": "I agree", "thank_you_url": "https://a.example/thanks"{extra}}}"#
            )
        };
        assert!(config(&form("")).is_ok());
        assert!(config(&form(r#", "error_url": "https://evil.example/x""#)).is_err());
        assert!(config(&form(r#", "error_url": "//evil.example/x""#)).is_err());
        assert!(config(&form(r#", "fields": ["ssn"]"#)).is_err());
        assert!(config(&form(r#", "fields": ["email"]"#)).is_err());
        let unknown_category = form("").replace("wellness-tips", "lottery");
        assert!(config(&unknown_category).is_err());
    }
}
