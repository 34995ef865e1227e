//! Integration tests: one binary acting as a client of the real adapters and handler.

mod aws;
mod moto;
