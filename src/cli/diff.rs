//! `convoy diff`: exit 0 when nothing differs, 1 when something does — for CI.

use clap::Args;

use super::Context;
use super::args::{EnvArg, RefArg, SetArgs};
use crate::ops::diff::DiffOptions;
use crate::report::json;
use crate::targets::{Difference, ObjectDiff};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub env: EnvArg,
    #[command(flatten)]
    pub rev: RefArg,
    /// Services to compare [default: all]
    pub services: Vec<String>,
    #[command(flatten)]
    pub set: SetArgs,
}

pub fn run(args: DiffArgs, context: &Context) -> Result<Exit, Error> {
    let DiffArgs {
        env: EnvArg { environment },
        rev: RefArg { rev },
        services,
        set: SetArgs { sets },
    } = args;
    let options = DiffOptions {
        project: context.load_project()?,
        environment: environment.clone(),
        rev,
        services,
        sets,
        overrides: context.overrides.clone(),
    };
    let reporter = context.reporter();
    let diffs = super::runtime()?.block_on(crate::ops::diff::diff(options, reporter.as_ref()))?;
    let mut text = String::new();
    for diff in &diffs {
        context
            .output
            .event(json!({"event": "difference", "difference": diff}));
        text.push_str(&describe(diff));
    }
    text.push_str(&match diffs.len() {
        0 => format!("{environment}: the cluster matches the rendered objects\n"),
        n => format!("{environment}: {n} object(s) differ\n"),
    });
    context.output.human(&text);
    Ok(if diffs.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    })
}

fn describe(diff: &ObjectDiff) -> String {
    let mut text = String::new();
    match &diff.difference {
        Difference::Added { yaml } => {
            text.push_str(&format!("+ {} (new)\n", diff.object));
            for line in yaml.lines() {
                text.push_str(&format!("  + {line}\n"));
            }
        }
        Difference::Deleting { yaml } => {
            text.push_str(&format!(
                "+ {} (being deleted; a deploy creates it again once it is gone)\n",
                diff.object
            ));
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
    text
}
