//! How an environment moves traffic: strategy, steps, bake time and per-phase time budgets.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::duration::Dur;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Start the new version beside the old one, then move all traffic in one switch.
    #[default]
    Bluegreen,
    /// Move traffic in the policy's steps, baking and checking health between them.
    Canary,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Bluegreen => "bluegreen",
            Strategy::Canary => "canary",
        })
    }
}

/// When new revisions start: each after its providers' (`ordered`), or all at once (`parallel`).
/// A new revision takes no traffic until its switch, and switches keep the dependency order
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provision {
    Ordered,
    #[default]
    Parallel,
}

impl fmt::Display for Provision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provision::Ordered => "ordered",
            Provision::Parallel => "parallel",
        })
    }
}

/// A share of traffic, 1 to 100; written `10` or `"10%"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Percent(pub u8);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let invalid = |shown: &str| {
            serde::de::Error::custom(format!(
                "invalid percentage `{shown}`; write a whole number from 1 to 100, such as 10 or \"10%\""
            ))
        };
        let number = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n,
            Raw::Text(text) => text
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid(&text))?,
        };
        match u8::try_from(number) {
            Ok(n @ 1..=100) => Ok(Percent(n)),
            _ => Err(invalid(&number.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutPolicy {
    pub strategy: Strategy,
    /// Whether new revisions start providers first or all at once.
    pub provision: Provision,
    /// Traffic shares to move through; must rise and end at 100.
    pub steps: Vec<Percent>,
    /// How long each step holds before the next, while health keeps being checked.
    pub bake: Dur,
    /// Budget of one switch step, bake included.
    pub step_timeout: Dur,
    /// Budget of the provision phase for one service (new version up and healthy).
    pub provision_timeout: Dur,
    /// Budget of a rollback, separate from the deploy's so an abort always has time to finish.
    pub rollback_timeout: Dur,
    /// How long old versions stay ready for an instant rollback before cleanup.
    pub keep_warm: Dur,
    /// How many old revisions of a service stay warm: the one just replaced (1, the default)
    /// for the instant rollback; older warm ones retire at the next switch, clients first.
    pub keep_warm_versions: u32,
    /// Upper bound on any service's capacity (used by prewarm).
    pub max_capacity: Option<u32>,
    /// How many release records to keep in the target.
    pub history: u32,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            strategy: Strategy::Bluegreen,
            provision: Provision::default(),
            steps: vec![Percent(100)],
            bake: Dur::secs(0),
            step_timeout: Dur::secs(600),
            provision_timeout: Dur::secs(600),
            rollback_timeout: Dur::secs(300),
            keep_warm: Dur::secs(900),
            keep_warm_versions: 1,
            max_capacity: None,
            history: 50,
        }
    }
}

impl RolloutPolicy {
    /// Why the steps are unusable, if they are.
    pub fn steps_problem(&self) -> Option<String> {
        let Some(last) = self.steps.last() else {
            return Some("`steps` is empty; it must end at 100".to_string());
        };
        if let Some(pair) = self.steps.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Some(format!(
                "`steps` must rise: {}% is followed by {}%",
                pair[0].0, pair[1].0
            ));
        }
        if last.0 != 100 {
            return Some(format!("`steps` must end at 100, not {}", last.0));
        }
        if self.bake >= self.step_timeout {
            return Some(format!(
                "`bake` ({}) must be shorter than `step_timeout` ({}), or every step times out while baking",
                self.bake, self.step_timeout
            ));
        }
        if self.strategy == Strategy::Bluegreen && self.steps.len() > 1 {
            return Some(
                "a bluegreen rollout switches in one step; use `strategy: canary` for steps"
                    .to_string(),
            );
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(strategy: Strategy, steps: &[u8]) -> RolloutPolicy {
        RolloutPolicy {
            strategy,
            steps: steps.iter().map(|&s| Percent(s)).collect(),
            ..RolloutPolicy::default()
        }
    }

    #[test]
    fn steps_must_rise_and_end_at_100() {
        assert_eq!(
            policy(Strategy::Canary, &[10, 50, 100]).steps_problem(),
            None
        );
        assert!(
            policy(Strategy::Canary, &[50, 10, 100])
                .steps_problem()
                .unwrap()
                .contains("must rise")
        );
        assert!(
            policy(Strategy::Canary, &[10, 50])
                .steps_problem()
                .unwrap()
                .contains("end at 100")
        );
        assert!(policy(Strategy::Canary, &[]).steps_problem().is_some());
    }

    #[test]
    fn bake_must_fit_in_a_step() {
        let mut p = policy(Strategy::Canary, &[50, 100]);
        p.bake = p.step_timeout;
        assert!(
            p.steps_problem()
                .unwrap()
                .contains("must be shorter than `step_timeout`")
        );
    }

    #[test]
    fn bluegreen_has_a_single_step() {
        assert!(
            policy(Strategy::Bluegreen, &[50, 100])
                .steps_problem()
                .is_some()
        );
    }

    #[test]
    fn percent_accepts_numbers_and_percent_strings() {
        let steps: Vec<Percent> = yaml_serde::from_str("[10, '50%', 100]").unwrap();
        assert_eq!(steps, vec![Percent(10), Percent(50), Percent(100)]);
        assert!(yaml_serde::from_str::<Vec<Percent>>("[0]").is_err());
        assert!(yaml_serde::from_str::<Vec<Percent>>("[150]").is_err());
        assert!(yaml_serde::from_str::<Vec<Percent>>("['ten']").is_err());
    }
}
