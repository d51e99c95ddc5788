//! Opening an AWS environment from the project: clients, the state beside the artifacts in S3,
//! and for a rollout the lookups (the validation before the first mutation) and each service's
//! capacity from its values.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::artifacts::ArtifactStore;
use crate::config::target::AwsTarget as AwsConfig;
use crate::config::{ConfigErrors, Project};
use crate::execute::{EnvLock, ReleaseStore, Target};
use crate::plan::ServiceState;
use crate::render::{RenderInput, SecretMode, ServiceVersion, render_environment};
use crate::targets::aws::aws_target::{AwsTarget, UserData};
use crate::targets::aws::calls::CallCounter;
use crate::targets::aws::connection::{Clients, sdk_config, store_config};
use crate::targets::aws::error::AwsError;
use crate::targets::aws::flag_parameter::SsmFlags;
use crate::targets::aws::names::flags_parameter;
use crate::targets::aws::state::{S3Lock, S3Releases, StateLocation};
use crate::targets::aws::{AwsPrewarm, groups, lookups, ssm};
use crate::targets::backend::{Backend, Revisions, TargetRequest, spec_of};
use crate::targets::error::TargetsError;
use crate::targets::prewarm::Prewarmer;

/// How often a real rollout asks whether instances are healthy yet.
const POLL: Duration = Duration::from_secs(5);

pub struct AwsBackend {
    project: Project,
    environment: String,
    config: AwsConfig,
    clients: Clients,
}

/// Opens an AWS environment: its clients; nothing is sent yet.
pub async fn open(
    project: &Project,
    environment: &str,
    config: &AwsConfig,
) -> Result<AwsBackend, TargetsError> {
    Ok(AwsBackend {
        project: project.clone(),
        environment: environment.to_string(),
        config: config.clone(),
        clients: clients(config).await,
    })
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
) -> Result<StateLocation, AwsError> {
    let store = &project.artifact_store;
    let not_s3 = || AwsError::StoreNotS3 {
        store: store.clone(),
    };
    let rest = store.strip_prefix("s3://").ok_or_else(not_s3)?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(not_s3());
    }
    Ok(StateLocation::new(
        clients.s3.clone(),
        bucket,
        prefix,
        environment,
    ))
}

impl AwsBackend {
    /// Each service's first-group size: `values.replicas` (validated, 1 when unset).
    /// A service with several revisions in play takes the largest.
    fn capacity(request: &TargetRequest<'_>) -> BTreeMap<String, i32> {
        let mut capacity: BTreeMap<String, i32> = BTreeMap::new();
        for spec in request.revisions.values() {
            let size = capacity.entry(spec.service.clone()).or_default();
            *size = (*size).max(spec.values.replicas);
        }
        capacity
    }
}

