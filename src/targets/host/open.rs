//! Opening a host environment: its directory layout, release files and lock file. Nothing here
//! connects anywhere; values are resolved by the caller and handed to the target.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{HostTarget as HostConfig, Project};
use crate::execute::{EnvLock, ReleaseStore, Target};
use crate::plan::ServiceState;
use crate::targets::backend::{Backend, TargetRequest};
use crate::targets::error::TargetsError;
use crate::targets::host::{
    CommandEnv, HostLayout, HostService, HostTarget, LockFile, ReleaseFiles, resolve_root,
};

/// A host environment: `<root>/<service>/versions/<v>`, `live`, records and the lock under root.
pub struct HostBackend {
    project: Project,
    environment: String,
    layout: HostLayout,
    keep: usize,
}

pub fn open(project: &Project, environment: &str, spec: &HostConfig) -> HostBackend {
    HostBackend {
        project: project.clone(),
        environment: environment.to_string(),
        layout: HostLayout::new(resolve_root(&project.root, &spec.root)),
        // Two at least: the live version and the one a rollback returns to.
        keep: spec.keep.max(2) as usize,
    }
}

#[async_trait]
impl Backend for HostBackend {
    fn kind(&self) -> &'static str {
        "host"
    }

    fn environment(&self) -> &str {
        &self.environment
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetsError> {
        Ok(self.layout.observe(services))
    }

    fn releases(&self) -> Result<Arc<dyn ReleaseStore>, TargetsError> {
        Ok(Arc::new(ReleaseFiles::new(&self.layout.root)))
    }

    fn lock(&self) -> Result<Arc<dyn EnvLock>, TargetsError> {
        Ok(Arc::new(LockFile::new(
            &self.layout.root,
            &self.environment,
        )))
    }

    async fn target(&self, request: TargetRequest<'_>) -> Result<Arc<dyn Target>, TargetsError> {
        let mut services = BTreeMap::new();
        for name in request.services {
            let service = self
                .project
                .service(name)
                .map_err(crate::config::ConfigErrors::from)?;
            let values = request.values.get(name).cloned().unwrap_or_default();
            let env = CommandEnv {
                vars: vec![("CONVOY_VALUES".to_string(), values.revealed.to_string())],
                secrets: values.secrets,
                pass: Some(service.env.clone()),
            };
            let host = HostService {
                hooks: service.hooks.clone(),
                health: service.health.clone(),
                values: values.masked,
                env,
            };
            services.insert(name.clone(), host);
        }
        Ok(Arc::new(HostTarget {
            layout: self.layout.clone(),
            environment: self.environment.clone(),
            services,
            store: Some(request.store),
            clock: request.clock,
            keep: self.keep,
            release: None,
            trust: request.trust.clone(),
        }))
    }
}
