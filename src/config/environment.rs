//! A named place to deploy: its target, rollout policy and inline values.

use serde::{Deserialize, Serialize};

use crate::config::rollout_policy::RolloutPolicy;
use crate::config::target::{Target, TargetSpec};

/// As written in `convoy.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    pub target: Option<TargetSpec>,
    #[serde(default)]
    pub rollout: RolloutPolicy,
    /// Values layered right after `values/common.yaml` (before `values/<env>.yaml`).
    #[serde(default)]
    pub values: yaml_serde::Mapping,
    /// Ask for confirmation on a terminal before changing it (unless `--yes`).
    #[serde(default)]
    pub protected: bool,
}

/// A validated environment.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    pub target: Target,
    pub rollout: RolloutPolicy,
    #[serde(skip)]
    pub values: yaml_serde::Mapping,
    pub protected: bool,
}
