//! `carepost journey …`. `validate FILE`: a journey definition checked
//! offline with the stack's own parser (docs/journeys.md), against the
//! built-in attributes or `--schema`, each send step's template linted as a
//! campaign's. The other commands work on a stack (`journey_admin.rs`).

use std::path::PathBuf;

use anyhow::Context;

use crate::client::AdminConnection;
use carepost::domain::ContactSchema;
use carepost::domain::journey::{Entry, Journey, StepKind};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum JourneyCommand {
    /// Check a journey definition (JSON, as docs/journeys.example.json) without a stack.
    Validate(JourneyValidateArgs),
    /// Store a journey definition on the stack as a draft (checked as `validate` does, and
    /// against the stack's own topics and schema); prints its ID.
    Create { file: PathBuf },
    /// The stack's journeys, oldest first, with status and latest version.
    List,
    /// One journey: status, version and its steps.
    Show { id: String },
    /// A new version from a definition file: new entries walk it, contacts already in finish theirs.
    Revise { id: String, file: PathBuf },
    /// Draft to live: contacts start entering (a sign-up, or a due sweep, moves them).
    Launch { id: String },
    /// Hold every contact where it is; nobody enters or moves until `resume`.
    Pause { id: String },
    /// Paused to live: contacts go on from where they stood.
    Resume { id: String },
    /// Per step: contacts here now, sent, opened, clicked; exits by reason (small cells suppressed).
    Report {
        id: String,
        /// Write a self-contained HTML report (the steps as a diagram) to this file.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Run the journey over the stack's current contacts on a virtual clock, no email sent: per
    /// step who would reach it and when, who would be mailed, who would still wait, and the
    /// linter's verdict on each send step.
    Simulate {
        id: String,
        /// How far ahead to simulate, in days (1 to 366).
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=366))]
        days: u32,
    },
}

#[derive(Args)]
pub struct JourneyValidateArgs {
    pub file: PathBuf,
    /// The contact schema its date attributes and conditions use (default: the built-in attributes).
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
}

/// `journey validate`: offline.
pub fn run_offline(args: &JourneyValidateArgs) -> anyhow::Result<()> {
    validate(args)
}

pub async fn run(command: JourneyCommand, admin: &AdminConnection) -> anyhow::Result<()> {
    use crate::journey_admin as on_stack;
    match command {
        JourneyCommand::Validate(args) => validate(&args),
        JourneyCommand::Create { file } => on_stack::create(&file, admin).await,
        JourneyCommand::List => on_stack::list(admin).await,
        JourneyCommand::Show { id } => on_stack::show(&id, admin).await,
        JourneyCommand::Revise { id, file } => on_stack::revise(&id, &file, admin).await,
        JourneyCommand::Launch { id } => on_stack::transition(&id, "launch", admin).await,
        JourneyCommand::Pause { id } => on_stack::transition(&id, "pause", admin).await,
        JourneyCommand::Resume { id } => on_stack::transition(&id, "resume", admin).await,
        JourneyCommand::Report { id, html: None } => on_stack::report(&id, admin).await,
        JourneyCommand::Report { id, html: Some(path) } => on_stack::write_html_report(&id, &path, admin).await,
        JourneyCommand::Simulate { id, days } => on_stack::simulate(&id, days, admin).await,
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
