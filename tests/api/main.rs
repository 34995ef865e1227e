//! Integration tests: one binary acting as a client of the real adapters and handler
//! (mock HubSpot over real HTTP, Secrets Manager and SQS on a local moto server).

mod aws;
mod cli;
mod handler;
mod helpers;
mod moto;
mod providers;
mod template;
