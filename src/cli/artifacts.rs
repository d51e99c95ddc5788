//! `convoy artifacts list|show|gc`.

use clap::{Args, Subcommand};

use super::Context;
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
    /// Only this service's versions
    #[arg(value_name = "SERVICE")]
    pub service: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The service
    #[arg(value_name = "SERVICE")]
    pub service: String,
    /// The version (`convoy artifacts list` shows them)
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
    match command {
        ArtifactsCommand::List(ListArgs { service }) => {
            let list =
                runtime.block_on(crate::ops::artifacts::list(&project, service.as_deref()))?;
            let mut table = Table::new(["SERVICE", "VERSION", "COMMITTED", "SIZE", "SHA256"]);
            for meta in &list {
                context
                    .output
                    .event(json!({"event": "artifact", "meta": meta}));
                table.row([
                    meta.service.clone(),
                    meta.version.clone(),
                    meta.commit_time.to_string(),
                    meta.size.to_string(),
                    short(&meta.sha256).to_string(),
                ]);
            }
            context.output.human(&table.to_string());
        }
        ArtifactsCommand::Show(ShowArgs { service, version }) => {
            let meta = runtime.block_on(crate::ops::artifacts::show(&project, service, version))?;
            context
                .output
                .event(json!({"event": "artifact", "meta": meta}));
            context.output.human(&crate::report::yaml(&meta));
        }
        ArtifactsCommand::Gc(GcArgs { keep }) => {
            let report = runtime.block_on(crate::ops::artifacts::gc(
                &project,
                keep,
                &context.overrides,
            ))?;
            for meta in &report.deleted {
                context.output.event(
                    json!({"event": "deleted", "service": meta.service, "version": meta.version}),
                );
                context
                    .output
                    .human(&format!("deleted {} {}", meta.service, meta.version));
            }
            let (kept, deleted) = (report.kept.len(), report.deleted.len());
            context
                .output
                .human(&format!("kept {kept}, deleted {deleted}"));
        }
    }
    Ok(Exit::Success)
}

/// The first 16 characters of a digest, or all of it when shorter (a foreign `meta.json`).
fn short(sha256: &str) -> &str {
    sha256.get(..16).unwrap_or(sha256)
}

#[cfg(test)]
mod tests {
    /// Regression: `artifacts list` sliced `sha256[..16]` and panicked on a `meta.json` whose
    /// digest was shorter (or cut inside a multi-byte character).
    #[test]
    fn a_short_or_foreign_digest_is_shown_whole_not_a_panic() {
        assert_eq!(super::short("abc"), "abc");
        assert_eq!(super::short("0123456789abcdef0123"), "0123456789abcdef");
        assert_eq!(super::short("aéééééééé"), "aéééééééé");
    }
}
