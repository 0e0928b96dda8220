//! `carepost schema show` (the stack's contact schema) and the offline
//! checks `carepost schema validate FILE` and `carepost forms validate FILE`,
//! which run the stack's own parsers, so a file that passes here is one the
//! stack accepts at start (`--schema`/`--forms`, `ContactSchemaJson`/`FormsJson`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use carepost::config::{Settings, Throughput};
use carepost::domain::{ContactSchema, PublicBaseUrl};
use carepost::forms::FormsConfig;
use clap::{Args, Subcommand};

use crate::client::{AdminConnection, Output};

#[derive(Subcommand)]
pub enum SchemaCommand {
    /// The stack's contact schema: every attribute with its type and class.
    Show,
    /// Check a contact schema file (JSON, as docs/schema.example.json) without a stack.
    Validate(FileArg),
}

#[derive(Subcommand)]
pub enum FormsCommand {
    /// Check a forms file (JSON, as docs/forms.example.json) without a stack,
    /// against the built-in attributes or `--schema`.
    Validate(FormsValidateArgs),
}

#[derive(Args)]
pub struct FileArg {
    pub file: PathBuf,
}

#[derive(Args)]
pub struct FormsValidateArgs {
    pub file: PathBuf,
    /// The contact schema the forms' fields must be in (default: the built-in attributes).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn schema_file(path: &Path) -> anyhow::Result<ContactSchema> {
    ContactSchema::parse(&read(path)?).with_context(|| format!("{} is not a valid contact schema", path.display()))
}

pub async fn show(admin: &AdminConnection) -> anyhow::Result<()> {
    let schema = admin.get_json("/v1/schema").await?;
    if admin.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&schema)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = crate::table::items(&schema["attributes"])
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().map(|s| s.replace('_', " ")).unwrap_or_default();
            vec![a["name"].as_str().unwrap_or_default().to_owned(), text("type"), text("class")]
        })
        .collect();
    print!("{}", crate::table::render(&["ATTRIBUTE", "TYPE", "CLASS"], &rows));
    Ok(())
}

pub fn validate_schema(args: &FileArg) -> anyhow::Result<()> {
    let schema = schema_file(&args.file)?;
    let value = serde_json::to_value(&schema)?;
    let count = value["attributes"].as_array().map_or(0, Vec::len);
    println!("{}: a valid contact schema ({count} attributes)", args.file.display());
    Ok(())
}

/// The settings a stack started with these files would have (the example
/// topics and built-in attributes where a file is not given).
pub fn offline_settings(forms: Option<&Path>, schema: Option<&Path>) -> anyhow::Result<Settings> {
    let mut settings =
        Settings::local(PublicBaseUrl::parse("http://127.0.0.1:8787").expect("a URL"), Throughput::default());
    if let Some(path) = forms {
        let forms = FormsConfig::parse(&read(path)?)
            .with_context(|| format!("{} is not a valid forms file", path.display()))?;
        settings = settings.with_forms(forms);
    }
    if let Some(path) = schema {
        settings = settings
            .with_schema(schema_file(path)?, forms.is_some())
            .with_context(|| format!("a form asks for an attribute {} does not hold", path.display()))?;
    }
    Ok(settings)
}

pub fn validate_forms(args: &FormsValidateArgs) -> anyhow::Result<()> {
    // Without --schema the fields are built-in attributes, which parsing checked.
    let settings = offline_settings(Some(&args.file), args.schema.as_deref())?;
    println!("{}: valid ({} forms, {} topics)", args.file.display(), settings.forms.len(), settings.categories.len());
    Ok(())
}
