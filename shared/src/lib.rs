//! Carepost core: the domain, the ports to every outside system, the embedded
//! adapters, the use cases and the HTTP routers. Binaries stay thin and wire
//! these together.

pub mod adapters;
pub mod app;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod forms;
pub mod http;
pub mod mail;
pub mod ports;
pub mod runtime;
pub mod synthetic;

#[cfg(test)]
mod phi_formatting_tests;
