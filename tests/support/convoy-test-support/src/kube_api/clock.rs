//! The server's clock: wall-clock time that advances with tokio's clock, so paused-time tests see
//! timestamps, ready delays and progress deadlines move together.

use std::time::Duration;

use tokio::time::Instant;

/// Wall-clock time that advances with tokio's clock, so paused-time tests see timestamps and
/// deadlines move together.
#[derive(Debug, Clone)]
pub struct Clock {
    wall: jiff::Timestamp,
    start: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            wall: jiff::Timestamp::now(),
            start: Instant::now(),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.at(Instant::now())
    }

    pub fn at(&self, instant: Instant) -> jiff::Timestamp {
        let elapsed = instant.saturating_duration_since(self.start);
        self.wall
            .checked_add(elapsed)
            .expect("test clock within range")
    }

    /// RFC 3339 with whole seconds, as Kubernetes writes `metav1.Time`.
    pub fn stamp(&self) -> String {
        self.stamp_at(Instant::now())
    }

    pub fn stamp_at(&self, instant: Instant) -> String {
        self.at(instant).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// The tokio instant of a timestamp this clock wrote.
    pub fn instant_of(&self, stamp: &str) -> Option<Instant> {
        let ts: jiff::Timestamp = stamp.parse().ok()?;
        let since = ts.duration_since(self.wall);
        let since = Duration::try_from(since).unwrap_or(Duration::ZERO);
        Some(self.start + since)
    }
}
