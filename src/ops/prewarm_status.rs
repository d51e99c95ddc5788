//! Whether a prewarm window's capacity actually serves: the rule `convoy status` applies to each
//! raised service of an active window.

use crate::plan::prewarm::Level;
use crate::targets::prewarm::Capacity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The service does not run, so nothing was raised.
    NotRunning,
    /// Its level is still below the window's (the raise has not happened).
    NotRaised {
        level: Level,
        wanted: u32,
    },
    /// Raised, but fewer than `wanted` replicas (instances) serve yet.
    Short {
        ready: u32,
        wanted: u32,
    },
    Ready {
        ready: u32,
        wanted: u32,
    },
}

/// The readiness of a service whose window wants `wanted` replicas, given its capacity.
pub fn readiness(wanted: u32, capacity: Option<&Capacity>) -> Readiness {
    let Some(capacity) = capacity else {
        return Readiness::NotRunning;
    };
    if capacity.level.replicas < wanted {
        return Readiness::NotRaised {
            level: capacity.level,
            wanted,
        };
    }
    if capacity.ready < wanted {
        return Readiness::Short {
            ready: capacity.ready,
            wanted,
        };
    }
    Readiness::Ready {
        ready: capacity.ready,
        wanted,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A live version at `replicas`, `ready` of them Ready.
    pub(crate) fn capacity(replicas: u32, ready: u32) -> Capacity {
        Capacity {
            version: "v1".into(),
            level: Level {
                replicas,
                max: None,
                desired: None,
            },
            desired: replicas,
            ready,
        }
    }

    #[test]
    fn raised_and_ready_are_told_apart() {
        assert_eq!(readiness(3, None), Readiness::NotRunning);
        assert!(matches!(
            readiness(9, Some(&capacity(3, 3))),
            Readiness::NotRaised { wanted: 9, .. }
        ));
        assert_eq!(
            readiness(6, Some(&capacity(6, 2))),
            Readiness::Short {
                ready: 2,
                wanted: 6
            }
        );
        assert_eq!(
            readiness(6, Some(&capacity(6, 6))),
            Readiness::Ready {
                ready: 6,
                wanted: 6
            }
        );
    }
}
