//! Before a release is recorded: a server-side dry run of every object the release will apply —
//! all of a version it provisions, the Service and HPA of a warm version it only switches to — so
//! an admission or schema refusal stops it with nothing changed.

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::future::join_all;

use crate::execute::TargetError;
use crate::plan::{Action, Plan};

use super::target::{KubeTarget, action};

/// Services whose objects are dry-run at once.
const CONCURRENT_CHECKS: usize = 64;

impl KubeTarget {
    /// Server-side dry run of what `plan` will apply: an admission or schema error stops the
    /// release before anything changes.
    pub async fn dry_run(&self, plan: &Plan) -> Result<(), TargetError> {
        // service → version → whether the release provisions it (else it only switches to it).
        let mut versions: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
        for step in &plan.steps {
            let (version, provisioned) = match &step.action {
                Action::Provision { version } => (version, true),
                Action::Switch { to, .. } => (to, false),
                Action::Retire { .. } | Action::Remove { .. } | Action::Task { .. } => continue,
            };
            *versions
                .entry(step.service.clone())
                .or_default()
                .entry(version.clone())
                .or_default() |= provisioned;
        }
        let mut checks = Vec::new();
        for (service, versions) in &versions {
            for (version, &provisioned) in versions {
                checks.push(async move {
                    let objects = self.objects(service, version).await?;
                    let applied: Vec<_> = if provisioned {
                        objects.all().collect()
                    } else {
                        objects.service.iter().chain(&objects.autoscaler).collect()
                    };
                    // Only the refusals matter: each answer is dropped as it comes, not held
                    // until the service's last one (at a thousand services, megabytes).
                    let results = join_all(
                        applied
                            .into_iter()
                            .map(|o| async move { self.applier.apply(o, true).await.map(drop) }),
                    )
                    .await;
                    let problems: Vec<String> = results
                        .into_iter()
                        .filter_map(Result::err)
                        .map(|e| {
                            let help = crate::diagnostic::Diagnose::help(&e)
                                .map(|h| format!(" (help: {h})"))
                                .unwrap_or_default();
                            format!("{e}{help}")
                        })
                        .collect();
                    if problems.is_empty() {
                        Ok(())
                    } else {
                        Err(action(service, "dry-run", problems.join("; ")))
                    }
                });
            }
        }
        // A bounded number of services at a time: each holds its objects' requests in flight,
        // and the client's own limit paces them anyway.
        let results: Vec<_> = futures::stream::iter(checks)
            .buffered(CONCURRENT_CHECKS)
            .collect()
            .await;
        let problems: Vec<String> = results
            .into_iter()
            .filter_map(Result::err)
            .map(|e| e.to_string())
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(TargetError::Action {
                service: format!(
                    "{} of {} version(s)",
                    problems.len(),
                    versions.values().map(BTreeMap::len).sum::<usize>()
                ),
                action: "server-side dry run".to_string(),
                detail: format!("\n  {}", problems.join("\n  ")),
            })
        }
    }
}
