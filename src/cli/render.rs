//! `convoy render`: one environment's manifests, secrets masked unless asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::Context;
use crate::config::Project;
use crate::render::{RenderInput, SecretMode, ServiceVersion, render_environment};
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The environment
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// Services to render [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Write one file per object into this directory instead of a YAML stream on stdout
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The version to render [default: the project repository's HEAD commit, or `dev`]
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Show secrets in clear text (reads them from their env vars or files)
    #[arg(long)]
    pub show_secrets: bool,
    /// Override a value in every service, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn run(args: RenderArgs, context: &Context) -> Result<Exit, Error> {
    let RenderArgs {
        environment,
        services,
        out,
        version,
        show_secrets,
        sets,
    } = args;
    let project = context.load_project()?;
    let versions = versions(&project, version);
    let input = RenderInput {
        project: &project,
        environment: &environment,
        services: &services,
        versions: &versions,
        sets: &sets,
        release: 0,
        secrets: if show_secrets {
            SecretMode::Reveal
        } else {
            SecretMode::Mask
        },
    };
    let rendered = render_environment(&input)?;
    match out {
        None => {
            for service in &rendered.services {
                for manifest in &service.manifests {
                    context.output.event(json!({"event": "manifest", "service": service.service,
                        "kind": manifest.kind, "name": manifest.name, "document": manifest.document}));
                }
            }
            context.output.human(&rendered.to_yaml_stream());
        }
        Some(dir) => {
            for (file, text) in rendered.files() {
                write(&dir.join(&file), text)?;
                context
                    .output
                    .event(json!({"event": "written", "file": file}));
            }
            context.output.human(&format!(
                "wrote {} file(s) to {}",
                rendered.files().len(),
                dir.display()
            ));
        }
    }
    for (service, finding) in rendered.findings() {
        eprintln!(
            "{:?}[{}]: {service}: {} {}: {}",
            finding.severity, finding.rule, finding.kind, finding.name, finding.message
        );
    }
    Ok(Exit::Success)
}

fn write(path: &Path, text: &str) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(Error::Output)?;
    }
    std::fs::write(path, text).map_err(Error::Output)
}

/// The version of every service: `--version` for all of them when given; else the versions the
/// build derives from git (the same a deploy of HEAD would roll out); else `dev` outside a
/// repository, so `convoy check` also works on a plain directory.
pub fn versions(project: &Project, version: Option<String>) -> BTreeMap<String, ServiceVersion> {
    let resolved = crate::build::resolve_versions(project, "HEAD").ok();
    project
        .services
        .keys()
        .map(|name| {
            let from_git = resolved
                .as_ref()
                .and_then(|r| r.services.iter().find(|v| &v.service == name));
            let (derived, commit) = match from_git {
                Some(v) => (v.version.clone(), v.commit.clone()),
                None => ("dev".to_string(), "unknown".to_string()),
            };
            let service = ServiceVersion {
                version: version.clone().unwrap_or(derived),
                commit,
                artifact_sha256: None,
            };
            (name.clone(), service)
        })
        .collect()
}
