//! `convoy status`.

use clap::Args;

use super::Context;
use super::args::EnvArg;
use crate::execute::{Clock, SystemClock};
use crate::ops::status::{Status, StatusOptions};
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub env: EnvArg,
}

pub fn run(args: StatusArgs, context: &Context) -> Result<Exit, Error> {
    let StatusArgs {
        env: EnvArg { environment },
    } = args;
    let options = StatusOptions {
        project: context.load_project()?,
        environment,
        overrides: context.overrides.clone(),
    };
    let now = SystemClock.now();
    let status = super::runtime()?.block_on(crate::ops::status::status(options, now))?;
    print(context, &status);
    Ok(Exit::Success)
}

fn print(context: &Context, status: &Status) {
    let Status {
        environment,
        services,
        lease,
        latest,
        sizes,
        warm_since,
        prewarm,
        flags,
    } = status;
    let now = SystemClock.now();
    let observed: std::collections::BTreeMap<_, _> = services.iter().cloned().collect();
    context.output.event(json!({"event": "status", "environment": environment, "services": observed, "warm_since": warm_since, "sizes": sizes, "lock": lease, "latest": latest.as_ref().map(|r| r.number)}));
    let mut table = Table::new(["SERVICE", "LIVE", "WARM"]);
    for (service, state) in services {
        // Each warm revision with how long ago it stopped taking traffic.
        let warm: Vec<String> = state
            .warm
            .iter()
            .filter(|v| Some(*v) != state.live.as_ref())
            .map(|v| {
                let since = warm_since.get(service).and_then(|s| s.get(v));
                let age = since.and_then(|t| now.duration_since(*t).try_into().ok());
                let age = age.map(|age| format!("{} ago", crate::report::elapsed(age)));
                let size = sizes.get(service).and_then(|s| s.get(v)).cloned();
                let about: Vec<String> = [age, size].into_iter().flatten().collect();
                match about.is_empty() {
                    true => v.clone(),
                    false => format!("{v} ({})", about.join(", ")),
                }
            })
            .collect();
        let live = state.live.clone().unwrap_or_else(|| "-".to_string());
        table.row([service.clone(), live, warm.join(" ")]);
    }
    let mut text = table.to_string();
    text.push_str(&match lease {
        Some(lease) => format!(
            "lock: held by {} since {} (expires {})\n",
            lease.holder, lease.acquired, lease.expires
        ),
        None => "lock: free\n".to_string(),
    });
    if let Some(record) = latest {
        text.push_str(&crate::report::release::describe(record));
    }
    if let Some(flags) = flags {
        context.output.event(json!({"event": "flags", "environment": environment, "revision": flags.flags.revision, "flags": flags.flags.flags}));
        let shown: Vec<String> = flags
            .flags
            .flags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        match shown.is_empty() {
            true => text.push_str("flags: none\n"),
            false => text.push_str(&format!("flags: {}\n", shown.join(" "))),
        }
        if let Some((on, longest)) = flags.maintenance_overdue {
            let message = format!(
                "maintenance has been on for {}, longer than the longest task timeout ({}); if no task runs, `convoy flags unset maintenance --env {environment}`",
                crate::report::elapsed(on),
                crate::report::elapsed(longest)
            );
            context
                .output
                .event(json!({"event": "warning", "message": message}));
            text.push_str(&format!("warning: {message}\n"));
        }
    }
    if let Some(prewarm) = prewarm {
        context.output.event(json!({"event": "prewarm_status", "environment": environment, "schedule": prewarm.schedule, "capacity": prewarm.levels}));
        text.push_str(&crate::report::prewarm_status::describe(
            environment,
            &prewarm.schedule,
            &prewarm.levels,
            prewarm.now,
            prewarm.raised_by,
        ));
    }
    context.output.human(&text);
}
