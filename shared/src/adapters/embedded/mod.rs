//! Embedded adapters: SQLite (bundled) for every table and for durable
//! queues, a local key file in place of KMS, and an outbox of `.eml` files or
//! an SMTP relay in place of SES.

pub mod activity;
pub mod audit;
pub mod campaigns;
pub mod consent;
pub mod contacts;
pub mod db;
pub mod intake;
pub mod journeys;
pub mod keyfile;
pub mod ledger;
pub mod outbox;
pub mod queue;
pub mod retention;
pub mod secrets;
pub mod secure_messages;
pub mod smtp;
pub mod suppression;

pub use activity::SqliteActivityStore;
pub use audit::SqliteAuditLog;
pub use campaigns::SqliteCampaignStore;
pub use consent::SqliteConsentStore;
pub use contacts::SqliteContactStore;
pub use db::Db;
pub use intake::SqliteIntakeStore;
pub use journeys::SqliteJourneyStore;
pub use keyfile::KeyFileProvider;
pub use ledger::SqliteSendLedger;
pub use outbox::OutboxTransport;
pub use queue::{QueueSettings, SqliteQueue};
pub use retention::Swept;
pub use secrets::SqliteSecretStore;
pub use secure_messages::SqliteSecureMessageStore;
pub use smtp::{SmtpSecurity, SmtpSettings, SmtpTransport};
pub use suppression::SqliteSuppressionList;
