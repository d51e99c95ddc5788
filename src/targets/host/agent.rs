//! `convoy host …`: the host target for one service on one machine, without a project file —
//! what an EC2 instance's user-data runs. Hooks default to the artifact's own `bin/prepare`,
//! `bin/deployed` and `bin/health`, when present.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::config::Dur;
use crate::config::service::{Health, Hooks};
use crate::execute::{Clock, Target, TargetError};
use crate::plan::{Action, Phase, Step, StepId};
use crate::targets::host::error::HostError;
use crate::targets::host::{HostLayout, HostService, HostTarget};

/// Runs `bin/NAME` of the version if it exists and is executable.
fn conventional(name: &str) -> String {
    format!("if [ -x bin/{name} ]; then exec bin/{name}; fi")
}

pub struct Agent {
    pub target: HostTarget,
    pub service: String,
}

/// Commands given on the command line; `None` means the artifact's conventional script.
#[derive(Debug, Clone, Default)]
pub struct AgentHooks {
    pub prepare: Option<String>,
    pub deployed: Option<String>,
    pub health: Option<String>,
    pub health_timeout: Option<Dur>,
}

impl Agent {
    pub fn new(
        root: &std::path::Path,
        service: &str,
        hooks: AgentHooks,
        keep: usize,
        store: Option<Arc<dyn ArtifactStore>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        // One entry for every version the agent is given: each is its own artifact.
        let host_service = HostService {
            service: service.to_string(),
            artifact: String::new(),
            hooks: Hooks {
                prepare: Some(hooks.prepare.unwrap_or_else(|| conventional("prepare"))),
                deployed: Some(hooks.deployed.unwrap_or_else(|| conventional("deployed"))),
            },
            health: Some(Health {
                command: Some(hooks.health.unwrap_or_else(|| conventional("health"))),
                http: None,
                timeout: hooks.health_timeout.unwrap_or(Dur::secs(60)),
                check: None,
            }),
            values: serde_json::Value::Null,
            env: Default::default(),
        };
        let target = HostTarget {
            layout: HostLayout::new(root),
            environment: "host".to_string(),
            services: BTreeMap::from([(service.to_string(), host_service)]),
            store,
            clock,
            keep: keep.max(1), // the live version always stays
            release: None,
            trust: Default::default(),
        };
        Agent {
            target,
            service: service.to_string(),
        }
    }

    /// The environment of the hooks and the health command (on EC2: the service's
    /// configuration and secrets; the secrets masked in their output).
    pub fn with_env(mut self, env: crate::targets::host::CommandEnv) -> Self {
        for service in self.target.services.values_mut() {
            service.env = env.clone();
        }
        self
    }

    fn step(&self, phase: Phase, action: Action) -> Step {
        Step {
            id: StepId(0),
            phase,
            service: self.service.clone(),
            action,
            after: Vec::new(),
            after_all_below: None,
            timeout: Dur::secs(3600),
            not_before: None,
        }
    }

    /// Unpack + prepare + health, swing `live`, prune to `keep`. A version that fails its health
    /// check is removed again (the previous one keeps serving).
    pub async fn deploy(&self, version: &str) -> Result<(), TargetError> {
        let provision = self.step(
            Phase::Provision,
            Action::Provision {
                version: version.to_string(),
            },
        );
        let from = self.target.layout.live(&self.service);
        let switch = self.step(
            Phase::Switch,
            Action::Switch {
                from: from.clone(),
                to: version.to_string(),
                percent: 100,
                bake: Dur::secs(0),
            },
        );
        let result = async {
            self.target.apply(&provision).await?;
            self.target.apply(&switch).await
        }
        .await;
        if let Err(error) = result {
            if from.as_deref() != Some(version) {
                let _ = self
                    .target
                    .apply(&self.step(
                        Phase::Rollback,
                        Action::Remove {
                            version: version.to_string(),
                        },
                    ))
                    .await;
            }
            return Err(error);
        }
        self.gc().await
    }

    /// Back to `version`, or to the newest other version on disk.
    pub async fn rollback(&self, version: Option<&str>) -> Result<String, TargetError> {
        let live = self.target.layout.live(&self.service);
        let to = match version {
            Some(version) => version.to_string(),
            None => self.previous().ok_or_else(|| {
                TargetError::failed(&self.service, "rollback", HostError::NothingToRollBack)
            })?,
        };
        let switch = self.step(
            Phase::Switch,
            Action::Switch {
                from: live,
                to: to.clone(),
                percent: 100,
                bake: Dur::secs(0),
            },
        );
        self.target.apply(&switch).await?;
        Ok(to)
    }

    /// Runs release task `task` (`command`) of `version`, which must be on disk, in its
    /// directory with the hooks' environment: the host target's own task code.
    pub async fn task(
        &self,
        version: &str,
        task: &str,
        command: &str,
        budget: std::time::Duration,
    ) -> Result<(), crate::targets::host::task::TaskFailure> {
        self.target
            .run_task(&self.service, version, task, command, budget)
            .await
    }

    fn previous(&self) -> Option<String> {
        self.target.layout.by_last_live(&self.service).pop()
    }

    pub async fn gc(&self) -> Result<(), TargetError> {
        let live = self.target.layout.live(&self.service).unwrap_or_default();
        self.target
            .apply(&self.step(Phase::Cleanup, Action::Retire { version: live }))
            .await
    }
}
