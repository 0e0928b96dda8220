//! Options shared by `dev` and `demo`. Throughput knobs carry the SAM
//! template's parameter names (as kebab-case flags and CAREPOST_* variables).

use std::net::SocketAddr;
use std::path::PathBuf;

use carepost::adapters::embedded::{SmtpSecurity, SmtpSettings};
use carepost::config::{ReputationGuard, Throughput};
use carepost::runtime::{EmbeddedConfig, TransportChoice};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// Directory for the database, key file, admin token and outbox.
    #[arg(long, env = "CAREPOST_DATA_DIR", default_value = ".carepost")]
    pub data_dir: PathBuf,
    /// SQLite database file (default: <data dir>/carepost.sqlite3).
    #[arg(long, env = "CAREPOST_DB")]
    pub db: Option<PathBuf>,
    /// Address to serve on.
    #[arg(long, env = "CAREPOST_LISTEN", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Base URL of links in emails (https, or http on loopback). Default: http://<listen>.
    #[arg(long, env = "CAREPOST_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,
    /// Send through this SMTP relay instead of writing .eml files to the outbox.
    #[arg(long, env = "CAREPOST_SMTP_HOST")]
    pub smtp_host: Option<String>,
    #[arg(long, env = "CAREPOST_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,
    #[arg(long, env = "CAREPOST_SMTP_USERNAME")]
    pub smtp_username: Option<String>,
    #[arg(long, env = "CAREPOST_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Plain SMTP without STARTTLS, allowed only to a loopback test sink.
    #[arg(long, env = "CAREPOST_SMTP_INSECURE_LOOPBACK")]
    pub smtp_insecure_loopback: bool,
    /// Deliveries plus bounces a campaign needs in its last hour before the
    /// reputation guard judges its bounce (5 %) and complaint (0.1 %) rates.
    #[arg(long, env = "CAREPOST_REPUTATION_MIN_SAMPLE")]
    pub reputation_min_sample: Option<u64>,
    /// The topics and web forms (JSON; see docs/forms.example.json): allowed
    /// origins, consent text, double opt-in, redirect URLs, fields.
    #[arg(long, env = "CAREPOST_FORMS", value_name = "FILE")]
    pub forms: Option<PathBuf>,
    /// The contact schema (JSON; see docs/schema.example.json): every
    /// attribute stored, its type and its class. Default: the built-in attributes.
    #[arg(long, env = "CAREPOST_SCHEMA", value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// At most N marketing emails per patient in any DAYS days, as N/DAYS
    /// (e.g. 3/7). Marketing and purpose-less campaigns count; treatment and
    /// operations mail is never held back. Default: no cap.
    #[arg(long, env = "CAREPOST_FREQUENCY_CAP", value_name = "N/DAYS", value_parser = carepost::config::FrequencyCap::parse)]
    pub frequency_cap: Option<carepost::config::FrequencyCap>,
    #[command(flatten)]
    pub throughput: ThroughputArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ThroughputArgs {
    /// SendRatePerSecond: the account-wide sending rate.
    #[arg(long, env = "CAREPOST_SEND_RATE_PER_SECOND")]
    pub send_rate_per_second: Option<u32>,
    /// SenderMaxConcurrency: concurrent senders (at least 2).
    #[arg(long, env = "CAREPOST_SENDER_MAX_CONCURRENCY")]
    pub sender_max_concurrency: Option<u32>,
    /// SenderBatchSize: send jobs per receive.
    #[arg(long, env = "CAREPOST_SENDER_BATCH_SIZE")]
    pub sender_batch_size: Option<u32>,
    /// SenderBatchingWindowSeconds.
    #[arg(long, env = "CAREPOST_SENDER_BATCHING_WINDOW_SECONDS")]
    pub sender_batching_window_seconds: Option<u32>,
    /// FanoutShards: parallel-scan segments per campaign.
    #[arg(long, env = "CAREPOST_FANOUT_SHARDS")]
    pub fanout_shards: Option<u16>,
    /// FanoutMaxConcurrency.
    #[arg(long, env = "CAREPOST_FANOUT_MAX_CONCURRENCY")]
    pub fanout_max_concurrency: Option<u32>,
    /// VisibilityTimeoutSeconds: how long a received message stays hidden.
    #[arg(long, env = "CAREPOST_VISIBILITY_TIMEOUT_SECONDS")]
    pub visibility_timeout_seconds: Option<u32>,
    /// MaxReceiveCount: receives before the dead-letter queue.
    #[arg(long, env = "CAREPOST_MAX_RECEIVE_COUNT")]
    pub max_receive_count: Option<u32>,
}

impl ThroughputArgs {
    pub fn over(&self, base: Throughput) -> Throughput {
        Throughput {
            send_rate_per_second: self.send_rate_per_second.unwrap_or(base.send_rate_per_second),
            sender_max_concurrency: self.sender_max_concurrency.unwrap_or(base.sender_max_concurrency),
            sender_batch_size: self.sender_batch_size.unwrap_or(base.sender_batch_size),
            sender_batching_window_seconds: self
                .sender_batching_window_seconds
                .unwrap_or(base.sender_batching_window_seconds),
            fanout_shards: self.fanout_shards.unwrap_or(base.fanout_shards),
            fanout_max_concurrency: self.fanout_max_concurrency.unwrap_or(base.fanout_max_concurrency),
            visibility_timeout_seconds: self.visibility_timeout_seconds.unwrap_or(base.visibility_timeout_seconds),
            max_receive_count: self.max_receive_count.unwrap_or(base.max_receive_count),
        }
    }
}

/// Reads and parses an optional JSON configuration file, naming the file in errors.
fn config_file<T, E: std::fmt::Display>(
    path: Option<&PathBuf>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> anyhow::Result<Option<T>> {
    let Some(path) = path else { return Ok(None) };
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    parse(&text).map(Some).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl StackArgs {
    pub fn config(&self, base: Throughput) -> anyhow::Result<EmbeddedConfig> {
        let forms = config_file(self.forms.as_ref(), carepost::forms::FormsConfig::parse)?;
        let schema = config_file(self.schema.as_ref(), carepost::domain::ContactSchema::parse)?;
        let transport = match &self.smtp_host {
            None => TransportChoice::Outbox(None),
            Some(host) => TransportChoice::Smtp(SmtpSettings {
                host: host.clone(),
                port: self.smtp_port,
                security: if self.smtp_insecure_loopback {
                    SmtpSecurity::InsecureLoopback
                } else {
                    SmtpSecurity::RequireStartTls
                },
                username: self.smtp_username.clone(),
                password: self.smtp_password.clone(),
            }),
        };
        Ok(EmbeddedConfig {
            data_dir: self.data_dir.clone(),
            db_path: self.db.clone(),
            listen: self.listen,
            public_base_url: self.public_base_url.clone(),
            transport,
            throughput: self.throughput.over(base),
            run_workers: true,
            reputation: ReputationGuard {
                min_sample: self.reputation_min_sample.unwrap_or(ReputationGuard::default().min_sample),
                ..ReputationGuard::default()
            },
            forms,
            schema,
            frequency_cap: self.frequency_cap,
            dry_run_budget: carepost::config::DEFAULT_DRY_RUN_BUDGET,
        })
    }
}
