//! minijinja templates: sandboxed (no file or network access), HTML
//! auto-escaped, strict about syntax at campaign creation and lenient about
//! missing attributes at send time (`{{ first_name | default("there") }}`).

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::domain::{Contact, TemplateSource, format_date};

#[derive(Debug, thiserror::Error)]
#[error("template {part}: {message}")]
pub struct TemplateError {
    pub part: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
#[error("rendering {part} failed")]
pub struct RenderError {
    pub part: &'static str,
}

pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// A campaign's template, checked and compiled once.
pub struct CompiledTemplate {
    env: Environment<'static>,
    preheader: bool,
}

const PARTS: [(&str, &str); 3] = [("subject", "subject.txt"), ("html", "body.html"), ("text", "body.txt")];
const PREHEADER: &str = "preheader.html";

impl CompiledTemplate {
    pub fn compile(source: &TemplateSource) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        // Bounded work per message: no template can loop for long.
        env.set_fuel(Some(50_000));
        for ((part, name), body) in PARTS.iter().zip([&source.subject, &source.html, &source.text]) {
            if body.trim().is_empty() {
                return Err(TemplateError { part, message: "must not be empty".into() });
            }
            env.add_template_owned(*name, body.clone()).map_err(|e| TemplateError { part, message: e.to_string() })?;
        }
        let preheader = source.preheader.as_ref().filter(|p| !p.trim().is_empty());
        if let Some(body) = preheader {
            env.add_template_owned(PREHEADER, body.clone())
                .map_err(|e| TemplateError { part: "preheader", message: e.to_string() })?;
        }
        Ok(Self { env, preheader: preheader.is_some() })
    }

    /// Renders all three parts for one contact. `postal_address` is the
    /// sender's (`POSTAL_ADDRESS`), for `{{ postal_address }}` in the footer.
    pub fn render(
        &self,
        contact: &Contact,
        unsubscribe_url: &str,
        postal_address: Option<&str>,
        today: time::Date,
    ) -> Result<Rendered, RenderError> {
        let p = &contact.profile;
        // Absent attributes stay undefined (not `none`), so `default(...)` applies.
        let mut ctx: BTreeMap<&str, Value> = BTreeMap::new();
        let mut put = |key, value: Option<Value>| {
            if let Some(v) = value {
                ctx.insert(key, v);
            }
        };
        put("first_name", p.first_name.as_deref().map(Value::from));
        put("last_name", p.last_name.as_deref().map(Value::from));
        put("age", p.age_on(today).map(Value::from));
        put("date_of_birth", p.date_of_birth.map(|d| Value::from(format_date(d))));
        put("sex", p.sex.map(|s| Value::from(s.as_str())));
        put("zip", p.zip.as_deref().map(Value::from));
        put("language", p.language.as_deref().map(Value::from));
        put("conditions", (!p.conditions.is_empty()).then(|| Value::from_serialize(&p.conditions)));
        put("medications", (!p.medications.is_empty()).then(|| Value::from_serialize(&p.medications)));
        put("journey_stage", p.journey_stage.as_deref().map(Value::from));
        put("last_visit", p.last_visit.map(|d| Value::from(format_date(d))));
        put("unsubscribe_url", Some(Value::from(unsubscribe_url)));
        put("postal_address", postal_address.map(Value::from));
        let ctx = Value::from_serialize(&ctx);
        let render = |part: &'static str, name: &str| -> Result<String, RenderError> {
            self.env.get_template(name).and_then(|t| t.render(&ctx)).map_err(|_| RenderError { part })
        };
        let mut html = render("html", "body.html")?;
        if self.preheader {
            // Shown by mail clients in the message list, hidden in the message.
            let preheader = render("preheader", PREHEADER)?.replace(['\r', '\n'], " ");
            html =
                format!("<div style=\"display:none;max-height:0;overflow:hidden\">{}</div>\n{html}", preheader.trim());
        }
        Ok(Rendered {
            // A subject is one line whatever a template produced.
            subject: render("subject", "subject.txt")?.replace(['\r', '\n'], " ").trim().to_owned(),
            html,
            text: render("text", "body.txt")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContactId, EmailAddress, Profile};

    fn contact(first: &str) -> Contact {
        Contact {
            id: ContactId::new_random(),
            external_id: None,
            email: EmailAddress::parse("p@example.org").unwrap(),
            profile: Profile { first_name: Some(first.into()), ..Default::default() },
        }
    }

    fn source() -> TemplateSource {
        TemplateSource {
            subject: "Your checkup".into(),
            preheader: None,
            html: "<p>Hi {{ first_name | default('there') }}</p>".into(),
            text: "Hi {{ first_name | default('there') }}. Stop: {{ unsubscribe_url }}".into(),
        }
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = CompiledTemplate::compile(&source()).unwrap();
        let r = t
            .render(&contact("<b>Ann</b>"), "https://x.example/u/t", None, time::macros::date!(2026 - 01 - 01))
            .unwrap();
        assert_eq!(r.html, "<p>Hi &lt;b&gt;Ann&lt;&#x2f;b&gt;</p>");
        assert!(r.text.starts_with("Hi <b>Ann</b>."));
    }

    #[test]
    fn a_missing_attribute_falls_back() {
        let t = CompiledTemplate::compile(&source()).unwrap();
        let mut c = contact("x");
        c.profile.first_name = None;
        let r = t.render(&c, "https://x.example/u/t", None, time::macros::date!(2026 - 01 - 01)).unwrap();
        assert_eq!(r.html, "<p>Hi there</p>");
    }

    #[test]
    fn a_syntax_error_names_the_part() {
        let mut s = source();
        s.html = "{% if %}".into();
        assert_eq!(CompiledTemplate::compile(&s).err().unwrap().part, "html");
    }
}
