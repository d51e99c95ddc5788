//! `convoy build`: build and publish the services whose key is not in the store yet.

use std::io::IsTerminal;
use std::sync::Mutex;

use clap::Args;

use super::Context;
use super::args::RefArg;
use crate::build::{BuildOutcome, BuildRequest, NoProgress, Progress, ServiceVersion};
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Services to build [default: all]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    #[command(flatten)]
    pub rev: RefArg,
}

pub fn run(args: BuildArgs, context: &Context) -> Result<Exit, Error> {
    let BuildArgs {
        services,
        rev: RefArg { rev },
    } = args;
    let project = context.load_project()?;
    let request = BuildRequest { rev, services };
    let bars = context.progress && !context.output.is_json() && std::io::stderr().is_terminal();
    let progress: Box<dyn Progress> = if bars {
        Box::new(Bars::default())
    } else {
        Box::new(NoProgress)
    };
    let reporter = context.reporter();
    let outcomes = super::runtime()?.block_on(crate::ops::build::build(
        &project,
        &request,
        progress.as_ref(),
        reporter.as_ref(),
    ))?;
    for outcome in &outcomes {
        report(context, outcome);
    }
    crate::ops::build::failures(&outcomes)?;
    Ok(Exit::Success)
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
