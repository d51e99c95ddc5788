//! `convoy build`: build and publish the services whose key is not in the store yet.

use std::io::IsTerminal;
use std::sync::Mutex;

use clap::Args;

use super::Context;
use crate::build::{BuildOutcome, BuildRequest, NoProgress, Progress, ServiceVersion};
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Services to build [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// The git revision to build (branch, tag, commit); uncommitted changes are never built
    #[arg(long = "ref", value_name = "REV", default_value = "HEAD")]
    pub rev: String,
}

pub fn run(args: BuildArgs, context: &Context) -> Result<Exit, Error> {
    let BuildArgs { services, rev } = args;
    let project = context.load_project()?;
    let request = BuildRequest { rev, services };
    let runtime = super::runtime()?;
    let outcomes = runtime.block_on(async {
        let resolved = crate::build::resolve_versions(&project, &request.rev)?;
        if resolved.dirty {
            eprintln!(
                "warning: the work tree has uncommitted changes; building commit {} without them",
                &resolved.commit[..crate::build::VERSION_LEN]
            );
        }
        let store = crate::artifacts::open(&project.artifact_store, &project.root).await?;
        let bars = context.progress && !context.output.is_json() && std::io::stderr().is_terminal();
        let progress: Box<dyn Progress> = if bars {
            Box::new(Bars::default())
        } else {
            Box::new(NoProgress)
        };
        let outcomes =
            crate::build::build(&project, &request, store.as_ref(), progress.as_ref()).await?;
        Ok::<_, Error>(outcomes)
    })?;
    let mut failed = Vec::new();
    for outcome in &outcomes {
        report(context, outcome);
        if let BuildOutcome::Failed { version, .. } = outcome {
            failed.push(version.service.clone());
        }
    }
    if failed.is_empty() {
        Ok(Exit::Success)
    } else {
        Err(Error::BuildsFailed {
            failed,
            total: outcomes.len(),
        })
    }
}

fn report(context: &Context, outcome: &BuildOutcome) {
    let (service, version, status) = (outcome.service(), outcome.version(), outcome.status());
    match outcome {
        BuildOutcome::Built { meta, .. } | BuildOutcome::Cached { meta } => {
            context.output.event(json!({
                "event": "build", "service": service, "version": version, "status": status,
                "commit": meta.commit, "sha256": meta.sha256, "size": meta.size,
            }));
            context.output.human(&format!(
                "{status:<7} {service} {version}  ({} bytes)",
                meta.size
            ));
        }
        BuildOutcome::Failed { error, .. } => {
            context.output.event(json!({
                "event": "build", "service": service, "version": version, "status": status,
                "error": error.to_string(),
            }));
            context
                .output
                .human(&format!("failed  {service} {version}"));
            let text = crate::report::render_diagnostic(error);
            eprint!("{text}");
        }
    }
}

/// One spinner per service while it builds, on stderr.
#[derive(Default)]
struct Bars {
    multi: indicatif::MultiProgress,
    bars: Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Progress for Bars {
    fn started(&self, service: &ServiceVersion) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_message(format!("building {} {}", service.service, service.version));
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.bars
            .lock()
            .expect("bars")
            .push((service.service.clone(), bar));
    }

    fn finished(&self, outcome: &BuildOutcome) {
        let bars = self.bars.lock().expect("bars");
        if let Some((_, bar)) = bars.iter().find(|(name, _)| name == outcome.service()) {
            bar.finish_and_clear();
        }
    }
}
