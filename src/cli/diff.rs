//! `convoy diff`: what a deploy would change in the cluster, object by object (server-side dry
//! run, secrets masked). Exit 0 when nothing differs, 1 when something does — for CI.

use clap::Args;

use super::{Context, rollout};
use crate::report::json;
use crate::targets::kubernetes::diff::Difference;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// The git revision whose versions to compare
    #[arg(long = "ref", value_name = "REV", default_value = "HEAD")]
    pub rev: String,
    /// Services to compare [default: all]
    pub services: Vec<String>,
    /// Override a value, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn run(args: DiffArgs, context: &Context) -> Result<Exit, Error> {
    let DiffArgs {
        environment,
        rev,
        services,
        sets,
    } = args;
    let project = context.load_project()?;
    let services = rollout::services(&project, &services)?;
    let desired = rollout::desired(&project, &rev, &services)?;
    let diffs = super::runtime()?.block_on(crate::targets::kubernetes::open::diff(
        &project,
        &environment,
        &desired,
        &sets,
        &context.overrides,
    ))?;
    let mut text = String::new();
    for diff in &diffs {
        context
            .output
            .event(json!({"event": "difference", "difference": diff}));
        match &diff.difference {
            Difference::Added { yaml } => {
                text.push_str(&format!("+ {} (new)\n", diff.object));
                for line in yaml.lines() {
                    text.push_str(&format!("  + {line}\n"));
                }
            }
            Difference::Changed { diff: unified } => {
                text.push_str(&format!("~ {}\n", diff.object));
                for line in unified.lines() {
                    text.push_str(&format!("  {line}\n"));
                }
            }
            Difference::SecretsChanged => {
                text.push_str(&format!(
                    "~ {} (secret values differ; not shown)\n",
                    diff.object
                ));
            }
        }
    }
    if diffs.is_empty() {
        text.push_str(&format!(
            "{environment}: the cluster matches the rendered objects\n"
        ));
    } else {
        text.push_str(&format!(
            "{environment}: {} object(s) differ\n",
            diffs.len()
        ));
    }
    context.output.human(&text);
    Ok(if diffs.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    })
}
