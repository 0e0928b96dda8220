//! Options shared by `dev` and `demo`. Throughput knobs carry the SAM
//! template's parameter names (as kebab-case flags and CAREPOST_* variables).

use std::net::SocketAddr;
use std::path::PathBuf;

use carepost::adapters::embedded::{SmtpSecurity, SmtpSettings};
use carepost::config::{Knobs, Runtime, Throughput};
use carepost::runtime::{EmbeddedConfig, TransportChoice};
use clap::Args;
use serde::Serialize;

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
    /// The sender's display name (SENDER_NAME). Default: the example clinic's.
    #[arg(long, env = "CAREPOST_SENDER_NAME")]
    pub sender_name: Option<String>,
    /// The sender's address (SENDER_ADDRESS). Default: the example clinic's.
    #[arg(long, env = "CAREPOST_SENDER_ADDRESS")]
    pub sender_address: Option<String>,
    /// The sender's postal address, shown in marketing mail (POSTAL_ADDRESS).
    /// Default: the example clinic's.
    #[arg(long, env = "CAREPOST_POSTAL_ADDRESS")]
    pub postal_address: Option<String>,
    /// drop (default) or secure_message: what happens to mail the recipient's server cannot take over
    /// TLS (TLS_FALLBACK); a campaign may override it.
    #[arg(long, env = "CAREPOST_TLS_FALLBACK", value_name = "drop|secure_message")]
    pub tls_fallback: Option<String>,
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
    #[arg(long, env = "CAREPOST_FREQUENCY_CAP", value_name = "N/DAYS")]
    pub frequency_cap: Option<String>,
    /// Consent requests one client IP may make to one form per clock hour
    /// (CONSENT_LIMIT_PER_IP_PER_HOUR). Default 20.
    #[arg(long, env = "CAREPOST_CONSENT_LIMIT_PER_IP_PER_HOUR")]
    pub consent_limit_per_ip_per_hour: Option<u32>,
    /// Consent requests for one email address to one form per clock hour
    /// (CONSENT_LIMIT_PER_ADDRESS_PER_HOUR). Default 5.
    #[arg(long, env = "CAREPOST_CONSENT_LIMIT_PER_ADDRESS_PER_HOUR")]
    pub consent_limit_per_address_per_hour: Option<u32>,
    /// The smallest count reports, estimates and the campaign list show as a
    /// number; smaller ones read "fewer than N" (MIN_CELL_SIZE). Default 11;
    /// 1 shows every count.
    #[arg(long, env = "CAREPOST_MIN_CELL_SIZE", value_name = "N")]
    pub min_cell_size: Option<u64>,
    #[command(flatten)]
    pub throughput: ThroughputArgs,
}

/// Throughput flags by knob name; unset ones are left out so lower sources show through.
#[derive(Args, Debug, Clone, Serialize)]
pub struct ThroughputArgs {
    /// SendRatePerSecond: the account-wide sending rate.
    #[arg(long, env = "CAREPOST_SEND_RATE_PER_SECOND")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_rate_per_second: Option<u32>,
    /// SenderMaxConcurrency: concurrent senders (at least 2).
    #[arg(long, env = "CAREPOST_SENDER_MAX_CONCURRENCY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_max_concurrency: Option<u32>,
    /// SenderBatchSize: send jobs per receive.
    #[arg(long, env = "CAREPOST_SENDER_BATCH_SIZE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_batch_size: Option<u32>,
    /// SenderBatchingWindowSeconds.
    #[arg(long, env = "CAREPOST_SENDER_BATCHING_WINDOW_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_batching_window_seconds: Option<u32>,
    /// FanoutShards: parallel-scan segments per campaign.
    #[arg(long, env = "CAREPOST_FANOUT_SHARDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout_shards: Option<u16>,
    /// FanoutMaxConcurrency.
    #[arg(long, env = "CAREPOST_FANOUT_MAX_CONCURRENCY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fanout_max_concurrency: Option<u32>,
    /// VisibilityTimeoutSeconds: how long a received message stays hidden.
    #[arg(long, env = "CAREPOST_VISIBILITY_TIMEOUT_SECONDS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility_timeout_seconds: Option<u32>,
    /// MaxReceiveCount: receives before the dead-letter queue.
    #[arg(long, env = "CAREPOST_MAX_RECEIVE_COUNT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_receive_count: Option<u32>,
}

