//! `convoy flags set KEY=VALUE… | unset KEY… | list | history --env E`.

use clap::{Args, Subcommand};

use super::Context;
use super::args::EnvArg;
use crate::ops::flags::FlagsChange;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct FlagsArgs {
    #[command(subcommand)]
    pub action: FlagsAction,
}

#[derive(Debug, Subcommand)]
pub enum FlagsAction {
    /// Set flags that running services read at once (no deploy, no lock)
    Set(ChangeArgs),
    /// Remove flags
    Unset(ChangeArgs),
    /// The flags now and their revision
    List(EnvArg),
    /// Every change: who, when, old and new value
    History(EnvArg),
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// `KEY=VALUE` to set, `KEY` to unset
    #[arg(required = true, value_name = "FLAG")]
    pub flags: Vec<String>,
    #[command(flatten)]
    pub env: EnvArg,
    /// Refuse unless the flags are still at this revision (as `convoy flags list` showed)
    #[arg(long, value_name = "REVISION")]
    pub expect: Option<u64>,
}

pub fn run(args: FlagsArgs, context: &Context) -> Result<Exit, Error> {
    let FlagsArgs { action } = args;
    let project = context.load_project()?;
    let runtime = super::runtime()?;
    let overrides = &context.overrides;
    let (set, change) = match action {
        FlagsAction::List(EnvArg { environment }) => {
            let now =
                runtime.block_on(crate::ops::flags::list(&project, &environment, overrides))?;
            context.output.event(json!({"event": "flags", "environment": environment, "revision": now.revision, "flags": now.flags}));
            let mut text = format!("{environment}: flags at revision {}", now.revision);
            if now.flags.is_empty() {
                text.push_str("\n  (none)");
            }
            for (key, value) in &now.flags {
                text.push_str(&format!("\n  {key}={value}"));
            }
            context.output.human(&text);
            return Ok(Exit::Success);
        }
        FlagsAction::History(EnvArg { environment }) => {
            let changes = runtime.block_on(crate::ops::flags::history(
                &project,
                &environment,
                overrides,
                usize::MAX,
            ))?;
            let mut lines = Vec::new();
            for change in &changes {
                context.output.event(
                    json!({"event": "flag_change", "environment": environment, "change": change}),
                );
                let shown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_string());
                lines.push(format!(
                    "r{:<4} {}  {:<16} {} → {}  by {}",
                    change.revision,
                    change.at,
                    change.key,
                    shown(&change.old),
                    shown(&change.new),
                    change.who
                ));
            }
            if lines.is_empty() {
                lines.push(format!("{environment}: no flag was ever changed"));
            }
            context.output.human(&lines.join("\n"));
            return Ok(Exit::Success);
        }
        FlagsAction::Set(change) => (true, change),
        FlagsAction::Unset(change) => (false, change),
    };
    let ChangeArgs {
        flags,
        env: EnvArg { environment },
        expect,
    } = change;
    let request = FlagsChange {
        environment: &environment,
        arguments: &flags,
        set,
        expect,
    };
    let (before, after) =
        runtime.block_on(crate::ops::flags::change(&project, request, overrides))?;
    context.output.event(json!({"event": "flags_changed", "environment": environment, "revision": after.revision, "flags": after.flags}));
    let mut text = format!("{environment}: flags at revision {}", after.revision);
    if after.revision == before.revision {
        text.push_str(" (nothing changed)");
    }
    for (key, value) in &after.flags {
        text.push_str(&format!("\n  {key}={value}"));
    }
    context.output.human(&text);
    Ok(Exit::Success)
}
