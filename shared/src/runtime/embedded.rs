//! The embedded stack: every port on a local adapter, the public and admin
//! routers on one port, and the fan-out, send and events workers in-process.

use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::workers;
use crate::adapters::embedded::{
    Db, KeyFileProvider, OutboxTransport, QueueSettings, SmtpSettings, SmtpTransport, SqliteActivityStore,
    SqliteAuditLog, SqliteCampaignStore, SqliteConsentStore, SqliteContactStore, SqliteIntakeStore, SqliteQueue,
    SqliteSecretStore, SqliteSendLedger, SqliteSuppressionList,
};
use crate::adapters::emf::EmfMetrics;
use crate::app::{App, Ports};
use crate::config::{Knobs, RateShare, Runtime};
use crate::crypto::{CacheLimits, Envelope, Keyring};
use crate::http::{self, ApiError};
use crate::ports::{KeyProvider, MailTransport};

pub enum TransportChoice {
    /// `.eml` files in this directory (default: `<data dir>/outbox`).
    Outbox(Option<PathBuf>),
    Smtp(SmtpSettings),
}

pub struct EmbeddedConfig {
    /// Holds the database, key file, admin token and outbox.
    pub data_dir: PathBuf,
    /// Database file; default `<data dir>/carepost.sqlite3`.
    pub db_path: Option<PathBuf>,
    pub listen: SocketAddr,
    pub transport: TransportChoice,
    /// Run the queue workers (off for tests that drive the use cases directly).
    pub run_workers: bool,
    /// Every knob, as the Lambda runtime has them ([`Knobs`]; the CLI loads
    /// them from `CAREPOST_*` and its flags). Validated at start; the public
    /// base URL defaults to `http://<listen address>`.
    pub knobs: Knobs,
    /// Header-read timeout and connection cap of the HTTP server.
    pub server: super::ServerLimits,
    /// Where every use case reads the time: the system's; the end-to-end
    /// tests pass one they move forward, to walk journeys over weeks.
    pub clock: Arc<dyn crate::ports::Clock>,
    /// How often the journey timer ticks ([`workers::JOURNEY_TICK`]).
    pub journey_tick: std::time::Duration,
}

impl EmbeddedConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            db_path: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            transport: TransportChoice::Outbox(None),
            run_workers: true,
            knobs: Knobs::default(),
            server: super::ServerLimits::default(),
            clock: Arc::new(crate::ports::SystemClock),
            journey_tick: workers::JOURNEY_TICK,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Io(String),
    #[error("could not listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Keyring(#[from] crate::crypto::keyring::KeyringError),
}

