//! `convoy render`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Context;
use super::args::{EnvArg, SetArgs};
use crate::ops::render::RenderOptions;
use crate::render::SecretMode;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// Services to render [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Write one file per object into this directory instead of a YAML stream on stdout
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The version to render [default: the project repository's HEAD commit, or `dev`]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Show secrets in clear text (reads them from their env vars or files)
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub set: SetArgs,
}

pub fn run(args: RenderArgs, context: &Context) -> Result<Exit, Error> {
    let RenderArgs {
        env: EnvArg { environment },
        services,
        out,
        version,
        show_secrets,
        set: SetArgs { sets },
    } = args;
    let project = context.load_project()?;
    let rendered = crate::ops::render::render(RenderOptions {
        project: &project,
        environment: &environment,
        services: &services,
        version,
        secrets: if show_secrets {
            SecretMode::Reveal
        } else {
            SecretMode::Mask
        },
        sets: &sets,
    })?;
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
            let count = rendered.files().len();
            context
                .output
                .human(&format!("wrote {count} file(s) to {}", dir.display()));
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
