//! When each step of a release ran, from its progress events as they arrive: the `elapsed_ms` of a
//! JSON completion event and the per-phase summary that ends the human output. Pure: the
//! reporter passes the time each event arrived.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jiff::Timestamp;

use crate::execute::Event;
use crate::plan::{Phase, StepId};

/// One step that ran from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    phase: Phase,
    service: String,
    start: Timestamp,
    end: Timestamp,
}

impl Span {
    fn took(&self) -> Duration {
        duration(self.start, self.end)
    }
}

/// The steps seen so far: those running and those done.
#[derive(Debug, Default)]
pub struct Timeline {
    first: Option<Timestamp>,
    running: BTreeMap<StepId, (Phase, String, Timestamp)>,
    done: Vec<Span>,
}

impl Timeline {
    /// Takes in `event`, which arrived at `now`; for a completion (a step that succeeded or
    /// failed, or the whole run finished) returns how long it took.
    pub fn observe(&mut self, event: &Event, now: Timestamp) -> Option<Duration> {
        let first = *self.first.get_or_insert(now);
        match event {
            Event::StepStarted {
                step,
                phase,
                service,
                ..
            } => {
                self.running.insert(*step, (*phase, service.clone(), now));
                None
            }
            Event::StepSucceeded { step, .. } | Event::StepFailed { step, .. } => {
                let (phase, service, start) = self.running.remove(step)?;
                let span = Span {
                    phase,
                    service,
                    start,
                    end: now,
                };
                let took = span.took();
                self.done.push(span);
                Some(took)
            }
            Event::Finished { .. } => Some(duration(first, now)),
            _ => None,
        }
    }

    /// Each phase's wall time (first start to last end) and the slowest service on the critical
    /// path, for the steps done so far.
    pub fn summary(&self) -> Summary {
        let mut phases: BTreeMap<Phase, (Timestamp, Timestamp)> = BTreeMap::new();
        for span in &self.done {
            let entry = phases.entry(span.phase).or_insert((span.start, span.end));
            entry.0 = entry.0.min(span.start);
            entry.1 = entry.1.max(span.end);
        }
        let phases = phases
            .into_iter()
            .map(|(phase, (start, end))| (phase, duration(start, end)))
            .collect();
        Summary {
            phases,
            slowest: self.slowest_on_critical_path(),
        }
    }

    /// The critical path, walked back from the step that ended last: before each step, the one
    /// that ended last before it started (what it waited for, as far as the times tell). Returns
    /// the service whose steps on that path took longest, with their total.
    fn slowest_on_critical_path(&self) -> Option<(String, Duration)> {
        let mut at = self.done.iter().max_by_key(|s| s.end)?;
        let mut per_service: BTreeMap<&str, Duration> = BTreeMap::new();
        loop {
            *per_service.entry(at.service.as_str()).or_default() += at.took();
            let before = self
                .done
                .iter()
                .filter(|s| s.end <= at.start && !std::ptr::eq(*s, at))
                .max_by_key(|s| s.end);
            match before {
                Some(span) => at = span,
                None => break,
            }
        }
        let (service, took) = per_service.into_iter().max_by_key(|(_, took)| *took)?;
        Some((service.to_string(), took))
    }
}

fn duration(from: Timestamp, to: Timestamp) -> Duration {
    to.duration_since(from).try_into().unwrap_or_default()
}

/// Where a release's time went: `provision 3.1s · switch 1.2s · slowest on the critical path:
/// api 2.6s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub phases: Vec<(Phase, Duration)>,
    pub slowest: Option<(String, Duration)>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self
            .phases
            .iter()
            .map(|(phase, took)| format!("{phase} {}", super::elapsed(*took)))
            .collect();
        if let Some((service, took)) = &self.slowest {
            parts.push(format!(
                "slowest on the critical path: {service} {}",
                super::elapsed(*took)
            ));
        }
        write!(f, "{}", parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millisecond(1_800_000_000_000 + millis).unwrap()
    }

    fn started(step: usize, phase: Phase, service: &str) -> Event {
        Event::StepStarted {
            step: StepId(step),
            phase,
            service: service.to_string(),
            action: String::new(),
        }
    }

    fn succeeded(step: usize, phase: Phase, service: &str) -> Event {
        Event::StepSucceeded {
            step: StepId(step),
            phase,
            service: service.to_string(),
        }
    }

    #[test]
    fn a_completion_reports_the_time_since_its_start_and_finished_since_the_first_event() {
        let mut timeline = Timeline::default();
        assert_eq!(
            timeline.observe(&started(0, Phase::Provision, "api"), at(100)),
            None
        );
        let took = timeline.observe(&succeeded(0, Phase::Provision, "api"), at(2_700));
        assert_eq!(took, Some(Duration::from_millis(2_600)));
        let finished = Event::Finished {
            outcome: "succeeded".to_string(),
        };
        assert_eq!(
            timeline.observe(&finished, at(3_000)),
            Some(Duration::from_millis(2_900))
        );
    }

    #[test]
    fn the_summary_gives_each_phase_its_wall_time_and_the_slowest_service_on_the_critical_path() {
        let mut timeline = Timeline::default();
        // db and cache provision side by side; api waits for db (the later one), then switches.
        let events = [
            (started(0, Phase::Provision, "db"), 0),
            (started(1, Phase::Provision, "cache"), 0),
            (succeeded(1, Phase::Provision, "cache"), 1_000),
            (succeeded(0, Phase::Provision, "db"), 3_000),
            (started(2, Phase::Provision, "api"), 3_010),
            (succeeded(2, Phase::Provision, "api"), 5_000),
            (started(3, Phase::Switch, "db"), 5_010),
            (succeeded(3, Phase::Switch, "db"), 5_100),
            (started(4, Phase::Switch, "api"), 5_110),
            (succeeded(4, Phase::Switch, "api"), 5_300),
        ];
        for (event, millis) in &events {
            timeline.observe(event, at(*millis));
        }
        let summary = timeline.summary();
        assert_eq!(
            summary.phases,
            vec![
                (Phase::Provision, Duration::from_millis(5_000)),
                (Phase::Switch, Duration::from_millis(290)),
            ]
        );
        // db: 3.0 s provision + 0.09 s switch on the path; api: 1.99 s + 0.19 s; cache is off it.
        assert_eq!(
            summary.slowest,
            Some(("db".to_string(), Duration::from_millis(3_090)))
        );
        assert_eq!(
            summary.to_string(),
            "provision 5.0s · switch 290ms · slowest on the critical path: db 3.1s"
        );
    }

    #[test]
    fn a_run_without_steps_has_an_empty_summary() {
        assert_eq!(Timeline::default().summary().to_string(), "");
    }
}
