//! `carepost`: the local dev server, the demo, and admin commands.

mod args;
mod audit;
mod bench_consent;
mod bench_decrypt;
mod bench_fanout;
mod bench_journeys;
mod bench_send;
mod campaign;
mod campaign_file;
mod client;
mod contact_admin;
mod contacts;
mod demo;
mod dev;
mod doctor;
mod journey;
mod journey_admin;
mod keys;
mod logging;
mod proc_stats;
mod schema;
mod table;
mod targets;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "carepost", version, about = "Consented, PHI-safe patient email campaigns")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where admin commands go (local stack, --endpoint-url, --stack, --target) and how they authenticate.
    #[command(flatten)]
    connection: client::ConnectionArgs,
}

/// The work was done but some of it was refused (e.g. rejected rows): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PartialFailure(pub String);

#[derive(Subcommand)]
enum Command {
    /// Serve the public and admin routes and run the queue workers locally.
    Dev(dev::DevArgs),
    /// Run the whole pipeline on a fresh local stack with synthetic patients, then keep serving.
    Demo(demo::DemoArgs),
    /// Campaigns of a stack: create, list, launch, watch, report, pause, resume, retry-failed, cancel.
    Campaign {
        #[command(subcommand)]
        command: campaign::CampaignCommand,
    },
    /// Contacts of a stack: import a CSV file; get, consent history, withdraw, erase one contact.
    Contacts {
        #[command(subcommand)]
        command: contacts::ContactsCommand,
    },
    /// The PHI-access audit log of a stack: verify its chain, export it.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The contact schema: show a stack's; validate a schema file offline.
    Schema {
        #[command(subcommand)]
        command: schema::SchemaCommand,
    },
    /// Journeys (automated workflows): create, launch, pause, resume, report; validate a definition offline
    /// (docs/journeys.md).
    Journey {
        #[command(subcommand)]
        command: journey::JourneyCommand,
    },
    /// Web forms: validate a forms file offline.
    Forms {
        #[command(subcommand)]
        command: schema::FormsCommand,
    },
    /// Checks an AWS account against what sending needs (SES access and quota, identity, DKIM, MAIL FROM,
    /// TLS policy, event destination, DMARC) and prints what to fix; exit status 1 if anything must be.
    Doctor(doctor::DoctorArgs),
    /// The customer key of a stack: rotate it and re-seal every contact.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        bench: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Sending rate across concurrent senders against a local sink, and the render + MIME cost.
    Send(bench_send::SendBenchArgs),
    /// POST /v1/consent at 16/64/256 concurrent clients, and known against unknown addresses.
    Consent(bench_consent::ConsentBenchArgs),
    /// Sealed contacts opened per second per core on the embedded path (every attribute, cold key cache).
    Decrypt(bench_decrypt::DecryptBenchArgs),
    /// Fan-out throughput and memory on the embedded path with a large synthetic population.
    Fanout(bench_fanout::FanoutBenchArgs),
    /// One journey timer sweep on the embedded path: 1,000,000 enrolled, 100,000 due, its time and memory.
    Journeys(bench_journeys::JourneyBenchArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let partial = e.downcast_ref::<PartialFailure>().is_some();
            std::process::ExitCode::from(if partial { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let connection = &cli.connection;
    match cli.command {
        Command::Dev(args) => {
            logging::init("info");
            dev::run(args).await
        }
        Command::Demo(args) => {
            // Progress bars own the terminal; only warnings are logged.
            logging::init("warn");
            demo::run(args).await
        }
        Command::Campaign { command: campaign::CampaignCommand::Validate(args) } => campaign::validate(&args),
        Command::Campaign { command } => campaign::run(command, &connection.connect().await?).await,
        Command::Audit { command } => audit::run(command, &connection.connect().await?).await,
        Command::Contacts { command } => contacts::run(command, &connection.connect().await?).await,
        Command::Schema { command: schema::SchemaCommand::Show } => schema::show(&connection.connect().await?).await,
        Command::Schema { command: schema::SchemaCommand::Validate(args) } => schema::validate_schema(&args),
        Command::Forms { command: schema::FormsCommand::Validate(args) } => schema::validate_forms(&args),
        Command::Journey { command: journey::JourneyCommand::Validate(args) } => journey::run_offline(&args),
        Command::Journey { command } => journey::run(command, &connection.connect().await?).await,
        Command::Doctor(args) => doctor::run(args, connection).await,
        Command::Keys { command } => keys::run(command, &connection.connect().await?).await,
        Command::Bench { bench: Bench::Send(args) } => {
            logging::init("warn");
            bench_send::run(args).await
        }
        Command::Bench { bench: Bench::Consent(args) } => {
            logging::init("warn");
            bench_consent::run(args).await
        }
        Command::Bench { bench: Bench::Decrypt(args) } => {
            logging::init("warn");
            bench_decrypt::run(args).await
        }
        Command::Bench { bench: Bench::Fanout(args) } => {
            logging::init("warn");
            bench_fanout::run(args).await
        }
        Command::Bench { bench: Bench::Journeys(args) } => {
            logging::init("warn");
            bench_journeys::run(args).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed_with_global_connection_flags() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_go_before_or_after_the_subcommand() {
        let before = Cli::try_parse_from(["carepost", "--target", "production", "campaign", "list"]).unwrap();
        let after = Cli::try_parse_from(["carepost", "campaign", "list", "--target", "production", "--output", "json"])
            .unwrap();
        assert_eq!(before.connection.target.as_deref(), Some("production"));
        assert_eq!(after.connection.target.as_deref(), Some("production"));
        assert_eq!(after.connection.output, client::Output::Json);
    }
}
