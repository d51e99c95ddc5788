//! The project file (`convoy.yaml`), its validation, and values layered with provenance.
//! Reads files; nothing else.

pub mod aws_launch;
pub mod byte_size;
pub mod duration;
pub mod environment;
mod error;
pub mod limits;
pub mod marker;
pub mod names;
mod project;
pub mod rollout_policy;
pub mod service;
pub mod service_graph;
pub mod target;
pub mod task;
pub mod values;
pub mod yaml;

pub use byte_size::ByteSize;
pub use duration::Dur;
pub use environment::Environment;
pub use error::{ConfigError, ConfigErrors};
pub use project::{ArtifactSettings, DEFAULT_STORE, KeySource, PROJECT_FILE, Project};
pub use rollout_policy::{Percent, Provision, RolloutPolicy, Strategy};
pub use service::Service;
pub use target::{AwsTarget, HostTarget, KubernetesTarget, Target};
pub use task::{Task, TaskWhen};
pub use values::Values;
