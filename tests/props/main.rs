//! Property tests over hostile input: body decoding, source normalisers, mapping evaluation and
//! the whole pipeline with in-memory fakes. Every property asserts the contract, not only "no
//! panic". Bounded for CI: 64 cases per property unless `PROPTEST_CASES` says otherwise, small
//! bodies; failures are saved under `tests/props/proptest-regressions/` (commit them with the fix).

mod arb;
mod decoding;
mod events;
mod mapping;
mod pipeline;

use proptest::test_runner::Config;

/// 64 cases per property, or `PROPTEST_CASES`; shrinking bounded so a failure reports quickly.
pub fn config() -> Config {
    let mut config = Config::default(); // reads PROPTEST_CASES and the other PROPTEST_* variables
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 64;
    }
    config.max_shrink_iters = 2_000;
    config
}
