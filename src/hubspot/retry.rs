//! When to send a failed HubSpot request again, and after how long: exponential backoff with full
//! jitter, at least HubSpot's `Retry-After`, within an attempt budget and the Lambda's remaining time.
//!
//! Which errors may be retried at all is [`HubSpotError::is_retryable`](super::HubSpotError::is_retryable);
//! this module only decides the wait. [`RetryPolicy::next_wait`] is pure: the caller passes the time
//! left and a random number, so every branch tests deterministically.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The longest `Retry-After` dealhook will wait for, deadline or not: beyond it the delivery is
/// dead-lettered (and redriven later) rather than holding a local run or an invocation hostage.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How patiently the pipeline retries HubSpot.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Most requests per delivery, the first included (`1` = never retry).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubles for each later one.
    pub base: Duration,
    /// Largest backoff ceiling (a `Retry-After` may still ask for more).
    pub cap: Duration,
    /// Time kept free before the invocation deadline to write the dead letter and answer (the
    /// pipeline keeps at most a quarter of the time a delivery has left).
    pub margin: Duration,
    /// How long one more request may take: the HubSpot client's request timeout.
    pub request_timeout: Duration,
    /// A random number in `[0, 1)` per wait (full jitter); tests pass a constant.
    pub random: fn() -> f64,
}

impl Default for RetryPolicy {
    /// 4 attempts; backoff ceilings 200 ms, 400 ms, 800 ms (cap 4 s); 3 s margin; 10 s per request.
    ///
    /// Four attempts spread over about a second and a half ride out a blip (a 502 from HubSpot's
    /// edge, a burst over the 10-second rolling limit) without making the sender wait long; anything
    /// longer is better served by the dead-letter queue and a redrive. The 3 s margin covers an SQS
    /// `SendMessage` with the SDK's own retries plus the response. The 10 s request estimate is the
    /// client's default timeout ([`HubSpotClientConfig`](super::HubSpotClientConfig)); set both together.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(4),
            margin: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            random: random_unit,
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt, or `None` to give up.
    ///
    /// `attempts` is how many requests were made so far (≥ 1). The wait is full jitter,
    /// `random × min(cap, base × 2^(attempts − 1))`, raised to `retry_after` when HubSpot gave one.
    /// `None` when the budget is spent, when `retry_after` exceeds [`MAX_RETRY_AFTER`], or when the
    /// wait plus one more request would end within `margin` of the deadline (`remaining` is the time
    /// left until it; `None` means no deadline, as in local runs).
    pub fn next_wait(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        remaining: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        if retry_after.is_some_and(|after| after > MAX_RETRY_AFTER) {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(31);
        let ceiling = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let wait = ceiling.mul_f64(random).max(retry_after.unwrap_or_default());
        if let Some(remaining) = remaining {
            let needed = wait.saturating_add(self.request_timeout).saturating_add(self.margin);
            if needed > remaining {
                return None;
            }
        }
        Some(wait)
    }
}

/// A random number in `[0, 1)` from the standard library's randomly keyed hasher (no `rand` needed:
/// jitter only has to spread retries, not resist prediction).
pub fn random_unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish() >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base: 100 * MS,
            cap: 1000 * MS,
            margin: 500 * MS,
            request_timeout: 2000 * MS,
            random: || 1.0,
        }
    }

    #[test]
    fn the_ceiling_doubles_per_attempt_until_the_cap() {
        let waits: Vec<_> = (1..6).map(|n| policy().next_wait(n, None, None, 1.0)).collect();
        let expected = [100, 200, 400, 800, 1000].map(|ms| Some(ms * MS));
        assert_eq!(waits, expected);
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_ceiling() {
        let p = policy();
        assert_eq!(p.next_wait(3, None, None, 0.0), Some(Duration::ZERO));
        assert_eq!(p.next_wait(3, None, None, 0.5), Some(200 * MS));
        assert_eq!(p.next_wait(3, None, None, 7.0), Some(400 * MS), "clamped to 1");
        assert_eq!(p.next_wait(3, None, None, -1.0), Some(Duration::ZERO));
        assert_eq!(p.next_wait(3, None, None, f64::NAN), Some(Duration::ZERO));
        for _ in 0..1000 {
            let r = random_unit();
            assert!((0.0..1.0).contains(&r), "{r}");
            let wait = p.next_wait(3, None, None, r).unwrap();
            assert!(wait <= 400 * MS, "{wait:?}");
        }
    }

    #[test]
    fn the_random_source_spreads_its_values() {
        let values: Vec<f64> = (0..100).map(|_| random_unit()).collect();
        assert!(
            values.iter().any(|v| *v < 0.5) && values.iter().any(|v| *v >= 0.5),
            "{values:?}"
        );
    }

    #[test]
    fn retry_after_is_a_floor_even_above_the_cap() {
        let p = policy();
        assert_eq!(p.next_wait(1, Some(3000 * MS), None, 0.0), Some(3000 * MS));
        assert_eq!(
            p.next_wait(2, Some(50 * MS), None, 1.0),
            Some(200 * MS),
            "backoff above it wins"
        );
        assert_eq!(p.next_wait(1, Some(MAX_RETRY_AFTER + MS), None, 0.0), None);
    }

    #[test]
    fn the_attempt_budget_ends_retries() {
        let p = policy();
        assert!(p.next_wait(5, None, None, 1.0).is_some());
        assert_eq!(p.next_wait(6, None, None, 1.0), None);
        assert_eq!(
            p.next_wait(6, Some(MS), None, 0.0),
            None,
            "Retry-After does not extend it"
        );
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy()
        };
        assert_eq!(once.next_wait(1, None, None, 0.0), None);
    }

    #[test]
    fn no_retry_may_end_within_the_margin_of_the_deadline() {
        let p = policy();
        // wait 100 + request 2000 + margin 500 = 2600 ms
        assert_eq!(p.next_wait(1, None, Some(2600 * MS), 1.0), Some(100 * MS));
        assert_eq!(p.next_wait(1, None, Some(2599 * MS), 1.0), None);
        assert_eq!(p.next_wait(1, Some(1000 * MS), Some(3499 * MS), 0.0), None);
        assert_eq!(p.next_wait(1, None, Some(Duration::ZERO), 0.0), None);
        assert_eq!(p.next_wait(1, None, None, 1.0), Some(100 * MS), "no deadline, no bound");
    }

    #[test]
    fn the_default_fits_a_25_second_invocation() {
        let p = RetryPolicy::default();
        let ceilings: Vec<_> = (1..4).map(|n| p.next_wait(n, None, None, 1.0).unwrap()).collect();
        assert_eq!(ceilings, [200 * MS, 400 * MS, 800 * MS]);
        assert_eq!(p.next_wait(4, None, None, 0.0), None);
        // One request spent, 24 s left: a retry fits; with 12 s left, none does.
        assert!(p.next_wait(1, None, Some(Duration::from_secs(24)), 1.0).is_some());
        assert!(p.next_wait(1, None, Some(Duration::from_secs(12)), 1.0).is_none());
    }
}
