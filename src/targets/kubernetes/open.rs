//! Opening a Kubernetes environment: connection, renderer, lock and release records. Values are
//! resolved here (secrets included), so a missing one stops the command before anything changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{ConfigErrors, KubernetesTarget, Project, Values};
use crate::render::SecretMode;
use crate::render::secrets::shown;
use crate::targets::{EnvironmentState, OpenRequest, OpenedTarget, Overrides};

use super::{Applier, Connection, KubeTarget, LeaseLock, ReleaseConfigMaps, Renderer};

/// The lock and release records of a Kubernetes environment.
pub fn state(project: &Project, environment: &str, connection: &Connection) -> EnvironmentState {
    let history = project
        .environment(environment)
        .map(|e| e.rollout.history as usize)
        .unwrap_or(20);
    EnvironmentState {
        releases: Box::new(ReleaseConfigMaps::new(
            connection.client.clone(),
            &connection.namespace,
            environment,
            history,
        )),
        lock: Arc::new(LeaseLock::new(
            connection.client.clone(),
            &connection.namespace,
            environment,
        )),
    }
}

pub async fn open(
    project: &Project,
    spec: &KubernetesTarget,
    request: OpenRequest<'_>,
) -> Result<(OpenedTarget, EnvironmentState), crate::Error> {
    let environment = request.environment;
    let env = project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    let values = masked_values(project, environment, request.services, request.sets)?;
    let connection = Connection::open(spec, request.overrides).await?;
    let prewarm = {
        use crate::targets::prewarm::Prewarmer;
        super::prewarm::KubePrewarm::new(connection.clone(), environment)
            .load()
            .await?
            .schedule
    };
    let target = KubeTarget::new(
        Applier {
            client: connection.client.clone(),
            namespace: connection.namespace.clone(),
        },
        Renderer::new(project, environment, request.sets, &connection.namespace),
        Some(request.store),
        request.clock,
        env.rollout.strategy,
        env.rollout.steps.iter().map(|p| p.0).collect(),
    )
    .with_checks(
        &project.root,
        request
            .services
            .iter()
            .filter_map(|name| {
                let health = project.services.get(name)?.health.as_ref()?;
                Some((name.clone(), (health.check.clone()?, health.timeout.0)))
            })
            .collect(),
    )
    .with_prewarm(prewarm);
    let state = state(project, environment, &connection);
    Ok((
        OpenedTarget {
            target: Arc::new(target),
            values,
        },
        state,
    ))
}

/// Connects for reading only (status, history, lock).
pub async fn connect(
    spec: &KubernetesTarget,
    overrides: &Overrides,
) -> Result<Connection, crate::Error> {
    Ok(Connection::open(spec, overrides).await?)
}

/// Each service's values with secrets masked; every secret must resolve.
fn masked_values(
    project: &Project,
    environment: &str,
    services: &[String],
    sets: &[String],
) -> Result<BTreeMap<String, serde_json::Value>, crate::Error> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for name in services {
        match Values::layer(project, environment, name, sets) {
            Ok(values) => {
                let masked = shown(&values, &project.root, SecretMode::Mask)
                    .map_err(|e| crate::render::RenderErrors(vec![e]))?;
                shown(&values, &project.root, SecretMode::Reveal)
                    .map_err(|e| crate::render::RenderErrors(vec![e]))?;
                out.insert(name.clone(), masked);
            }
            Err(ConfigErrors(found)) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors).into())
    }
}

/// The differences between the rendered `versions` and the cluster (`convoy diff`).
pub async fn diff(
    project: &Project,
    environment: &str,
    versions: &BTreeMap<String, String>,
    sets: &[String],
    overrides: &Overrides,
) -> Result<Vec<super::diff::ObjectDiff>, crate::Error> {
    let env = project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    let crate::config::Target::Kubernetes(spec) = &env.target else {
        return Err(crate::targets::TargetsError::NotYet {
            kind: env.target.kind(),
            environment: environment.to_string(),
        }
        .into());
    };
    let connection = Connection::open(spec, overrides).await?;
    let renderer = Renderer::new(project, environment, sets, &connection.namespace);
    // Only for the commit annotation: a store that cannot be reached leaves it `unknown`.
    let store = crate::artifacts::open(&project.artifact_store, &project.root)
        .await
        .ok();
    let objects = renderer
        .render(versions, store.as_deref(), 0, SecretMode::Reveal)
        .await?;
    let applier = Applier {
        client: connection.client,
        namespace: connection.namespace,
    };
    Ok(super::diff::diff(&applier, &objects).await?)
}
