//! Retrying what an API server may refuse for a moment: 429 (priority and fairness) and 5xx, and
//! dropped connections, with exponential backoff and jitter. Every request Convoy retries is
//! idempotent: reads, server-side apply, deletes, and replaces guarded by a resourceVersion.

use std::future::Future;
use std::time::Duration;

/// How many times, and how long between them.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(200),
            max: Duration::from_secs(5),
            attempts: 6,
        }
    }
}

impl Backoff {
    /// The pause before retry number `attempt` (0-based): doubling, capped, with "full jitter"
    /// from `seed` so that many clients refused together do not come back together.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        let nanos = ceiling.as_nanos() as u64;
        let jittered = if nanos == 0 {
            0
        } else {
            nanos / 2 + splitmix(seed ^ u64::from(attempt)) % (nanos / 2 + 1)
        };
        Duration::from_nanos(jittered)
    }
}

/// Whether the API server (or the way to it) may answer differently in a moment.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || (500..=599).contains(&status.code),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `call` until it succeeds, fails for good, or the attempts are spent.
pub async fn retrying<T, F, Fut>(backoff: Backoff, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if attempt + 1 < backoff.attempts && is_transient(&error) => {
                tokio::time::sleep(backoff.delay(attempt, seed)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_keep_at_least_half() {
        let backoff = Backoff::default();
        for attempt in 0..10 {
            let ceiling = (backoff.first * 2u32.pow(attempt)).min(backoff.max);
            for seed in 0..50 {
                let delay = backoff.delay(attempt, seed);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "{attempt} {delay:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_clients_apart() {
        let backoff = Backoff::default();
        let delays: std::collections::BTreeSet<Duration> =
            (0..20).map(|seed| backoff.delay(3, seed)).collect();
        assert!(delays.len() > 10);
    }

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("x", "y").with_code(code),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_429_and_5xx_but_not_4xx() {
        let mut calls = 0;
        let result = retrying(Backoff::default(), || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(api(if n == 1 { 429 } else { 503 }))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);

        let mut calls = 0;
        let result: Result<(), _> = retrying(Backoff::default(), || {
            calls += 1;
            async { Err(api(422)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_attempts() {
        let mut calls = 0;
        let result: Result<(), _> = retrying(Backoff::default(), || {
            calls += 1;
            async { Err(api(500)) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, Backoff::default().attempts);
    }
}
