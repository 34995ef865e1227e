//! Integration tests: one binary acting as a client of the real adapters and handler
//! (mock HubSpot over real HTTP, Secrets Manager and SQS on a local moto server).

mod aws;
mod check_online;
mod cli;
mod dedupe;
mod docs;
mod faults;
mod for_each;
mod handler;
mod helpers;
mod hubspot_wire;
mod idempotency;
mod logs;
mod metrics;
mod moto;
mod payloads;
mod plan;
mod portal;
mod providers;
mod queue;
mod queue_load;
mod replay;
#[allow(dead_code)] // shared with tests/emulator, which uses other parts of it
#[path = "../common/sample_events.rs"]
mod sample_events;
mod secrets;
mod template;
mod template_schema;
mod xray;
