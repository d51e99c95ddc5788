//! Opening a Kubernetes environment: the connection (kubeconfig context and namespace, or their
//! overrides), the Lease lock, the ConfigMap release records and flags, the rollout target, the prewarmer
//! and diffs. Nothing is sent to the cluster until the first request.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{KubernetesTarget, Project};
use crate::execute::{EnvLock, ReleaseStore, Target};
use crate::plan::ServiceState;
use crate::render::SecretMode;
use crate::targets::Overrides;
use crate::targets::backend::{Backend, DiffRequest, Revisions, TargetRequest};
use crate::targets::error::TargetsError;
use crate::targets::prewarm::Prewarmer;

use super::diff::ObjectDiff;
use super::prewarm::KubePrewarm;
use super::{Applier, Connection, KubeTarget, LeaseLock, ReleaseConfigMaps, Renderer};

pub struct KubeBackend {
    project: Arc<Project>,
    environment: String,
    connection: Connection,
}

pub async fn open(
    project: &Arc<Project>,
    environment: &str,
    spec: &KubernetesTarget,
    overrides: &Overrides,
) -> Result<KubeBackend, TargetsError> {
    Ok(KubeBackend {
        project: project.clone(),
        environment: environment.to_string(),
        connection: Connection::open(spec, overrides).await?,
    })
}

impl KubeBackend {
    fn applier(&self) -> Applier {
        Applier {
            client: self.connection.client.clone(),
            namespace: self.connection.namespace.clone(),
        }
    }

    fn renderer(&self, revisions: Revisions) -> Renderer {
        let namespace = &self.connection.namespace;
        Renderer::new(self.project.clone(), &self.environment, &[], namespace)
            .with_revisions(revisions)
    }

    /// Each service's `health.check` command and its budget.
    fn checks(&self, services: &[String]) -> BTreeMap<String, (String, std::time::Duration)> {
        services
            .iter()
            .filter_map(|name| {
                let health = self.project.services.get(name)?.health.as_ref()?;
                Some((name.clone(), (health.check.clone()?, health.timeout.0)))
            })
            .collect()
    }
}

#[async_trait]
impl Backend for KubeBackend {
    fn kind(&self) -> &'static str {
        "kubernetes"
    }

    fn environment(&self) -> &str {
        &self.environment
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetsError> {
        let connection = &self.connection;
        Ok(super::observe::observe(&connection.client, &connection.namespace, services).await?)
    }

    async fn sizes(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, TargetsError> {
        let connection = &self.connection;
        let sizes = super::observe::sizes(&connection.client, &connection.namespace, services);
        Ok(sizes.await?)
    }

    async fn digest_key(&self) -> Result<Vec<u8>, TargetsError> {
        let connection = &self.connection;
        let key = super::digest_key::digest_key(
            &connection.client,
            &connection.namespace,
            &self.environment,
        );
        Ok(key.await?)
    }

    fn releases(&self) -> Result<Arc<dyn ReleaseStore>, TargetsError> {
        let history = self
            .project
            .environment(&self.environment)
            .map_or(20, |e| e.rollout.history as usize);
        Ok(Arc::new(ReleaseConfigMaps::new(
            self.connection.client.clone(),
            &self.connection.namespace,
            &self.environment,
            history,
        )))
    }

    fn lock(&self) -> Result<Arc<dyn EnvLock>, TargetsError> {
        Ok(Arc::new(LeaseLock::new(
            self.connection.client.clone(),
            &self.connection.namespace,
            &self.environment,
        )))
    }

    async fn target(&self, request: TargetRequest<'_>) -> Result<Arc<dyn Target>, TargetsError> {
        let policy = &self
            .project
            .environment(&self.environment)
            .map_err(crate::config::ConfigErrors::from)?
            .rollout;
        // A version deployed inside a prewarm window starts at the window's capacity.
        let prewarm = KubePrewarm::new(self.connection.clone(), &self.environment)
            .load()
            .await?
            .schedule;
        let target = KubeTarget::new(
            self.applier(),
            self.renderer(request.revisions),
            Some(request.store),
            request.clock,
            policy.strategy,
            policy.steps.iter().map(|p| p.0).collect(),
        )
        .with_checks(&self.project.root, self.checks(request.services))
        .with_prewarm(prewarm);
        Ok(Arc::new(target))
    }

    fn flags(&self) -> Result<Arc<dyn crate::execute::FlagStore>, TargetsError> {
        Ok(Arc::new(super::flags::FlagConfigMaps::new(
            self.connection.client.clone(),
            &self.connection.namespace,
            &self.project.name,
        )))
    }

    async fn prewarmer(&self) -> Result<Arc<dyn Prewarmer>, TargetsError> {
        Ok(Arc::new(KubePrewarm::new(
            self.connection.clone(),
            &self.environment,
        )))
    }

    async fn diff(&self, request: DiffRequest) -> Result<Vec<ObjectDiff>, TargetsError> {
        // Only for the commit annotation: a store that cannot be reached leaves it `unknown`.
        let store = crate::artifacts::open(&self.project.artifact_store, &self.project.root)
            .await
            .ok();
        let versions = request
            .revisions
            .values()
            .map(|spec| (spec.service.clone(), spec.version.id().to_string()))
            .collect();
        let objects = self
            .renderer(request.revisions)
            .render(&versions, store.as_deref(), 0, SecretMode::Reveal)
            .await?;
        Ok(super::diff::diff(&self.applier(), &objects).await?)
    }
}
