//! Port contract suites: one binary, one module per port.
//!
//! Each module exposes adapter-independent suite functions, one per
//! behaviour, that take the port as `&dyn Trait` (or `Arc<dyn Trait>`), and a
//! `<port>_contract` function that runs them all against one instance. The
//! `embedded` submodule of each runs every behaviour against the embedded
//! adapter on a fresh database; an AWS adapter runs the very same functions.

mod contracts {
    pub mod activity;
    pub mod audit;
    #[cfg(feature = "aws")]
    mod aws_dynamodb;
    #[cfg(feature = "aws")]
    mod aws_services;
    pub mod campaigns;
    pub mod consent;
    pub mod contacts;
    pub mod intake;
    pub mod journeys;
    pub mod key_provider;
    pub mod ledger;
    pub mod queue;
    pub mod retention;
    pub mod secrets;
    pub mod secure_messages;
    pub mod support;
    pub mod suppression;
    pub mod transport;
}
