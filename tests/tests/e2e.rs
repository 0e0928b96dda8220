//! End-to-end tests of the embedded stack: one binary, shared helpers.

mod e2e {
    pub mod audience;
    pub mod audit;
    pub mod aws;
    pub mod bad_input;
    pub mod browser;
    pub mod campaign_control;
    pub mod consent_import;
    pub mod consent_limits;
    pub mod contact_cli;
    pub mod contact_views;
    pub mod crash_restart;
    pub mod deliverability;
    pub mod erasure;
    pub mod events;
    pub mod forms;
    pub mod front_door;
    pub mod helpers;
    pub mod hipaa;
    pub mod import;
    pub mod keys;
    pub mod mime_python;
    pub mod offline_cli;
    pub mod one_click_python;
    pub mod openapi;
    pub mod outage;
    pub mod phi_scan;
    pub mod pipeline;
    pub mod preferences;
    pub mod reporting;
    pub mod schema;
    pub mod sigv4_cli;
    pub mod smtp;
    pub mod templates;
    pub mod tracking;
}
