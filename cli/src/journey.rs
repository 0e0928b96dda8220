//! `carepost journey validate FILE`: a journey definition checked offline
//! with the stack's own parser (docs/journeys.md), against the built-in
//! attributes or `--schema`, each send step's template linted as a
//! campaign's. Running journeys is not built yet.

use std::path::PathBuf;

use anyhow::Context;
use carepost::domain::ContactSchema;
use carepost::domain::journey::{Entry, Journey, StepKind};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum JourneyCommand {
    /// Check a journey definition (JSON, as docs/journeys.example.json) without a stack.
    Validate(JourneyValidateArgs),
}

#[derive(Args)]
pub struct JourneyValidateArgs {
    pub file: PathBuf,
    /// The contact schema its date attributes and conditions use (default: the built-in attributes).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

pub fn run(command: JourneyCommand) -> anyhow::Result<()> {
    match command {
        JourneyCommand::Validate(args) => validate(&args),
    }
}

fn validate(args: &JourneyValidateArgs) -> anyhow::Result<()> {
    let read =
        |path: &PathBuf| std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()));
    let schema = match &args.schema {
        Some(path) => ContactSchema::parse(&read(path)?)
            .with_context(|| format!("{} is not a valid contact schema", path.display()))?,
        None => ContactSchema::default(),
    };
    let journey = Journey::parse(&read(&args.file)?, &schema)
        .with_context(|| format!("{} is not a valid journey", args.file.display()))?;
    // Marketing sends are checked as if the stack had its postal address; the note below says so.
    carepost::app::journeys::check_send_steps(&journey, true)
        .with_context(|| format!("{} is not a valid journey", args.file.display()))?;
    let count = |pick: fn(&StepKind) -> bool| journey.steps().iter().filter(|s| pick(&s.kind)).count();
    let entry = match journey.entry() {
        Entry::Segment(_) => "a segment".to_owned(),
        Entry::ConsentConfirmed(topic) => format!("sign-up confirmed for {}", topic.as_str()),
        Entry::Date(d) => format!("{} {:+} days", d.attribute, d.days),
        Entry::Event(name) => format!("the event {}", name.as_str()),
    };
    println!(
        "{}: a valid journey ({} steps: {} send, {} wait, {} branch, {} split; entry: {entry}; templates linted as \
         campaigns'; marketing mail also needs the stack's POSTAL_ADDRESS)",
        args.file.display(),
        journey.steps().len(),
        count(|k| matches!(k, StepKind::Send { .. })),
        count(|k| matches!(k, StepKind::Wait { .. })),
        count(|k| matches!(k, StepKind::Branch { .. })),
        count(|k| matches!(k, StepKind::Split(_))),
    );
    Ok(())
}
