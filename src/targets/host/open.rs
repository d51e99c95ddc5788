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
    environment: String,
    layout: HostLayout,
    keep: usize,
}

pub fn open(project: &Project, environment: &str, spec: &HostConfig) -> HostBackend {
    HostBackend {
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

    async fn sizes(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, TargetsError> {
        Ok(self.layout.sizes(services))
    }

    async fn digest_key(&self) -> Result<Vec<u8>, TargetsError> {
        let path = self.layout.root.join("digest.key");
        let io = |action: &'static str| {
            let location = path.display().to_string();
            move |source| {
                TargetsError::Releases(crate::execute::ReleaseError::Io {
                    action,
                    location,
                    source,
                })
            }
        };
        match std::fs::read(&path) {
            Ok(key) => return Ok(key),
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("read")(error));
            }
            Err(_) => {}
        }
        std::fs::create_dir_all(&self.layout.root).map_err(io("create"))?;
        let key = crate::targets::new_digest_key().map_err(io("generate"))?;
        let created = {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()))
        };
        match created {
            Ok(()) => Ok(key),
            // Another run made it first: theirs is the environment's key.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::read(&path).map_err(io("read"))
            }
            Err(error) => Err(io("write")(error)),
        }
    }

    fn releases(&self) -> Result<Arc<dyn ReleaseStore>, TargetsError> {
        Ok(Arc::new(ReleaseFiles::new(&self.layout.root)))
    }

    fn flags(&self) -> Result<Arc<dyn crate::execute::FlagStore>, TargetsError> {
        Ok(Arc::new(crate::targets::host::FlagFile::new(
            &self.layout.root,
        )))
    }

    fn lock(&self) -> Result<Arc<dyn EnvLock>, TargetsError> {
        Ok(Arc::new(LockFile::new(
            &self.layout.root,
            &self.environment,
        )))
    }

    async fn target(&self, request: TargetRequest<'_>) -> Result<Arc<dyn Target>, TargetsError> {
        let mut services = BTreeMap::new();
        for (id, spec) in request.revisions.iter() {
            let service = spec
                .project
                .service(&spec.service)
                .map_err(crate::config::ConfigErrors::from)?;
            let values = spec.values.clone();
            let env = CommandEnv {
                vars: vec![("CONVOY_VALUES".to_string(), values.revealed().to_string())],
                secrets: values.secrets,
                pass: Some(service.env.clone()),
            };
            let host = HostService {
                service: spec.service.clone(),
                artifact: spec.version.version.clone(),
                hooks: service.hooks.clone(),
                health: service.health.clone(),
                values: values.masked,
                env,
            };
            services.insert(id.clone(), host);
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
