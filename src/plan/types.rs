//! A plan is data: phases of steps with explicit dependencies, printed by `convoy plan` and walked
//! by the executor — the dry run shows exactly what the deploy will do.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::config::Dur;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepId(pub usize);

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// New versions start beside the old ones, providers first; no user traffic yet.
    Provision,
    /// Traffic moves to the new versions in the policy's steps, providers first.
    Switch,
    /// Old versions are retired after `keep_warm`, clients first.
    Cleanup,
    /// Reverting a release: traffic back, new versions removed.
    Rollback,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Provision => "provision",
            Phase::Switch => "switch",
            Phase::Cleanup => "cleanup",
            Phase::Rollback => "rollback",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Start `version` beside whatever runs now and wait until it is healthy.
    Provision { version: String },
    /// Give `to` this share of traffic (100 pins it), taken from `from`; then bake and check.
    Switch {
        from: Option<String>,
        to: String,
        percent: u8,
        bake: Dur,
    },
    /// Retire an old version that no longer takes traffic.
    Retire { version: String },
    /// Delete a version that never took traffic (rollback of a provision).
    Remove { version: String },
    /// Run the release task `task` of revision `version` once, to its end.
    Task {
        task: String,
        version: String,
        command: String,
        when: crate::config::TaskWhen,
        /// The environment's `maintenance` flag is `read_only` while it runs.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        maintenance: bool,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Provision { version } => write!(f, "provision {version}"),
            Action::Switch {
                from,
                to,
                percent,
                bake,
            } => {
                match from {
                    Some(from) => write!(f, "switch {percent}% {from} → {to}")?,
                    None => write!(f, "switch {percent}% → {to} (first release)")?,
                }
                if !bake.0.is_zero() {
                    write!(f, ", bake {bake}")?;
                }
                Ok(())
            }
            Action::Retire { version } => write!(f, "retire {version}"),
            Action::Remove { version } => write!(f, "remove {version}"),
            Action::Task {
                task,
                version,
                command,
                when,
                maintenance,
            } => {
                write!(f, "task {task} ({when}) on {version}: {command}")?;
                if *maintenance {
                    write!(f, ", maintenance on")?;
                }
                Ok(())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    pub phase: Phase,
    pub service: String,
    #[serde(flatten)]
    pub action: Action,
    /// Steps that must have succeeded before this one starts, besides every step below
    /// `after_all_below`. All of them: [`Step::needs`].
    pub after: Vec<StepId>,
    /// Every step numbered below this one must have succeeded too: a phase's barrier (every
    /// provision before any switch, every switch before any cleanup) held as one number. Listed
    /// id by id it made each switch and cleanup step of a thousand-service release carry a
    /// thousand ids: most of the plan's memory and of every record's size, and a thousand
    /// checks per step each time the executor looked for ready steps. Records written before it
    /// list every id in `after`, and read the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_all_below: Option<StepId>,
    /// Budget of this step.
    pub timeout: Dur,
    /// Not to run before this time (cleanup waits for `keep_warm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Timestamp>,
}

impl Step {
    /// Every step this one comes after, in order: those below `after_all_below`, then `after`.
    pub fn needs(&self) -> impl Iterator<Item = StepId> + '_ {
        let below = self.after_all_below.map_or(0, |b| b.0);
        (0..below).map(StepId).chain(self.after.iter().copied())
    }

    /// Whether this step comes directly after `step`.
    pub fn needs_step(&self, step: StepId) -> bool {
        self.after_all_below.is_some_and(|b| step < b) || self.after.contains(&step)
    }

    /// "After every step below `gate` and after each of `after`" as the planner keeps it:
    /// `after` sorted, without repeats or steps below the gate, the run that continues the gate
    /// (`gate, gate + 1, …`) folded into it, and a gate of one listed as step `#0`.
    pub fn fold_after(gate: usize, mut after: Vec<StepId>) -> (Option<StepId>, Vec<StepId>) {
        after.retain(|id| id.0 >= gate);
        after.sort();
        after.dedup();
        let run = after
            .iter()
            .enumerate()
            .take_while(|(i, id)| id.0 == gate + i)
            .count();
        after.drain(..run);
        match gate + run {
            0 => (None, after),
            1 => {
                after.insert(0, StepId(0));
                (None, after)
            }
            below => (Some(StepId(below)), after),
        }
    }
}

/// One service whose version changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub service: String,
    pub from: Option<String>,
    pub to: String,
    /// Why the revision changes: code, values, secrets, templates, `--set`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<crate::plan::revision::Reason>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub environment: String,
    pub created: Timestamp,
    pub changes: Vec<Change>,
    /// Services already at their desired version: nothing to roll.
    pub unchanged: Vec<Change>,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn step(&self, id: StepId) -> Option<&Step> {
        self.steps.get(id.0).filter(|s| s.id == id)
    }

    pub fn phase(&self, phase: Phase) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.phase == phase)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "plan for {}", self.environment)?;
        for change in &self.changes {
            let from = change.from.as_deref().unwrap_or("(new)");
            writeln!(f, "  {:<12} {from} → {}", change.service, change.to)?;
            for reason in &change.reasons {
                writeln!(f, "  {:<12}   {reason}", "")?;
            }
        }
        for change in &self.unchanged {
            writeln!(f, "  {:<12} {} (unchanged)", change.service, change.to)?;
        }
        if self.steps.is_empty() {
            return writeln!(f, "nothing to do");
        }
        let mut current = None;
        for step in &self.steps {
            if current != Some(step.phase) {
                writeln!(f, "{}:", step.phase)?;
                current = Some(step.phase);
            }
            write!(
                f,
                "  {:>3}  {:<12} {}",
                step.id.to_string(),
                step.service,
                step.action
            )?;
            let below: Vec<String> = match step.after_all_below.map(|b| b.0) {
                Some(2) => vec!["#0".to_string(), "#1".to_string()],
                Some(below) => vec![format!("#0–#{}", below - 1)],
                None => Vec::new(),
            };
            let after: Vec<String> = below
                .into_iter()
                .chain(step.after.iter().map(ToString::to_string))
                .collect();
            if !after.is_empty() {
                write!(f, "  after {}", after.join(" "))?;
            }
            writeln!(f, "  (timeout {})", step.timeout)?;
        }
        Ok(())
    }
}
