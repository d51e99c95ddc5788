//! `convoy deploy` and `convoy plan`: build what is missing, plan, lock, roll out, record.

use clap::Args;

use super::Context;
use super::rollout;
use crate::execute::Request;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// The git revision to deploy
    #[arg(long = "ref", value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// Services to deploy [default: all]
    pub services: Vec<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Continue the unfinished release from its journal
    #[arg(long, conflicts_with_all = ["dry_run", "services"])]
    pub resume: bool,
    /// Do not build missing artifacts (fail if one is missing)
    #[arg(long)]
    pub no_build: bool,
    /// Override a value, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    #[arg(long = "ref", value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// Services to plan for [default: all]
    pub services: Vec<String>,
}

pub fn plan(args: PlanArgs, context: &Context) -> Result<Exit, Error> {
    let PlanArgs {
        environment,
        rev,
        services,
    } = args;
    deploy(
        DeployArgs {
            environment,
            rev,
            services,
            dry_run: true,
            resume: false,
            no_build: true,
            sets: Vec::new(),
        },
        context,
    )
}

pub fn deploy(args: DeployArgs, context: &Context) -> Result<Exit, Error> {
    let DeployArgs {
        environment,
        rev,
        services,
        dry_run,
        resume,
        no_build,
        sets,
    } = args;
    let project = context.load_project()?;
    let services = rollout::services(&project, &services)?;
    let desired = rollout::desired(&project, &rev, &services)?;
    super::runtime()?.block_on(async {
        let opened = rollout::open(context, project, &environment, &services, &sets).await?;
        let (project, store) = (&opened.project, &opened.store);
        let reporter = rollout::reporter(context);
        let session = opened.session(&environment, reporter.as_ref())?;
        if dry_run {
            let plan = session.plan(&desired).await?;
            context.output.event(json!({"event": "plan", "plan": plan}));
            context.output.human(&plan.to_string());
            print_calls(context, opened.target.target.as_ref(), &plan);
            return Ok(Exit::Success);
        }
        let request = if resume {
            Request::Resume
        } else {
            Request::Deploy { desired }
        };
        if !resume {
            if !no_build {
                rollout::build_missing(project, &rev, &services, store.as_ref()).await?;
            }
            if !rollout::confirm(context, project, &environment, "Deploy to")? {
                context.output.human("nothing changed");
                return Ok(Exit::Success);
            }
        }
        let finished = session.run(request).await?;
        if let Some(lease) = finished.took_over {
            eprintln!(
                "warning: took over the expired lock of {} (acquired {})",
                lease.holder, lease.acquired
            );
        }
        let Some(record) = finished.record else {
            context
                .output
                .event(json!({"event": "nothing_to_do", "environment": environment}));
            context.output.human(&format!(
                "{environment}: every service already runs its version; nothing to do"
            ));
            return Ok(Exit::Success);
        };
        context
            .output
            .event(json!({"event": "release", "number": record.number, "outcome": record.outcome}));
        context.output.human(&super::status::describe(&record));
        Ok(rollout::exit_for(&record.outcome))
    })
}

/// The API calls each step would make, on targets that list them (AWS).
fn print_calls(context: &Context, target: &dyn crate::execute::Target, plan: &crate::plan::Plan) {
    let steps: Vec<(String, Vec<String>)> = plan
        .steps
        .iter()
        .map(|step| (format!("{} {}", step.id, step.service), target.calls(step)))
        .filter(|(_, calls)| !calls.is_empty())
        .collect();
    if steps.is_empty() {
        return;
    }
    context
        .output
        .event(json!({"event": "calls", "steps": steps}));
    let mut text = String::from("calls:\n");
    for (step, calls) in &steps {
        text.push_str(&format!("  {step}\n"));
        for call in calls {
            text.push_str(&format!("      {call}\n"));
        }
    }
    context.output.human(text.trim_end());
}