pub struct EmbeddedStack {
    pub app: Arc<App>,
    pub db: Db,
    pub fanout_queue: Arc<SqliteQueue>,
    pub send_queue: Arc<SqliteQueue>,
    pub events_queue: Arc<SqliteQueue>,
    pub key_provider: Arc<KeyFileProvider>,
    pub admin_token: String,
    pub addr: SocketAddr,
    pub db_path: PathBuf,
    pub admin_token_path: PathBuf,
    pub outbox_dir: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// How often the embedded store is swept of rows past the retention period.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// DynamoDB's TTL, for the embedded store: once at start, then hourly.
async fn run_sweeper(db: Db, retention: std::time::Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match db.sweep_expired(time::OffsetDateTime::now_utc(), retention).await {
            Ok(swept) if swept != Default::default() => {
                tracing::info!(
                    ledger_rows = swept.ledger_rows,
                    activity_rows = swept.activity_rows,
                    "expired rows removed"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Reads the admin token, creating a random one (mode 0600) on first run.
fn admin_token(dir: &Path) -> Result<String, StackError> {
    let path = dir.join("admin-token");
    let io = |e: std::io::Error| StackError::Io(format!("{}: {e}", path.display()));
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Ok(mut file) => {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).expect("system random is available");
            std::io::Write::write_all(&mut file, hex::encode(bytes).as_bytes()).map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    Ok(std::fs::read_to_string(&path).map_err(io)?.trim().to_owned())
}

async fn require_bearer(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), token.as_bytes()).is_ok() {
        next.run(request).await
    } else {
        ApiError::new(axum::http::StatusCode::UNAUTHORIZED, "unauthorized", "admin routes need the bearer token")
            .into_response()
    }
}

/// The two queues the use cases send to.
pub(crate) struct SqliteQueues {
    pub fanout: Arc<SqliteQueue>,
    pub send: Arc<SqliteQueue>,
}

/// Every store on one SQLite database; the embedded stack and the use
/// cases' unit tests (on an in-memory database) are wired the same way.
pub(crate) fn sqlite_ports(
    db: &Db,
    queues: SqliteQueues,
    transport: Arc<dyn MailTransport>,
    metrics: Arc<dyn crate::ports::Metrics>,
    clock: Arc<dyn crate::ports::Clock>,
) -> Ports {
    Ports {
        contacts: Arc::new(SqliteContactStore::new(db.clone())),
        consent: Arc::new(SqliteConsentStore::new(db.clone())),
        suppression: Arc::new(SqliteSuppressionList::new(db.clone())),
        audit: Arc::new(SqliteAuditLog::new(db.clone())),
        activity: Arc::new(SqliteActivityStore::new(db.clone())),
        intake: Arc::new(SqliteIntakeStore::new(db.clone())),
        campaigns: Arc::new(SqliteCampaignStore::new(db.clone())),
        ledger: Arc::new(SqliteSendLedger::new(db.clone())),
        secure_messages: Arc::new(crate::adapters::embedded::SqliteSecureMessageStore::new(db.clone())),
        journeys: Arc::new(crate::adapters::embedded::SqliteJourneyStore::new(db.clone())),
        fanout_queue: queues.fanout,
        send_queue: queues.send,
        transport,
        metrics,
        clock,
    }
}

impl EmbeddedStack {
    pub async fn start(config: EmbeddedConfig) -> Result<EmbeddedStack, StackError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StackError::Listen { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|e| StackError::Io(e.to_string()))?;
        let settings = config
            .knobs
            .validate(&Runtime::Embedded { own_url: format!("http://{addr}") })
            .map_err(|e| StackError::Config(e.to_string()))?;
        let throughput = settings.throughput;
        let io = |e: std::io::Error| StackError::Io(format!("{}: {e}", config.data_dir.display()));
        std::fs::create_dir_all(&config.data_dir).map_err(io)?;
        // The database holds ciphertext and the outbox holds mail: owner only.
        std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let db_path = config.db_path.clone().unwrap_or_else(|| config.data_dir.join("carepost.sqlite3"));
        let db = Db::open(&db_path)?;
        let key_provider = Arc::new(
            KeyFileProvider::open_or_create(&config.data_dir.join("master.key"))
                .map_err(|e| StackError::Config(e.to_string()))?,
        );
        let admin_token = admin_token(&config.data_dir)?;

        let queue_settings = QueueSettings {
            visibility_timeout: throughput.visibility_timeout(),
            max_receive_count: throughput.max_receive_count,
        };
        let fanout_queue = Arc::new(SqliteQueue::new(db.clone(), "fanout", queue_settings));
        let send_queue = Arc::new(SqliteQueue::new(db.clone(), "send", queue_settings));
        let events_queue = Arc::new(SqliteQueue::new(db.clone(), "ses-events", queue_settings));
        let (transport, outbox_dir): (Arc<dyn MailTransport>, _) = match &config.transport {
            TransportChoice::Outbox(dir) => {
                let dir = dir.clone().unwrap_or_else(|| config.data_dir.join("outbox"));
                let outbox =
                    OutboxTransport::new(&dir).map_err(|e| StackError::Io(format!("{}: {e}", dir.display())))?;
                (Arc::new(outbox), Some(dir))
            }
            TransportChoice::Smtp(settings) => {
                (Arc::new(SmtpTransport::new(settings).map_err(|e| StackError::Config(e.to_string()))?), None)
            }
        };
        let provider: Arc<dyn KeyProvider> = key_provider.clone();
        let keyring = Keyring::load_or_create(provider.as_ref(), &SqliteSecretStore::new(db.clone())).await?;
        let metrics = Arc::new(
            EmfMetrics::append_to(&config.data_dir.join("metrics.jsonl"))
                .map_err(|e| StackError::Io(format!("metrics.jsonl: {e}")))?,
        );
        let queues = SqliteQueues { fanout: fanout_queue.clone(), send: send_queue.clone() };
        let ports = sqlite_ports(&db, queues, transport, metrics, config.clock.clone());
        let app = Arc::new(App::new(
            ports,
            Arc::new(Envelope::new(provider, CacheLimits::default())),
            Arc::new(keyring),
            Arc::new(settings),
            // One process shares one limiter: it gets the whole account rate.
            RateShare::whole(&throughput),
        ));

        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let token = Arc::new(admin_token.clone());
        let admin = http::admin_router(app.clone()).layer(middleware::from_fn_with_state(token, require_bearer));
        let router: Router = http::public_router(app.clone()).merge(admin).fallback(http::not_found);
        tasks.push(tokio::spawn(super::serve::serve(listener, router, config.server, stop_rx.clone())));
        if config.run_workers {
            for _ in 0..throughput.fanout_max_concurrency {
                tasks.push(tokio::spawn(workers::run_fanout_worker(
                    app.clone(),
                    fanout_queue.clone(),
                    stop_rx.clone(),
                )));
            }
            for _ in 0..throughput.sender_max_concurrency {
                tasks.push(tokio::spawn(workers::run_send_worker(app.clone(), send_queue.clone(), stop_rx.clone())));
            }
            tasks.push(tokio::spawn(workers::run_events_worker(app.clone(), events_queue.clone(), stop_rx.clone())));
            tasks.push(tokio::spawn(run_sweeper(db.clone(), app.settings.retention, stop_rx.clone())));
            tasks.push(tokio::spawn(workers::run_journey_timer(app.clone(), config.journey_tick, stop_rx.clone())));
        }
        Ok(EmbeddedStack {
            app,
            db,
            fanout_queue,
            send_queue,
            events_queue,
            key_provider,
            admin_token,
            addr,
            db_path,
            admin_token_path: config.data_dir.join("admin-token"),
            outbox_dir,
            stop,
            tasks,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and the workers, letting in-flight jobs finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
