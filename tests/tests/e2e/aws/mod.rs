//! The Lambda handlers and AWS adapters on moto (the AWS wire protocol).

pub mod cold_start;
pub mod doctor;
pub mod fanout_scale;
pub mod fault_injection;
pub mod faults;
pub mod handlers;
pub mod harness;
pub mod journey_split;
pub mod journeys;
pub mod outage;
pub mod pipeline;
pub mod throttle_storm;
