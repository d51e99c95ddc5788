//! `convoy artifacts list|show|gc`: inspect and prune the artifact store.

use std::collections::HashSet;

use clap::{Args, Subcommand};

use super::Context;
use crate::artifacts::ArtifactError;
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Published artifacts, oldest first, of one service or all
    List(ListArgs),
    /// Everything meta.json says about one version
    Show(ShowArgs),
    /// Delete all but the newest N versions of each service
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[arg(value_name = "SERVICE")]
    pub service: String,
    #[arg(value_name = "VERSION")]
    pub version: String,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// How many versions of each service to keep
    #[arg(long, value_name = "N")]
    pub keep: usize,
}

pub fn run(command: ArtifactsCommand, context: &Context) -> Result<Exit, Error> {
    let project = context.load_project()?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
        match command {
            ArtifactsCommand::List(ListArgs { service }) => {
                let list = store.list(service.as_deref()).await?;
                let mut table = Table::new(["SERVICE", "VERSION", "COMMITTED", "SIZE", "SHA256"]);
                for meta in &list {
                    context.output.event(json!({"event": "artifact", "meta": meta}));
                    table.row([
                        meta.service.clone(),
                        meta.version.clone(),
                        meta.commit_time.to_string(),
                        meta.size.to_string(),
                        meta.sha256[..16].to_string(),
                    ]);
                }
                context.output.human(&table.to_string());
            }
            ArtifactsCommand::Show(ShowArgs { service, version }) => {
                let meta = store.meta(&service, &version).await?.ok_or_else(|| {
                    ArtifactError::NotFound { service, version, store: store.describe() }
                })?;
                context.output.event(json!({"event": "artifact", "meta": meta}));
                context.output.human(&crate::report::yaml(&meta));
            }
            ArtifactsCommand::Gc(GcArgs { keep }) => {
                let protected = referenced(&project, &context.overrides).await?;
                let report = crate::artifacts::gc(store.as_ref(), keep, &protected).await?;
                for meta in &report.deleted {
                    context.output.event(json!({"event": "deleted", "service": meta.service, "version": meta.version}));
                    context.output.human(&format!("deleted {} {}", meta.service, meta.version));
                }
                context.output.human(&format!("kept {}, deleted {}", report.kept.len(), report.deleted.len()));
            }
        }
        Ok(Exit::Success)
    })
}

/// Every (service, version) a release record of an environment with stored records mentions:
/// those versions may be rolled back to, so their artifacts stay.
async fn referenced(
    project: &crate::config::Project,
    overrides: &crate::targets::Overrides,
) -> Result<HashSet<(String, String)>, Error> {
    let mut protected = HashSet::new();
    for environment in project.environments.keys() {
        // Targets that keep no records here yet have nothing to protect.
        let Ok(state) = crate::targets::environment_state(project, environment, overrides).await
        else {
            continue;
        };
        for record in state.releases.list(usize::MAX).await? {
            let before = record
                .before
                .iter()
                .filter_map(|(s, v)| Some((s.clone(), v.clone()?)));
            let after = record.after.iter().map(|(s, v)| (s.clone(), v.clone()));
            protected.extend(before.chain(after));
        }
    }
    Ok(protected)
}
