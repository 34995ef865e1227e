//! dealhook: third-party webhooks in, HubSpot deals out.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod aws;
pub mod credentials;
pub mod dead_letter;
pub mod domain;
pub mod hubspot;
pub mod inbound;
pub mod mapping;
