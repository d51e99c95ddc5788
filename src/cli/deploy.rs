//! `convoy deploy` and `convoy plan`.

use clap::Args;

use super::args::{EnvArg, RefArg, SetArgs};
use super::{Context, prompt};
use crate::ops::deploy::{DeployOptions, DeployOutcome};
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub rev: RefArg,
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
    #[command(flatten)]
    pub set: SetArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub rev: RefArg,
    /// Services to plan for [default: all]
    pub services: Vec<String>,
    #[command(flatten)]
    pub set: SetArgs,
}

pub fn plan(args: PlanArgs, context: &Context) -> Result<Exit, Error> {
    let PlanArgs {
        env: EnvArg { environment },
        rev: RefArg { rev },
        services,
        set: SetArgs { sets },
    } = args;
    let project = context.load_project()?;
    let reporter = context.reporter();
    let overrides = context.overrides.clone();
    let outcome = super::runtime()?.block_on(crate::ops::deploy::plan(
        project,
        environment.clone(),
        rev,
        services,
        sets,
        overrides,
        reporter,
    ))?;
    Ok(print(context, &environment, outcome))
}

pub fn deploy(args: DeployArgs, context: &Context) -> Result<Exit, Error> {
    let DeployArgs {
        env: EnvArg { environment },
        rev: RefArg { rev },
        services,
        dry_run,
        resume,
        no_build,
        set: SetArgs { sets },
    } = args;
    let options = DeployOptions {
        project: context.load_project()?,
        environment: environment.clone(),
        rev,
        services,
        dry_run,
        resume,
        no_build,
        sets,
        overrides: context.overrides.clone(),
    };
    let reporter = context.reporter();
    let confirmation = prompt::confirmation(context);
    let outcome =
        super::runtime()?.block_on(crate::ops::deploy::deploy(options, reporter, &confirmation))?;
    Ok(print(context, &environment, outcome))
}

/// Prints what a deploy, plan or rollback ended with, and says how the process exits.
pub fn print(context: &Context, environment: &str, outcome: DeployOutcome) -> Exit {
    match outcome {
        DeployOutcome::Planned { plan, calls } => {
            context.output.event(json!({"event": "plan", "plan": plan}));
            context.output.human(&plan.to_string());
            print_calls(context, &calls);
            Exit::Success
        }
        DeployOutcome::Declined => {
            context.output.human("nothing changed");
            Exit::Success
        }
        DeployOutcome::NothingToDo => {
            context
                .output
                .event(json!({"event": "nothing_to_do", "environment": environment}));
            context.output.human(&format!(
                "{environment}: every service already runs its revision; nothing to do"
            ));
            Exit::Success
        }
        DeployOutcome::Released { record, took_over } => {
            if let Some(lease) = took_over {
                eprintln!(
                    "warning: took over the expired lock of {} (acquired {})",
                    lease.holder, lease.acquired
                );
            }
            let elapsed_ms = record.duration().map(|d| d.as_millis().max(0));
            context.output.event(json!({
                "event": "release",
                "number": record.number,
                "outcome": record.outcome,
                "elapsed_ms": elapsed_ms,
            }));
            context
                .output
                .human(&crate::report::release::describe(&record));
            crate::ops::rollout::exit_for(&record.outcome)
        }
    }
}

/// The API calls each step would make, on targets that list them (AWS).
fn print_calls(context: &Context, calls: &[(String, Vec<String>)]) {
    if calls.is_empty() {
        return;
    }
    context
        .output
        .event(json!({"event": "calls", "steps": calls}));
    let mut text = String::from("calls:\n");
    for (step, calls) in calls {
        text.push_str(&format!("  {step}\n"));
        for call in calls {
            text.push_str(&format!("      {call}\n"));
        }
    }
    context.output.human(text.trim_end());
}
