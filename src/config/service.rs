//! A deployable unit: a sub-tree of the repository, its build recipe, templates and dependencies.

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::duration::Dur;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Filled in from the map key by the loader.
    #[serde(skip_deserializing)]
    pub name: String,
    /// The service's sub-tree, relative to the repository root.
    pub path: String,
    /// Shell commands run in a clean export of `path`.
    #[serde(default)]
    pub build: Vec<String>,
    /// Paths (relative to `path`) packaged into the artifact.
    #[serde(default, deserialize_with = "one_or_many")]
    pub output: Vec<String>,
    /// Further repository paths whose changes change this service's version.
    #[serde(default)]
    pub extra_paths: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub port: Option<u16>,
    /// Container image repository for Kubernetes; the version is its tag.
    pub image: Option<String>,
    /// Template names to render for this service; the built-in set when absent.
    pub templates: Option<Vec<String>>,
    pub health: Option<Health>,
    #[serde(default)]
    pub hooks: Hooks,
    /// Release tasks by name: one-off commands of the new revision tied to a rollout phase.
    #[serde(default)]
    pub tasks: std::collections::BTreeMap<String, crate::config::task::Task>,
    /// Reachable from outside (gets a public load balancer or ingress).
    #[serde(default)]
    pub public: bool,
    /// Background work that yields capacity during a prewarm window.
    #[serde(default)]
    pub background: bool,
    /// Variables of the deployer's environment that the service's build recipe, hooks and
    /// health commands see, besides `PATH`, `HOME` and Convoy's `CONVOY_*` (they see no others).
    #[serde(default)]
    pub env: Vec<String>,
}

/// How to tell that a version is healthy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Command run in the version's directory (host) or as an exec probe; exit 0 is healthy.
    pub command: Option<String>,
    /// HTTP path for readiness probes, e.g. `/healthz`.
    pub http: Option<String>,
    #[serde(default = "default_health_timeout")]
    pub timeout: Dur,
    /// Command run between traffic steps; a failure aborts the rollout.
    pub check: Option<String>,
}

fn default_health_timeout() -> Dur {
    Dur::secs(30)
}

/// Commands run on the host around a switch, yodeploy-style.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// After unpacking, before any traffic.
    pub prepare: Option<String>,
    /// After the `live` switch.
    pub deployed: Option<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::One(one) => vec![one],
        Raw::Many(many) => many,
    })
}
