//! `carepost audit verify|export`: the PHI-access audit log of a running
//! stack, through its admin API (page by page, so any length works).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;

use crate::client::AdminConnection;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain; exit 1 if an entry was edited or removed.
    Verify,
    /// Write every entry (IDs and attribute names, never values) as JSON lines.
    Export(ExportArgs),
}

#[derive(Args)]
pub struct ExportArgs {
    /// The file to write (JSON lines, oldest first).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Start after this sequence number (for incremental exports).
    #[arg(long, default_value_t = 0)]
    pub after: u64,
}

pub async fn run(command: AuditCommand, admin: &AdminConnection) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify => {
            let verdict = admin.get_json("/v1/audit/verify").await?;
            let entries = verdict["entries"].as_u64().unwrap_or(0);
            if verdict["verified"] == true {
                println!("audit log verified: {entries} entries, chain intact");
                Ok(())
            } else {
                let at = verdict["broken_at"].as_u64().unwrap_or(0);
                bail!("audit log NOT verified: entry {at} was edited, or follows a removed entry ({entries} read)")
            }
        }
        AuditCommand::Export(args) => export(args, admin).await,
    }
}

async fn export(args: ExportArgs, admin: &AdminConnection) -> anyhow::Result<()> {
    let file = std::fs::File::create(&args.out).with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let progress = ProgressBar::new_spinner().with_message("exporting the audit log");
    let (mut after, mut written) = (args.after, 0u64);
    loop {
        let page = admin.get_json(&format!("/v1/audit?after={after}&limit=1000")).await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        if entries.is_empty() {
            break;
        }
        for entry in &entries {
            writeln!(out, "{entry}")?;
        }
        written += entries.len() as u64;
        progress.set_position(written);
        after = page["next_after"].as_u64().context("the API gave no next_after")?;
    }
    out.flush()?;
    progress.finish_and_clear();
    println!("{written} audit entries written to {}", args.out.display());
    Ok(())
}