/// The flags that set knobs, by knob name (`Knobs`), unset ones left out.
#[derive(Serialize)]
struct KnobFlags<'a> {
    #[serde(flatten)]
    throughput: &'a ThroughputArgs,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_base_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sender_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postal_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_fallback: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reputation_min_sample: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_cap: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_limit_per_ip_per_hour: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_limit_per_address_per_hour: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_cell_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forms_json: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact_schema_json: Option<String>,
}

/// Reads an optional configuration file, naming the file in errors.
fn config_file(path: Option<&PathBuf>) -> anyhow::Result<Option<String>> {
    let Some(path) = path else { return Ok(None) };
    std::fs::read_to_string(path).map(Some).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

impl StackArgs {
    /// The stack's configuration: the knobs from `base` (the command's
    /// defaults), `CAREPOST_*` variables and these flags, in that order.
    pub fn config(&self, base: Throughput) -> anyhow::Result<EmbeddedConfig> {
        let flags = KnobFlags {
            throughput: &self.throughput,
            public_base_url: self.public_base_url.as_deref(),
            sender_name: self.sender_name.as_deref(),
            sender_address: self.sender_address.as_deref(),
            postal_address: self.postal_address.as_deref(),
            tls_fallback: self.tls_fallback.as_deref(),
            reputation_min_sample: self.reputation_min_sample,
            frequency_cap: self.frequency_cap.as_deref(),
            consent_limit_per_ip_per_hour: self.consent_limit_per_ip_per_hour,
            consent_limit_per_address_per_hour: self.consent_limit_per_address_per_hour,
            min_cell_size: self.min_cell_size,
            forms_json: config_file(self.forms.as_ref())?,
            contact_schema_json: config_file(self.schema.as_ref())?,
        };
        let runtime = Runtime::Embedded { own_url: format!("http://{}", self.listen) };
        let knobs = Knobs::load(&Knobs::embedded_sources(base, flags), &runtime)?;
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
        let mut config = EmbeddedConfig::new(self.data_dir.clone());
        config.db_path = self.db.clone();
        config.listen = self.listen;
        config.transport = transport;
        config.knobs = knobs;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        stack: StackArgs,
    }

    fn config(args: &[&str]) -> anyhow::Result<EmbeddedConfig> {
        let cli = Cli::try_parse_from(std::iter::once("carepost").chain(args.iter().copied()))?;
        cli.stack.config(Throughput { send_rate_per_second: 400, ..Throughput::default() })
    }

    #[test]
    fn flags_win_over_the_commands_defaults_and_unset_flags_keep_them() {
        let knobs = config(&["--sender-max-concurrency", "4", "--frequency-cap", "3/7"]).unwrap().knobs;
        assert_eq!(knobs.throughput.sender_max_concurrency, 4);
        assert_eq!(knobs.throughput.send_rate_per_second, 400, "the command's default");
        assert_eq!(knobs.throughput.sender_batch_size, Throughput::default().sender_batch_size);
        assert_eq!(knobs.frequency_cap.map(|c| c.max), Some(3));
    }

    #[test]
    fn a_bad_flag_value_is_named_by_its_flag_and_variable() {
        let err = config(&["--frequency-cap", "often"]).err().expect("refused").to_string();
        assert!(err.starts_with("--frequency-cap (CAREPOST_FREQUENCY_CAP): frequency cap 'often'"), "{err}");
        let knobs = config(&["--sender-max-concurrency", "1"]).unwrap().knobs;
        let err = knobs.validate(&Runtime::Embedded { own_url: "http://127.0.0.1:8787".into() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--sender-max-concurrency (CAREPOST_SENDER_MAX_CONCURRENCY): SenderMaxConcurrency must be 2 to 1000"
        );
    }
}
