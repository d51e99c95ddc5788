//! The Kubernetes target: Deployments applied server-side beside each other, gated on
//! `kubectl rollout status` rules by watch, traffic moved by the stable Service; the lock is a
//! Lease and release records are ConfigMaps, so any runner can continue a release.

mod apply;
mod canary;
mod cleanup;
mod connect;
pub mod diff;
mod digest_key;
mod error;
pub mod flags;
mod health;
mod in_flight;
mod job;
pub mod lease;
mod objects;
pub mod observe;
pub mod open;
mod pins;
mod preflight;
pub mod prewarm;
pub mod records;
mod retry;
mod rollout;
pub mod rollout_status;
mod target;
mod task;
mod throttle;
mod track;
pub mod traffic;

pub use apply::Applier;
pub use connect::Connection;
pub use error::{FieldConflict, KubeError};
pub use lease::LeaseLock;
pub use objects::{Renderer, VersionObjects};
pub use records::ReleaseConfigMaps;
pub use retry::Backoff;
pub use rollout_status::{
    DeploymentSeen, Graces, LastTermination, PodFailure, PodSeen, ReplicaSetSeen, RolloutFailure,
    RolloutStatus, new_replica_set, rollout_status, rollout_status_of,
};
pub use target::KubeTarget;
pub use task::BY_HAND;