#[async_trait]
impl Backend for AwsBackend {
    fn kind(&self) -> &'static str {
        "aws"
    }

    fn environment(&self) -> &str {
        &self.environment
    }

    /// The live and warm versions from the groups' tags: no records, no values, no secrets.
    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetsError> {
        let found =
            groups::environment_groups(&self.clients, &self.project.name, &self.environment)
                .await
                .map_err(|message| AwsError::Call {
                    operation: "DescribeAutoScalingGroups",
                    message,
                })?;
        Ok(groups::service_states(&found, services))
    }

    /// Secrets reach instances through SSM Parameter Store (never user data, which anyone who
    /// can describe instances reads), so a rollout reads them.
    fn needs_secrets(&self) -> bool {
        true
    }

    /// Beside the lock: `<prefix>/.convoy/<env>/digest.key`, put only if absent.
    async fn digest_key(&self) -> Result<Vec<u8>, TargetsError> {
        let location = self.location()?;
        let key_of = format!("{}/digest.key", location.root);
        let call = |operation: &'static str| {
            move |e: std::io::Error| AwsError::Call {
                operation,
                message: e.to_string(),
            }
        };
        if let Some((key, _)) = location.get(&key_of).await.map_err(call("GetObject"))? {
            return Ok(key);
        }
        let key = crate::targets::new_digest_key().map_err(call("GenerateKey"))?;
        let put = location.put(
            &key_of,
            key.clone(),
            crate::artifacts::bucket::Condition::Absent,
        );
        if put.await.map_err(call("PutObject"))?.is_some() {
            return Ok(key);
        }
        // Another run made it first: theirs is the environment's key.
        let theirs = location.get(&key_of).await.map_err(call("GetObject"))?;
        Ok(theirs.map(|(key, _)| key).unwrap_or(key))
    }

    fn releases(&self) -> Result<Arc<dyn ReleaseStore>, TargetsError> {
        Ok(Arc::new(S3Releases::new(self.location()?)))
    }

    fn lock(&self) -> Result<Arc<dyn EnvLock>, TargetsError> {
        Ok(Arc::new(S3Lock::new(self.location()?)))
    }

    /// Everything the environment names is looked up now, so a missing AMI, subnet, security
    /// group or target group stops the release before anything changes.
    async fn target(&self, request: TargetRequest<'_>) -> Result<Arc<dyn Target>, TargetsError> {
        // The state's bucket first: without it nothing can be recorded.
        let releases = self.releases()?;
        let resolved = lookups::resolve(
            &self.clients,
            &self.environment,
            &self.config,
            request.services,
        )
        .await?;
        let policy = &self
            .project
            .environment(&self.environment)
            .map_err(ConfigErrors::from)?
            .rollout;
        // A switch during a prewarm window serves at the window's size.
        let prewarm = self.prewarm()?.load().await?.schedule;
        let target = AwsTarget {
            clients: self.clients.clone(),
            reporter: request.reporter.clone(),
            project: self.project.name.clone(),
            environment: self.environment.clone(),
            resolved,
            config: self.config.clone(),
            secrets: request
                .revisions
                .iter()
                .map(|(id, spec)| (id.clone(), ssm::secret_variables(&spec.values)))
                .collect(),
            launch_timeout: policy.provision_timeout.0,
            capacity: Self::capacity(&request),
            max_capacity: policy
                .max_capacity
                .map(|m| i32::try_from(m).unwrap_or(i32::MAX)),
            first_step: (policy.strategy == crate::config::Strategy::Canary)
                .then(|| policy.steps.first().map(|p| p.0))
                .flatten(),
            user_data: Arc::new(RenderedUserData {
                project: self.project.clone(),
                environment: self.environment.clone(),
                revisions: request.revisions.clone(),
                store: request.store.clone(),
            }),
            releases: Some(releases),
            clock: request.clock.clone(),
            poll: POLL,
            prewarm,
        };
        Ok(Arc::new(target))
    }

    async fn prewarmer(&self) -> Result<Arc<dyn Prewarmer>, TargetsError> {
        Ok(Arc::new(self.prewarm()?))
    }

    /// The SSM parameter `/convoy/<project>/<env>/flags`, its history and its write lock beside
    /// the release records in the bucket.
    fn flags(&self) -> Result<Arc<dyn crate::execute::FlagStore>, TargetsError> {
        Ok(Arc::new(SsmFlags::new(
            self.clients.ssm.clone(),
            flags_parameter(&self.project.name, &self.environment),
            self.location()?,
        )))
    }
}

impl AwsBackend {
    /// The lock, the records and the prewarm schedule live in the artifact store's bucket.
    fn location(&self) -> Result<StateLocation, AwsError> {
        state_location(&self.project, &self.clients, &self.environment)
    }

    /// The schedule beside the lock, and the groups' scheduled actions.
    fn prewarm(&self) -> Result<AwsPrewarm, AwsError> {
        Ok(AwsPrewarm::new(
            self.clients.clone(),
            &self.project.name,
            self.location()?,
            POLL,
        ))
    }
}

/// User data rendered from the built-in (or the project's) `aws/user-data.sh` for a revision:
/// its artifact (and that artifact's sha256, which the agent checks), its group and the SSM path
/// of its secrets. Secrets stay masked: user data is readable by anyone who can describe
/// instances.
struct RenderedUserData {
    project: Project,
    environment: String,
    revisions: Revisions,
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
        // The revision's own project and flags; an id nothing was given for is a version.
        let spec = spec_of(&self.revisions, service, version).filter(|s| s.version.id() == version);
        let (project, sets, mut identity) = match spec {
            Some(spec) => (
                spec.project.as_ref(),
                spec.sets.clone(),
                spec.version.clone(),
            ),
            None => {
                // The artifact is the id less its configuration digest.
                let identity = ServiceVersion {
                    version: crate::plan::revision::artifact_of(version).to_string(),
                    revision: Some(version.to_string()),
                    ..ServiceVersion::default()
                };
                (&self.project, Vec::new(), identity)
            }
        };
        let artifact = identity.version.clone();
        let meta = self
            .store
            .meta(service, &artifact)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{service} {artifact} is not in {}", self.store.describe()))?;
        identity.commit = meta.commit.clone();
        identity.artifact_sha256 = Some(meta.sha256.clone());
        let versions = BTreeMap::from([(service.to_string(), identity)]);
        let services = [service.to_string()];
        let input = RenderInput {
            project,
            environment: &self.environment,
            services: &services,
            versions: &versions,
            sets: &sets,
            release,
            secrets: SecretMode::Mask,
            namespace: None,
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
