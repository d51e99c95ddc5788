//! Everything one kind of target provides for an environment, behind one trait: observing, the
//! release records and the lock, the rollout target with values resolved, prewarming and diffs.
//! [`super::open`] is the only place that chooses the kind.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::artifacts::ArtifactStore;
use crate::config::Project;
use crate::execute::{Clock, EnvLock, ReleaseStore, Reporter, Target};
use crate::plan::ServiceState;
use crate::render::{ResolvedValues, ServiceVersion};
use crate::targets::error::{Operation, TargetsError};
use crate::targets::kubernetes::diff::ObjectDiff;
use crate::targets::prewarm::Prewarmer;

/// One revision a release may run: its identity, the project as it was when the revision was
/// made (today's tree for a new one, the recorded commit for an old one), and its values.
#[derive(Clone)]
pub struct RevisionSpec {
    pub service: String,
    /// The artifact and the revision id (`version.id()`) objects are named by.
    pub version: ServiceVersion,
    pub project: Arc<Project>,
    pub sets: Vec<String>,
    pub values: ResolvedValues,
}

/// Every revision a release may touch, by revision id.
pub type Revisions = Arc<BTreeMap<String, RevisionSpec>>;

/// The spec of `revision` of `service`, else any spec of the service (an old revision nothing
/// was recorded of: its hooks and checks are the service's).
pub fn spec_of<'a>(
    revisions: &'a BTreeMap<String, RevisionSpec>,
    service: &str,
    revision: &str,
) -> Option<&'a RevisionSpec> {
    revisions
        .get(revision)
        .filter(|s| s.service == service)
        .or_else(|| revisions.values().find(|s| s.service == service))
}

/// What opening the rollout target needs: the services of the release, the revisions it may
/// run (every value and secret resolved), and where artifacts come from.
pub struct TargetRequest<'a> {
    pub services: &'a [String],
    pub revisions: Revisions,
    pub store: Arc<dyn ArtifactStore>,
    pub clock: Arc<dyn Clock>,
    /// Where a target reports what does not fail a step (warnings).
    pub reporter: Arc<dyn Reporter>,
    /// What a target that fetches artifacts checks before unpacking one (signature, pinned
    /// sha256, limits); its pins are shared with the release records.
    pub trust: crate::artifacts::ArtifactTrust,
}

/// What `convoy diff` compares: the revision a deploy would run of each service.
pub struct DiffRequest {
    pub revisions: Revisions,
}

/// An environment's target, connected but with no value resolved: enough to observe it, read
/// its records and lock without any secret.
#[async_trait]
pub trait Backend: Send + Sync {
    /// `host`, `kubernetes` or `aws`.
    fn kind(&self) -> &'static str;

    /// The environment's name.
    fn environment(&self) -> &str;

    /// The live and warm versions of `services`.
    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetsError>;

    /// How big each running version of `services` is, as the target counts (`4 pods`, `12 MB`
    /// on disk), by service and version; empty where the target does not say.
    async fn sizes(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, TargetsError> {
        let _ = services;
        Ok(BTreeMap::new())
    }

    /// Where the environment's release records are kept.
    fn releases(&self) -> Result<Arc<dyn ReleaseStore>, TargetsError>;

    /// The environment's lock.
    fn lock(&self) -> Result<Arc<dyn EnvLock>, TargetsError>;

    /// The environment's digest key: random bytes kept in the target, made on first use, that
    /// key the hashes of secrets in revision digests (so a digest reveals nothing of them).
    async fn digest_key(&self) -> Result<Vec<u8>, TargetsError>;

    /// Whether the target hands secrets to what it runs, so a rollout must read them; when not,
    /// they stay masked and need not be readable.
    fn needs_secrets(&self) -> bool {
        true
    }

    /// The target that runs a release's steps, for `request`'s services.
    async fn target(&self, request: TargetRequest<'_>) -> Result<Arc<dyn Target>, TargetsError>;

    /// The environment's live flags (`convoy flags`, maintenance around tasks).
    fn flags(&self) -> Result<Arc<dyn crate::execute::FlagStore>, TargetsError> {
        Err(self.unsupported(Operation::Flags))
    }

    /// The environment's side of pre-warming.
    async fn prewarmer(&self) -> Result<Arc<dyn Prewarmer>, TargetsError> {
        Err(self.unsupported(Operation::Prewarm))
    }

    /// Rendered objects against the live ones.
    async fn diff(&self, request: DiffRequest) -> Result<Vec<ObjectDiff>, TargetsError> {
        let _ = request;
        Err(self.unsupported(Operation::Diff))
    }

    /// The error for an operation this kind does not offer.
    fn unsupported(&self, operation: Operation) -> TargetsError {
        TargetsError::Unsupported {
            kind: self.kind(),
            environment: self.environment().to_string(),
            operation,
        }
    }
}
