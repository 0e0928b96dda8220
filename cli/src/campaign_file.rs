//! A campaign file (TOML): what `POST /v1/campaigns` takes, with the
//! template's parts in their own files (paths relative to the campaign file).
//!
//! ```toml
//! name = "Flu shots 2026"
//! category = "wellness-tips"
//! purpose = "treatment"            # marketing | treatment | operations
//! phi_personalized = true
//! # launch_at = "2026-12-03T09:00:00Z"   # RFC 3339; schedules the launch
//! segment = { exists = { attr = "date_of_birth" } }   # or segment_file = "segment.json"
//!
//! [sender]
//! name = "Your clinic"
//! address = "news@clinic.example"
//!
//! [template]
//! subject = "A note from your clinic"   # or subject_file
//! html_file = "flu.html"
//! text_file = "flu.txt"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CampaignFile {
    name: String,
    category: String,
    purpose: Option<String>,
    #[serde(default)]
    phi_personalized: bool,
    launch_at: Option<toml::Value>,
    segment: Option<toml::Value>,
    segment_file: Option<PathBuf>,
    sender: Option<SenderPart>,
    tracking: Option<toml::Value>,
    /// `drop` or `secure_message`; default the stack's TLS_FALLBACK.
    tls_fallback: Option<String>,
    template: TemplatePart,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SenderPart {
    name: String,
    address: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct TemplatePart {
    subject: Option<String>,
    subject_file: Option<PathBuf>,
    preheader: Option<String>,
    html: Option<String>,
    html_file: Option<PathBuf>,
    text: Option<String>,
    text_file: Option<PathBuf>,
}

/// One template part, inline or from its file (exactly one of the two).
fn part(name: &str, inline: Option<String>, file: Option<PathBuf>, base: &Path) -> anyhow::Result<String> {
    match (inline, file) {
        (Some(text), None) => Ok(text),
        (None, Some(file)) => {
            let path = base.join(&file);
            std::fs::read_to_string(&path)
                .with_context(|| format!("template.{name}_file: cannot read {}", path.display()))
        }
        (Some(_), Some(_)) => bail!("template: give {name} or {name}_file, not both"),
        (None, None) => bail!("template: {name} (or {name}_file) is required"),
    }
}

fn to_json(value: toml::Value) -> anyhow::Result<Value> {
    serde_json::to_value(value).context("not representable as JSON")
}

/// Reads the campaign file and the files it names into the API's campaign body.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: CampaignFile =
        toml::from_str(&text).with_context(|| format!("{} is not a valid campaign file", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let segment = match (file.segment, file.segment_file) {
        (Some(inline), None) => to_json(inline).context("segment")?,
        (None, Some(file)) => {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("segment_file: cannot read {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("segment_file: {} is not JSON", path.display()))?
        }
        (Some(_), Some(_)) => bail!("give segment or segment_file, not both"),
        (None, None) => bail!("segment (or segment_file) is required: who the campaign is for"),
    };
    let t = file.template;
    let mut template = json!({
        "subject": part("subject", t.subject, t.subject_file, base)?.trim_end_matches(['\r', '\n']),
        "html": part("html", t.html, t.html_file, base)?,
        "text": part("text", t.text, t.text_file, base)?,
    });
    if let Some(preheader) = t.preheader {
        template["preheader"] = json!(preheader);
    }
    let mut body = json!({
        "name": file.name,
        "category": file.category,
        "phi_personalized": file.phi_personalized,
        "segment": segment,
        "template": template,
    });
    if let Some(purpose) = file.purpose {
        body["purpose"] = json!(purpose);
    }
    if let Some(sender) = file.sender {
        body["sender"] = json!({"name": sender.name, "address": sender.address});
    }
    if let Some(tracking) = file.tracking {
        body["tracking"] = to_json(tracking).context("tracking")?;
    }
    if let Some(fallback) = file.tls_fallback {
        body["tls_fallback"] = json!(fallback);
    }
    match file.launch_at {
        None => {}
        // An unquoted TOML date-time and a string both mean RFC 3339 text to the API.
        Some(toml::Value::Datetime(at)) => body["launch_at"] = json!(at.to_string()),
        Some(toml::Value::String(at)) => body["launch_at"] = json!(at),
        Some(_) => bail!("launch_at must be an RFC 3339 date and time, e.g. 2026-12-03T09:00:00Z"),
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_campaign_file_reads_its_template_files_next_to_it() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "body.html", "<p>Hello {{ first_name }}</p>");
        write(dir.path(), "body.txt", "Hello\n{{ unsubscribe_url }}");
        write(dir.path(), "subject.txt", "Flu shots\n");
        let path = write(
            dir.path(),
            "flu.toml",
            r#"
            name = "Flu"
            category = "wellness-tips"
            purpose = "treatment"
            phi_personalized = true
            launch_at = 2026-12-03T09:00:00Z
            segment = { exists = { attr = "date_of_birth" } }
            [sender]
            name = "Your clinic"
            address = "news@clinic.example"
            [template]
            subject_file = "subject.txt"
            html_file = "body.html"
            text_file = "body.txt"
            "#,
        );

        let body = load(&path).unwrap();

        assert_eq!(body["template"]["subject"], "Flu shots", "the file's trailing newline is not part of the subject");
        assert_eq!(body["template"]["html"], "<p>Hello {{ first_name }}</p>");
        assert_eq!(body["segment"], json!({"exists": {"attr": "date_of_birth"}}));
        assert_eq!(body["sender"]["name"], "Your clinic");
        assert_eq!(body["launch_at"], "2026-12-03T09:00:00Z");
        assert_eq!(body["purpose"], "treatment");
    }

    #[test]
    fn a_missing_template_part_or_unknown_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let no_text = write(
            dir.path(),
            "a.toml",
            "name = \"x\"\ncategory = \"c\"\nsegment = {}\n[template]\nsubject = \"s\"\nhtml = \"h\"\n",
        );
        assert_eq!(load(&no_text).unwrap_err().to_string(), "template: text (or text_file) is required");
        let typo = write(dir.path(), "b.toml", "name = \"x\"\ncategory = \"c\"\nsegmnt = {}\n[template]\n");
        assert!(format!("{:#}", load(&typo).unwrap_err()).contains("unknown field `segmnt`"));
    }
}
