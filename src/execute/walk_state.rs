//! Which steps of a plan may start now, as data: the executor's scheduling apart from its effects
//! (journal, report, spawn), so it is tested without a target, a store or a clock.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::execute::release::{JournalEntry, StepEvent};
use crate::plan::{Plan, Step, StepId};

/// What one walk of a plan knows of its steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct WalkState {
    /// Succeeded.
    pub done: BTreeSet<StepId>,
    /// Started, deferred or done: not scheduled again in this walk.
    pub launched: BTreeSet<StepId>,
    /// Left for a later run (`catch_up`); the steps after one are deferred too.
    pub deferred: BTreeSet<StepId>,
}

impl WalkState {
    /// Where a journal left off. Succeeded steps are not repeated; started-but-unfinished ones
    /// are (actions are idempotent).
    pub fn from_journal(journal: &[JournalEntry]) -> WalkState {
        let done = succeeded(journal);
        let deferred: BTreeSet<StepId> = journal
            .iter()
            .filter(|e| e.event == StepEvent::Deferred)
            .map(|e| e.step)
            .collect();
        let launched = done.union(&deferred).copied().collect();
        WalkState {
            done,
            launched,
            deferred,
        }
    }

    /// Takes note that the walk performs `ready`.
    pub fn launch(&mut self, ready: Ready<'_>) {
        self.launched.insert(ready.step().id);
        if let Ready::Defer(step) = ready {
            self.deferred.insert(step.id);
        }
    }

    pub fn succeed(&mut self, step: StepId) {
        self.done.insert(step);
    }
}

/// A step whose turn has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ready<'p> {
    /// Every step it comes after succeeded and its time has come.
    Start(&'p Step),
    /// It comes after a deferred step, or `not_before` is still ahead: journaled as deferred.
    Defer(&'p Step),
}

impl<'p> Ready<'p> {
    pub fn step(self) -> &'p Step {
        match self {
            Ready::Start(step) | Ready::Defer(step) => step,
        }
    }
}

/// The steps not yet launched whose dependencies are all done or deferred, in the order to
/// journal them.
pub(super) fn ready_steps<'p>(plan: &'p Plan, state: &WalkState, now: Timestamp) -> Vec<Ready<'p>> {
    let mut next = state.clone();
    let mut ready = Vec::new();
    // A deferral makes the steps after it ready (to be deferred in turn) wherever they are in
    // the plan, so passes repeat until one finds nothing new.
    loop {
        let found = ready.len();
        let prefix = Prefix::of(&next);
        for step in &plan.steps {
            if let Some(turn) = turn_of(step, &next, &prefix, now) {
                next.launch(turn);
                ready.push(turn);
            }
        }
        if ready.len() == found {
            return ready;
        }
    }
}

/// What a pass knows of the steps below a step's `after_all_below`, worked out once per pass.
struct Prefix {
    /// Every step below this one is done or deferred.
    settled_below: usize,
    /// The lowest deferred step.
    first_deferred: Option<StepId>,
}

impl Prefix {
    fn of(state: &WalkState) -> Prefix {
        let settled = |i: &usize| {
            let id = StepId(*i);
            state.done.contains(&id) || state.deferred.contains(&id)
        };
        Prefix {
            settled_below: (0..).take_while(settled).count(),
            first_deferred: state.deferred.first().copied(),
        }
    }
}

fn turn_of<'p>(
    step: &'p Step,
    state: &WalkState,
    prefix: &Prefix,
    now: Timestamp,
) -> Option<Ready<'p>> {
    let settled = |d: &StepId| state.done.contains(d) || state.deferred.contains(d);
    let below = step.after_all_below.map_or(0, |b| b.0);
    if state.launched.contains(&step.id)
        || prefix.settled_below < below
        || !step.after.iter().all(settled)
    {
        return None;
    }
    let waits = prefix.first_deferred.is_some_and(|d| d.0 < below)
        || step.after.iter().any(|d| state.deferred.contains(d));
    let early = step.not_before.is_some_and(|t| t > now);
    Some(if waits || early {
        Ready::Defer(step)
    } else {
        Ready::Start(step)
    })
}

