//! `convoy status`: live versions, what is kept warm, the lock, and the last release.

use clap::Args;

use super::Context;
use crate::execute::{Outcome, ReleaseRecord};
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
}

pub fn run(args: StatusArgs, context: &Context) -> Result<Exit, Error> {
    let StatusArgs { environment } = args;
    let project = context.load_project()?;
    let services = super::rollout::services(&project, &[])?;
    super::runtime()?.block_on(async {
        // Observing needs no values: nothing here resolves (or requires) a secret.
        let observed = crate::targets::observe(&project, &environment, &services, &context.overrides).await?;
        let state = crate::targets::environment_state(&project, &environment, &context.overrides).await?;
        let lease = state.lock.status().await?;
        let latest = state.releases.latest().await?;
        context.output.event(json!({"event": "status", "environment": environment, "services": observed, "lock": lease, "latest": latest.as_ref().map(|r| r.number)}));
        let mut table = Table::new(["SERVICE", "LIVE", "WARM"]);
        for service in &services {
            let state = observed.get(service).cloned().unwrap_or_default();
            let warm: Vec<String> = state.warm.into_iter().filter(|v| Some(v) != state.live.as_ref()).collect();
            table.row([service.clone(), state.live.unwrap_or_else(|| "-".to_string()), warm.join(" ")]);
        }
        let mut text = table.to_string();
        text.push_str(&match lease {
            Some(lease) => format!("lock: held by {} since {} (expires {})\n", lease.holder, lease.acquired, lease.expires),
            None => "lock: free\n".to_string(),
        });
        if let Some(record) = latest {
            text.push_str(&describe(&record));
        }
        text.push_str(&prewarms(&project, &environment, &services, context).await?);
        context.output.human(&text);
        Ok(Exit::Success)
    })
}

/// Active and upcoming prewarm windows, on targets that keep them.
async fn prewarms(
    project: &crate::config::Project,
    environment: &str,
    services: &[String],
    context: &Context,
) -> Result<String, Error> {
    let prewarms = project.environment(environment).is_ok_and(|e| {
        matches!(
            e.target,
            crate::config::Target::Kubernetes(_) | crate::config::Target::Aws(_)
        )
    });
    if !prewarms {
        return Ok(String::new());
    }
    let prewarmer = crate::targets::prewarm::open(project, environment, &context.overrides).await?;
    let stored = prewarmer.load().await?;
    if stored.schedule.windows.is_empty() {
        return Ok(String::new());
    }
    let levels = prewarmer.levels(services).await?;
    let now = crate::execute::Clock::now(&crate::execute::SystemClock);
    context.output.event(json!({"event": "prewarm_status", "environment": environment, "schedule": stored.schedule, "capacity": levels}));
    Ok(super::prewarm_status::describe(
        environment,
        &stored.schedule,
        &levels,
        now,
        prewarmer.raised_by(),
    ))
}

/// One paragraph about a release: number, outcome, and what to do if it needs attention.
pub fn describe(record: &ReleaseRecord) -> String {
    let env = &record.environment;
    let mut text = match &record.outcome {
        Outcome::Succeeded => format!("release {} of {env} succeeded", record.number),
        Outcome::InProgress => format!(
            "release {} of {env} is unfinished: `convoy deploy --env {env} --resume` continues it, `convoy rollback --env {env}` reverts it",
            record.number
        ),
        Outcome::RolledBack { reason } => format!(
            "release {} of {env} failed and was rolled back: {reason}",
            record.number
        ),
        Outcome::Failed { reason, left } => format!(
            "release {} of {env} FAILED and needs attention: {reason}\nnot reverted: {}",
            record.number,
            left.join("; ")
        ),
    };
    if let Some(duration) = record.duration() {
        text.push_str(&format!(" ({:.1?})", duration.unsigned_abs()));
    }
    text.push('\n');
    text
}
