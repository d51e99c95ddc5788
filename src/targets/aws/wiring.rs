//! Opening an AWS environment from the project: clients, lookups (the validation before the
//! first mutation), each service's values, and the state beside the artifacts in S3.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::artifacts::ArtifactStore;
use crate::config::target::AwsTarget as AwsConfig;
use crate::config::{ConfigErrors, Project, Target, Values};
use crate::execute::ReleaseStore;
use crate::plan::ServiceState;
use crate::render::{RenderInput, SecretMode, ServiceVersion, render_environment};
use crate::targets::aws::aws_target::{AwsTarget, UserData};
use crate::targets::aws::calls::CallCounter;
use crate::targets::aws::connection::{Clients, sdk_config, store_config};
use crate::targets::aws::error::AwsError;
use crate::targets::aws::state::{S3Lock, S3Releases, StateLocation};
use crate::targets::aws::{groups, lookups};
use crate::targets::{EnvironmentState, OpenRequest, OpenedTarget, TargetsError};

/// How often a real rollout asks whether instances are healthy yet.
const POLL: Duration = Duration::from_secs(5);

fn config<'a>(project: &'a Project, environment: &str) -> Result<&'a AwsConfig, crate::Error> {
    let env = project
        .environment(environment)
        .map_err(ConfigErrors::from)?;
    match &env.target {
        Target::Aws(aws) => Ok(aws),
        other => Err(TargetsError::NotYet {
            kind: other.kind(),
            environment: environment.to_string(),
        }
        .into()),
    }
}

async fn clients(config: &AwsConfig) -> Clients {
    let sdk = sdk_config(&config.region, config.profile.as_deref()).await;
    let store = store_config(&sdk, config.profile.as_deref()).await;
    Clients::with_store(
        &sdk,
        &store,
        &[aws_sdk_autoscaling::config::SharedInterceptor::new(
            CallCounter::default(),
        )],
    )
}

/// `s3://bucket/prefix` of the artifact store: where the state lives too.
fn state_location(
    project: &Project,
    clients: &Clients,
    environment: &str,
) -> Result<StateLocation, crate::Error> {
    let store = &project.artifact_store;
    let not_s3 = || {
        TargetsError::Aws(AwsError::StoreNotS3 {
            store: store.clone(),
        })
    };
    let rest = store.strip_prefix("s3://").ok_or_else(not_s3)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(not_s3().into());
    }
    Ok(StateLocation::new(
        clients.s3.clone(),
        bucket,
        prefix,
        environment,
    ))
}

fn state(location: StateLocation) -> EnvironmentState {
    EnvironmentState {
        releases: Box::new(S3Releases::new(location.clone())),
        lock: Arc::new(S3Lock::new(location)),
    }
}

/// Opens the environment's target: everything it names is looked up now, so a missing AMI,
/// subnet, security group or target group stops the release before anything changes.
pub async fn open(
    project: &Project,
    request: OpenRequest<'_>,
) -> Result<(OpenedTarget, EnvironmentState), crate::Error> {
    let environment = request.environment;
    let config = config(project, environment)?;
    let clients = clients(config).await;
    let location = state_location(project, &clients, environment)?;
    let resolved = lookups::resolve(&clients, environment, config, request.services)
        .await
        .map_err(TargetsError::Aws)?;
    let mut values = BTreeMap::new();
    let mut capacity = BTreeMap::new();
    let mut errors = Vec::new();
    for name in request.services {
        match Values::layer(project, environment, name, request.sets) {
            Ok(layered) => {
                let masked =
                    crate::render::secrets::shown(&layered, &project.root, SecretMode::Mask)
                        .map_err(|e| crate::render::RenderErrors(vec![e]))?;
                let replicas = masked.get("replicas").and_then(|r| r.as_u64()).unwrap_or(1);
                capacity.insert(name.clone(), i32::try_from(replicas).unwrap_or(i32::MAX));
                values.insert(name.clone(), masked);
            }
            Err(ConfigErrors(found)) => errors.extend(found),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors).into());
    }
    let policy = &project
        .environment(environment)
        .map_err(ConfigErrors::from)?
        .rollout;
    let releases: Arc<dyn ReleaseStore> = Arc::new(S3Releases::new(location.clone()));
    // A switch during a prewarm window serves at the window's size.
    let prewarm = {
        use crate::targets::prewarm::Prewarmer;
        super::AwsPrewarm::new(clients.clone(), &project.name, location.clone(), POLL)
            .load()
            .await?
            .schedule
    };
    let target = AwsTarget {
        clients,
        project: project.name.clone(),
        environment: environment.to_string(),
        resolved,
        instance_type: config.instance_type.clone(),
        instance_profile: config.instance_profile.clone(),
        capacity,
        max_capacity: policy
            .max_capacity
            .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
        first_step: (policy.strategy == crate::config::Strategy::Canary)
            .then(|| policy.steps.first().map(|p| p.0))
            .flatten(),
        user_data: Arc::new(RenderedUserData {
            project: project.clone(),
            environment: environment.to_string(),
            sets: request.sets.to_vec(),
            store: request.store.clone(),
        }),
        releases: Some(releases),
        clock: request.clock.clone(),
        poll: POLL,
        prewarm,
    };
    let opened = OpenedTarget {
        target: Arc::new(target),
        values,
    };
    Ok((opened, state(location)))
}