pub(super) fn succeeded(journal: &[JournalEntry]) -> BTreeSet<StepId> {
    journal
        .iter()
        .filter(|e| e.event == StepEvent::Succeeded)
        .map(|e| e.step)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;
    use crate::plan::{Action, Phase};
    use NotBefore::{Ahead, Reached, Unset};

    const NOW: &str = "2026-11-22T10:00:00Z";

    /// When a step may run, relative to `NOW`.
    #[derive(Clone, Copy)]
    enum NotBefore {
        Unset,
        Reached,
        Ahead,
    }

    struct Case {
        name: &'static str,
        /// Each step's dependencies and `not_before`, the step's id being its index.
        steps: &'static [(&'static [usize], NotBefore)],
        done: &'static [usize],
        launched: &'static [usize],
        deferred: &'static [usize],
        expect: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            name: "steps after nothing start at once",
            steps: &[(&[], Unset), (&[], Unset)],
            done: &[],
            launched: &[],
            deferred: &[],
            expect: &["start #0", "start #1"],
        },
        Case {
            name: "a step waits for a dependency still running",
            steps: &[(&[], Unset), (&[0], Unset)],
            done: &[],
            launched: &[0],
            deferred: &[],
            expect: &[],
        },
        Case {
            name: "a step starts once its dependencies are done",
            steps: &[(&[], Unset), (&[], Unset), (&[0, 1], Unset)],
            done: &[0, 1],
            launched: &[0, 1],
            deferred: &[],
            expect: &["start #2"],
        },
        Case {
            name: "a launched step is not scheduled again",
            steps: &[(&[], Unset), (&[0], Unset)],
            done: &[0],
            launched: &[0, 1],
            deferred: &[],
            expect: &[],
        },
        Case {
            name: "a step whose not-before is ahead is deferred",
            steps: &[(&[], Ahead)],
            done: &[],
            launched: &[],
            deferred: &[],
            expect: &["defer #0"],
        },
        Case {
            name: "a step whose not-before is now starts",
            steps: &[(&[], Reached)],
            done: &[],
            launched: &[],
            deferred: &[],
            expect: &["start #0"],
        },
        Case {
            name: "a step after a deferred one is deferred, even with its time come",
            steps: &[(&[], Ahead), (&[0], Reached)],
            done: &[],
            launched: &[],
            deferred: &[],
            expect: &["defer #0", "defer #1"],
        },
        Case {
            name: "a deferral reaches steps earlier in the plan",
            steps: &[(&[1], Unset), (&[], Ahead)],
            done: &[],
            launched: &[],
            deferred: &[],
            expect: &["defer #1", "defer #0"],
        },
        Case {
            name: "a step after one done and one deferred by an earlier run is deferred",
            steps: &[(&[], Unset), (&[], Ahead), (&[0, 1], Unset)],
            done: &[0],
            launched: &[0, 1],
            deferred: &[1],
            expect: &["defer #2"],
        },
        Case {
            name: "a step after every step below it waits while one of them runs",
            steps: &[
                (&[], Unset),
                (&[], Unset),
                (&[0, 1], Unset),
                (&[0, 1, 2], Unset),
            ],
            done: &[0],
            launched: &[0, 1],
            deferred: &[],
            expect: &[],
        },
        Case {
            name: "a step after every step below it starts once they are all done",
            steps: &[
                (&[], Unset),
                (&[], Unset),
                (&[0, 1], Unset),
                (&[0, 1, 2], Unset),
            ],
            done: &[0, 1],
            launched: &[0, 1],
            deferred: &[],
            expect: &["start #2"],
        },
    ];

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn plan(steps: &[(&[usize], NotBefore)]) -> Plan {
        let hour = jiff::SignedDuration::from_hours(1);
        let steps = steps
            .iter()
            .enumerate()
            .map(|(id, (after, not_before))| {
                // As the planner keeps it: `[0, 1]` becomes "after every step below #2".
                let (after_all_below, after) =
                    Step::fold_after(0, after.iter().copied().map(StepId).collect());
                (id, after_all_below, after, not_before)
            })
            .map(|(id, after_all_below, after, not_before)| Step {
                id: StepId(id),
                phase: Phase::Provision,
                service: format!("s{id}"),
                action: Action::Provision {
                    version: "v2".into(),
                },
                after,
                after_all_below,
                timeout: Dur::secs(60),
                not_before: match not_before {
                    Unset => None,
                    Reached => Some(now()),
                    Ahead => Some(now() + hour),
                },
            })
            .collect();
        Plan {
            environment: "production".into(),
            created: now(),
            changes: Vec::new(),
            unchanged: Vec::new(),
            steps,
        }
    }

    fn ids(ids: &[usize]) -> BTreeSet<StepId> {
        ids.iter().copied().map(StepId).collect()
    }

    fn turns(ready: &[Ready<'_>]) -> Vec<String> {
        ready
            .iter()
            .map(|r| match r {
                Ready::Start(step) => format!("start {}", step.id),
                Ready::Defer(step) => format!("defer {}", step.id),
            })
            .collect()
    }

    #[test]
    fn ready_steps_follow_dependencies_deferrals_and_not_before() {
        for case in CASES {
            let plan = plan(case.steps);
            let state = WalkState {
                done: ids(case.done),
                launched: ids(case.launched),
                deferred: ids(case.deferred),
            };
            let ready = ready_steps(&plan, &state, now());
            assert_eq!(turns(&ready), case.expect, "{}", case.name);
        }
    }

    #[test]
    fn a_journal_gives_back_what_succeeded_and_what_was_deferred() {
        let entry = |step: usize, event: StepEvent| JournalEntry {
            at: now(),
            phase: Phase::Provision,
            step: StepId(step),
            service: format!("s{step}"),
            event,
        };
        let journal = [
            entry(0, StepEvent::Started),
            entry(0, StepEvent::Succeeded),
            entry(1, StepEvent::Started),
            entry(2, StepEvent::Deferred),
            entry(3, StepEvent::Started),
            entry(
                3,
                StepEvent::Failed {
                    error: "unhealthy".into(),
                    help: None,
                },
            ),
        ];
        let state = WalkState::from_journal(&journal);
        assert_eq!(state.done, ids(&[0]));
        assert_eq!(state.deferred, ids(&[2]));
        // Started but unfinished steps are launched again (actions are idempotent).
        assert_eq!(state.launched, ids(&[0, 2]));
    }
}
