//! Where an environment's versions run: exactly one of `host`, `kubernetes`, `aws`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::config::aws_launch::{BlockDevice, Metadata};

/// As written in `convoy.yaml`: three optional keys, of which validation demands exactly one.
/// (A plain enum would make serde's message for "two targets" or "none" unreadable.)
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    pub host: Option<HostTarget>,
    pub kubernetes: Option<KubernetesTarget>,
    pub aws: Option<AwsTarget>,
}

impl TargetSpec {
    /// The kinds present, in a stable order.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.host.is_some() {
            kinds.push("host");
        }
        if self.kubernetes.is_some() {
            kinds.push("kubernetes");
        }
        if self.aws.is_some() {
            kinds.push("aws");
        }
        kinds
    }

    /// The single target, once validation has ensured there is exactly one.
    pub fn resolve(&self) -> Option<Target> {
        match (&self.host, &self.kubernetes, &self.aws) {
            (Some(host), None, None) => Some(Target::Host(host.clone())),
            (None, Some(kubernetes), None) => Some(Target::Kubernetes(kubernetes.clone())),
            (None, None, Some(aws)) => Some(Target::Aws(aws.clone())),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
#[allow(
    clippy::large_enum_variant,
    reason = "one per environment, read once; a Box would ripple through every match for nothing"
)]
pub enum Target {
    Host(HostTarget),
    Kubernetes(KubernetesTarget),
    Aws(AwsTarget),
}

/// What the rest of Convoy asks of a target's configuration. Choosing behaviour by kind happens
/// in `targets::open` only; these are the configuration's own facts.
impl Target {
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Host(_) => "host",
            Target::Kubernetes(_) => "kubernetes",
            Target::Aws(_) => "aws",
        }
    }

    /// The namespace objects are rendered into (Kubernetes only).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Target::Kubernetes(k) => Some(&k.namespace),
            Target::Aws(_) | Target::Host(_) => None,
        }
    }

    /// Points a Kubernetes target at another namespace (`--namespace`); others are unchanged.
    pub fn set_namespace(&mut self, namespace: &str) {
        if let Target::Kubernetes(k) = self {
            k.namespace = namespace.to_string();
        }
    }

    /// The AWS settings, for an AWS target.
    pub fn aws(&self) -> Option<&AwsTarget> {
        match self {
            Target::Aws(a) => Some(a),
            Target::Kubernetes(_) | Target::Host(_) => None,
        }
    }

    /// Whether the target's objects come from templates (a host runs artifacts as they are).
    pub fn renders_templates(&self) -> bool {
        !matches!(self, Target::Host(_))
    }

    /// Where a client reaches `service` on `port` when no value says: the stable Service on
    /// Kubernetes, the loopback on a host, an internal name on AWS.
    pub fn default_endpoint(&self, project: &str, service: &str, port: u16) -> String {
        match self {
            Target::Kubernetes(_) => format!("http://{service}:{port}"),
            Target::Host(_) => format!("http://127.0.0.1:{port}"),
            Target::Aws(_) => format!("http://{service}.{project}.internal:{port}"),
        }
    }
}

/// yodeploy-style directories: `<root>/<service>/versions/<v>` and a `live` symlink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTarget {
    /// Relative paths are taken from the project root.
    pub root: String,
    /// How many versions to keep on disk per service (for instant rollback).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_keep() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesTarget {
    /// kubeconfig context; the current context when absent.
    pub context: Option<String>,
    pub namespace: String,
    /// Client-side limit of requests to the API server: a steady rate per second and a burst
    /// above it (client-go's token bucket). Watches count once, when they start.
    #[serde(default = "default_qps")]
    pub qps: std::num::NonZeroU32,
    #[serde(default = "default_burst")]
    pub burst: std::num::NonZeroU32,
}

/// kubectl's own limits for its bursty client (discovery: 50 per second, bursts of 300).
/// client-go's general default (5/10) is sized for one request per command; a release makes
/// hundreds, and the server protects itself by API Priority and Fairness.
fn default_qps() -> std::num::NonZeroU32 {
    std::num::NonZeroU32::MIN.saturating_add(49)
}

fn default_burst() -> std::num::NonZeroU32 {
    std::num::NonZeroU32::MIN.saturating_add(299)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsTarget {
    pub region: String,
    pub profile: Option<String>,
    /// An AMI id (`ami-…`), or a name pattern looked up newest first (with `ami_owners`).
    pub ami: Option<String>,
    #[serde(default)]
    pub ami_owners: Vec<String>,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// Subnet ids; empty means the default VPC's subnets.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// Security group ids or names.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// The instances' IAM instance profile, by name or ARN (see `manifests/aws-iam.json`).
    #[serde(alias = "iam_instance_profile")]
    pub instance_profile: Option<String>,
    /// Target group ARN or name per service; services without one switch by scaling.
    #[serde(default)]
    pub target_groups: BTreeMap<String, String>,
    /// An EC2 key pair for SSH; none by default.
    pub key_name: Option<String>,
    #[serde(default)]
    pub block_devices: Vec<BlockDevice>,
    /// Instance metadata options; IMDSv2 only by default.
    #[serde(default)]
    pub metadata: Metadata,
}

fn default_instance_type() -> String {
    "t3.small".to_string()
}