/// The live and warm versions from the groups' tags: no records, no values, no secrets needed.
pub async fn observe(
    project: &Project,
    environment: &str,
    services: &[String],
) -> Result<BTreeMap<String, ServiceState>, crate::Error> {
    let config = config(project, environment)?;
    let clients = clients(config).await;
    let found = groups::environment_groups(&clients, &project.name, environment)
        .await
        .map_err(|message| {
            TargetsError::Aws(AwsError::Call {
                operation: "DescribeAutoScalingGroups",
                message,
            })
        })?;
    Ok(groups::service_states(&found, services))
}

/// The lock and release records of the environment, in the artifact store's bucket.
pub async fn environment_state(
    project: &Project,
    environment: &str,
) -> Result<EnvironmentState, crate::Error> {
    let config = config(project, environment)?;
    let clients = clients(config).await;
    Ok(state(state_location(project, &clients, environment)?))
}

/// The prewarmer of an AWS environment: its schedule beside the lock, its groups' actions.
pub async fn prewarmer(
    project: &Project,
    environment: &str,
) -> Result<super::AwsPrewarm, crate::Error> {
    let config = config(project, environment)?;
    let clients = clients(config).await;
    let location = state_location(project, &clients, environment)?;
    Ok(super::AwsPrewarm::new(
        clients,
        &project.name,
        location,
        POLL,
    ))
}

/// User data rendered from the built-in (or the project's) `aws/user-data.sh` for the version's
/// artifact. Secrets stay masked: user data is readable by anyone who can describe instances.
struct RenderedUserData {
    project: Project,
    environment: String,
    sets: Vec<String>,
    store: Arc<dyn ArtifactStore>,
}

#[async_trait]
impl UserData for RenderedUserData {
    async fn user_data(
        &self,
        service: &str,
        version: &str,
        release: u64,
    ) -> Result<String, String> {
        let meta = self
            .store
            .meta(service, version)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{service} {version} is not in {}", self.store.describe()))?;
        let versions = BTreeMap::from([(
            service.to_string(),
            ServiceVersion {
                version: version.to_string(),
                commit: meta.commit.clone(),
                artifact_sha256: Some(meta.sha256.clone()),
            },
        )]);
        let services = [service.to_string()];
        let input = RenderInput {
            project: &self.project,
            environment: &self.environment,
            services: &services,
            versions: &versions,
            sets: &self.sets,
            release,
            secrets: SecretMode::Mask,
        };
        let rendered = render_environment(&input).map_err(|e| e.to_string())?;
        rendered
            .services
            .into_iter()
            .flat_map(|s| s.manifests)
            .find(|m| m.kind == "UserData")
            .map(|m| m.text)
            .ok_or_else(|| format!("{service} renders no aws/user-data.sh"))
    }
}
