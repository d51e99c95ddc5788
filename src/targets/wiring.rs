//! Opening an environment's target from the project: the one place that knows which target kind
//! needs what. Values (secrets included) are resolved here, before anything is changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::artifacts::ArtifactStore;
use crate::config::{ConfigErrors, Project, Target, Values};
use crate::execute::Clock;
use crate::render::SecretMode;
use crate::render::secrets::shown;
use crate::targets::host::{CommandEnv, HostService, HostTarget};
use crate::targets::{EnvironmentState, TargetsError};

/// The host target of `environment` for these services, with every value resolved.
pub fn host_target(
    project: &Project,
    environment: &str,
    services: &[String],
    sets: &[String],
    store: Arc<dyn ArtifactStore>,
    clock: Arc<dyn Clock>,
) -> Result<(HostTarget, EnvironmentState), crate::Error> {
    let env = project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    let Target::Host(host) = &env.target else {
        return Err(TargetsError::NotYet {
            kind: env.target.kind(),
            environment: environment.to_string(),
        }
        .into());
    };
    let mut resolved = BTreeMap::new();
    let mut errors = Vec::new();
    for name in services {
        let service = project.service(name).map_err(ConfigErrors::from)?;
        let values = match Values::layer(project, environment, name, sets) {
            Ok(values) => values,
            Err(ConfigErrors(found)) => {
                errors.extend(found);
                continue;
            }
        };
        let masked = shown(&values, &project.root, SecretMode::Mask)
            .map_err(|e| crate::render::RenderErrors(vec![e]))?;
        let revealed = shown(&values, &project.root, SecretMode::Reveal)
            .map_err(|e| crate::render::RenderErrors(vec![e]))?;
        let mut secrets = Vec::new();
        collect_secrets(&masked, &revealed, &mut secrets);
        let env = CommandEnv {
            vars: vec![("CONVOY_VALUES".to_string(), revealed.to_string())],
            secrets,
        };
        resolved.insert(
            name.clone(),
            HostService {
                hooks: service.hooks.clone(),
                health: service.health.clone(),
                values: masked,
                env,
            },
        );
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors).into());
    }
    let target = HostTarget {
        layout: super::host_layout(project, environment)?,
        environment: environment.to_string(),
        services: resolved,
        store: Some(store),
        clock,
        keep: host.keep.max(2) as usize,
        release: None,
    };
    let root = target.layout.root.clone();
    let state = EnvironmentState {
        releases: Box::new(crate::targets::host::ReleaseFiles::new(&root)),
        lock: Arc::new(crate::targets::host::LockFile::new(&root, environment)),
    };
    Ok((target, state))
}

/// The clear text of every secret: where the masked tree shows the mask, the revealed one holds it.
fn collect_secrets(
    masked: &serde_json::Value,
    revealed: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (masked, revealed) {
        (Value::String(mask), Value::String(clear))
            if mask == crate::config::marker::MASK && clear != mask =>
        {
            out.push(clear.clone());
        }
        (Value::Object(m), Value::Object(r)) => {
            for (key, value) in m {
                if let Some(other) = r.get(key) {
                    collect_secrets(value, other, out);
                }
            }
        }
        (Value::Array(m), Value::Array(r)) => {
            for (value, other) in m.iter().zip(r) {
                collect_secrets(value, other, out);
            }
        }
        _ => {}
    }
}
