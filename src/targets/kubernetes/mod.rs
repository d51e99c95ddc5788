//! The Kubernetes target: Deployments applied server-side, gated on `kubectl rollout status` rules.

pub mod rollout_status;

pub use rollout_status::{
    Graces, LastTermination, PodFailure, RolloutFailure, RolloutStatus, new_replica_set,
    rollout_status,
};
