//! `carepost`: the local dev server, the demo, and admin commands.

mod args;
mod audit;
mod bench_decrypt;
mod bench_fanout;
mod bench_send;
mod campaign;
mod contacts;
mod demo;
mod dev;
mod keys;
mod logging;
mod proc_stats;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "carepost", version, about = "Consented, PHI-safe patient email campaigns")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the public and admin routes and run the queue workers locally.
    Dev(dev::DevArgs),
    /// Run the whole pipeline on a fresh local stack with synthetic patients, then keep serving.
    Demo(demo::DemoArgs),
    /// Operate a campaign of a running local stack: report, pause, resume, retry-failed.
    Campaign {
        #[command(subcommand)]
        command: campaign::CampaignCommand,
    },
    /// Contacts of a running local stack: import a CSV file.
    Contacts {
        #[command(subcommand)]
        command: contacts::ContactsCommand,
    },
    /// The PHI-access audit log of a running local stack: verify its chain, export it.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The customer key of a running local stack: rotate it and re-seal every contact.
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
    /// Sealed contacts opened per second per core on the embedded path (every attribute, cold key cache).
    Decrypt(bench_decrypt::DecryptBenchArgs),
    /// Fan-out throughput and memory on the embedded path with a large synthetic population.
    Fanout(bench_fanout::FanoutBenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
        Command::Campaign { command } => campaign::run(command).await,
        Command::Audit { command } => audit::run(command).await,
        Command::Contacts { command } => contacts::run(command).await,
        Command::Keys { command } => keys::run(command).await,
        Command::Bench { bench: Bench::Send(args) } => {
            logging::init("warn");
            bench_send::run(args).await
        }
        Command::Bench { bench: Bench::Decrypt(args) } => {
            logging::init("warn");
            bench_decrypt::run(args).await
        }
        Command::Bench { bench: Bench::Fanout(args) } => {
            logging::init("warn");
            bench_fanout::run(args).await
        }
    }
}
