//! Before a release is recorded: a server-side dry run of every object of every version it
//! provisions or switches to, so an admission or schema refusal stops it with nothing changed.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;

use crate::execute::TargetError;
use crate::plan::{Action, Plan};

use super::target::{KubeTarget, action};

impl KubeTarget {
    /// Server-side dry run of every object of every version `plan` provisions or switches to:
    /// an admission or schema error stops the release before anything changes.
    pub async fn dry_run(&self, plan: &Plan) -> Result<(), TargetError> {
        let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for step in &plan.steps {
            match &step.action {
                Action::Provision { version } => {
                    versions
                        .entry(step.service.clone())
                        .or_default()
                        .insert(version.clone());
                }
                Action::Switch { to, .. } => {
                    versions
                        .entry(step.service.clone())
                        .or_default()
                        .insert(to.clone());
                }
                Action::Retire { .. } | Action::Remove { .. } => {}
            }
        }
        let mut checks = Vec::new();
        for (service, versions) in &versions {
            for version in versions {
                checks.push(async move {
                    let objects = self.objects(service, version).await?;
                    let results =
                        join_all(objects.all().map(|o| self.applier.apply(o, true))).await;
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
        let problems: Vec<String> = join_all(checks)
            .await
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
                    versions.values().map(BTreeSet::len).sum::<usize>()
                ),
                action: "server-side dry run".to_string(),
                detail: format!("\n  {}", problems.join("\n  ")),
            })
        }
    }
}
