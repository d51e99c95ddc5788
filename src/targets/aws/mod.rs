//! The EC2 Auto Scaling target: a new group per service version from a new launch-template
//! version, a health-gated switch through the service's target groups, old groups deleted after
//! `keep_warm`, and state (lock, release records) in the artifact store's S3 bucket.
//!
//! | file | owns |
//! |---|---|
//! | `connection` | SDK clients: region, profile, `AWS_ENDPOINT_URL`, adaptive retries |
//! | `calls` | an interceptor counting API calls by operation |
//! | `lookups` | AMI, subnets, security groups, target groups: resolved and validated |
//! | `names` | pure: names, tags and who owns what by them, canary arithmetic, the calls a step makes |
//! | `groups`, `agent_reports` | groups as values; pure health and observe rules; the agent's reports |
//! | `provision`, `health`, `switch`, `retire` | the steps |
//! | `template`, `settings`, `policies` | the launch template; what a new group copies from the old |
//! | `ssm` | a revision's secrets in Parameter Store: written on provision, read by the agent |
//! | `flag_parameter` | the live flags in one SSM parameter, compare-and-swap under an S3 lock |
//! | `run_command` | release tasks on one instance of the new group through SSM Run Command |
//! | `consistency`, `drain` | real-AWS timing: "not found" right after a create; connection draining |
//! | `state` | the lease and release records as S3 objects with conditional writes |
//! | `prewarm`, `scheduled` | the prewarm schedule in the bucket; the groups' scheduled actions |
//! | `tests`, `faults` | moto through the real SDK; faults from an interceptor of the tests' own |
//! | `open` | opening an environment from the project: the [`crate::targets::Backend`] |

mod agent_reports;
mod aws_target;
pub mod calls;
pub mod connection;
mod consistency;
mod drain;
pub(crate) mod error;
#[cfg(test)]
mod faults;
pub mod flag_parameter;
pub mod groups;
mod health;
pub mod lookups;
pub mod names;
pub mod open;
mod policies;
mod prewarm;
mod provision;
mod retire;
mod run_command;
mod scheduled;
mod settings;
pub mod ssm;
pub mod state;
mod switch;
mod template;
#[cfg(test)]
mod tests;

pub use aws_target::{AwsTarget, UserData};
pub use error::AwsError;
pub use open::AwsBackend;
pub use prewarm::AwsPrewarm;
