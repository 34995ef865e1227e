//! Property tests over hostile input: body decoding, source normalisers, mapping evaluation and
//! the whole pipeline with in-memory fakes. Every property asserts the contract, not only "no
//! panic". Bounded for CI: 64 cases per property unless `PROPTEST_CASES` says otherwise, small
//! bodies; failures are saved under `tests/props/proptest-regressions/` (commit them with the fix).

mod arb;
mod decoding;
mod events;
mod mapping;
mod pipeline;

use std::sync::Arc;

use dealhook::aws::{MemoryDeadLetters, MemorySecrets};
use dealhook::credentials::Credentials;
use dealhook::hubspot::{MemoryDeals, RetryPolicy};
use dealhook::mapping::Mapping;
use dealhook::{App, Settings};
use proptest::test_runner::Config;

/// The showcase mapping (`examples/showcase/mapping.yaml`, whose routes the sample events are for).
pub fn showcase_mapping() -> Result<Mapping, dealhook::mapping::MappingLoadError> {
    Mapping::from_yaml(
        include_str!("../../examples/showcase/mapping.yaml"),
        "examples/showcase/mapping.yaml",
    )
}

/// The showcase mapping with HubSpot and the dead-letter queue in memory, to read what a run did.
pub struct Fakes {
    pub app: App,
    pub deals: Arc<MemoryDeals>,
    pub letters: Arc<MemoryDeadLetters>,
}

impl Fakes {
    /// An app over the fakes: bodies up to `max_body_bytes`, signatures checked unless
    /// `skip_signatures`, with `credentials` as the secret.
    pub fn new(max_body_bytes: usize, skip_signatures: bool, credentials: Credentials) -> Fakes {
        let deals = Arc::new(MemoryDeals::default());
        let letters = Arc::new(MemoryDeadLetters::default());
        let app = App::new(
            Settings {
                max_body_bytes,
                dry_run: false,
                skip_signatures,
                retry: RetryPolicy::default(),
            },
            Arc::new(crate::showcase_mapping().expect("the showcase mapping loads")),
            Arc::new(MemorySecrets::new(credentials)),
            deals.clone(),
            letters.clone(),
        );
        Fakes { app, deals, letters }
    }
}

/// 64 cases per property, or `PROPTEST_CASES`; shrinking bounded so a failure reports quickly.
pub fn config() -> Config {
    let mut config = Config::default(); // reads PROPTEST_CASES and the other PROPTEST_* variables
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.max_shrink_iters = 2_000;
    config
}
