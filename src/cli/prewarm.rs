//! `convoy prewarm`: schedule a window of raised capacity before a known spike (shown as a plan
//! first), `apply` what is due (from cron), `list` and `cancel` windows.

use std::sync::Arc;

use clap::{ArgGroup, Args, Subcommand};
use jiff::Timestamp;

use super::args::EnvArg;
use super::{Context, prompt};
use crate::config::Project;
use crate::execute::{Clock, SystemClock};
use crate::ops::prewarm::{self, ScheduleOptions, Scheduled};
use crate::ops::prewarm_at::parse_at;
use crate::plan::prewarm::{CapacityRule, Change, PlannedService, Reason, Schedule, Window};
use crate::report::prewarm_status::local;
use crate::report::{Table, json};
use crate::targets::prewarm::RaisedBy;
use crate::{Error, Exit};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct PrewarmArgs {
    #[command(subcommand)]
    pub action: Option<PrewarmAction>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("amount").required(true).args(["capacity", "factor", "rps"])))]
pub struct ScheduleArgs {
    /// The environment whose capacity to raise
    #[arg(long = "env", value_name = "ENV", required = true)]
    pub environment: Option<String>,
    /// When the spike starts: RFC 3339 (`2026-12-01T10:00+01:00`) or a time with a zone
    /// (`2026-12-01T10:00[Europe/Berlin]`, "2026-12-01 10:00 Europe/Berlin")
    #[arg(long, value_name = "TIME", required_unless_present = "now")]
    pub at: Option<String>,
    /// Services to raise [default: every service not marked `background`]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Replicas each service needs during the window
    #[arg(long, value_name = "N")]
    pub capacity: Option<u32>,
    /// Each service's usual capacity times this
    #[arg(long, value_name = "X")]
    pub factor: Option<f64>,
    /// Expected requests per second (with --rps-per-replica)
    #[arg(long, value_name = "R", requires = "rps_per_replica")]
    pub rps: Option<f64>,
    /// Requests per second one replica serves
    #[arg(long, value_name = "P", requires = "rps")]
    pub rps_per_replica: Option<f64>,
    /// Extra capacity on top of --rps, e.g. 30%
    #[arg(long, value_name = "PERCENT", requires = "rps", value_parser = percent)]
    pub headroom: Option<u32>,
    /// How long before the spike the capacity is raised
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub lead: humantime::Duration,
    /// How long after the spike starts the capacity is kept
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    pub hold: humantime::Duration,
    /// Background services to scale to their minimum for the window (besides those marked
    /// `background: true`)
    #[arg(long, value_name = "SERVICE")]
    pub pause: Vec<String>,
    /// Show the plan; store nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Raise at once (the window starts now) and wait until the capacity is Ready
    #[arg(long)]
    pub now: bool,
}

#[derive(Debug, Subcommand)]
pub enum PrewarmAction {
    /// Raise or restore whatever is due now (idempotent: run it every minute from cron or CI)
    Apply(EnvArg),
    /// The stored windows: active, upcoming, and ended ones not yet restored
    List(EnvArg),
    /// Remove a window; capacity it raised is given back at once
    Cancel {
        #[command(flatten)]
        env: EnvArg,
        /// The window's id (`convoy prewarm list`)
        #[arg(value_name = "ID")]
        id: String,
    },
}

fn percent(text: &str) -> Result<u32, String> {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage such as 30%"))
}

pub fn run(args: PrewarmArgs, context: &Context) -> Result<Exit, Error> {
    let PrewarmArgs { action, schedule } = args;
    let project = context.load_project()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let overrides = &context.overrides;
    let runtime = super::runtime()?;
    match action {
        None => create(schedule, project, context, clock),
        Some(PrewarmAction::Apply(EnvArg { environment })) => {
            let applied = prewarm::apply(&project, &environment, overrides, clock.now());
            let changes = runtime.block_on(applied)?;
            report_changes(context, &environment, &changes, "nothing due");
            Ok(Exit::Success)
        }
        Some(PrewarmAction::List(EnvArg { environment })) => {
            let listed = prewarm::list(&project, &environment, overrides);
            let (schedule, location) = runtime.block_on(listed)?;
            context.output.event(
                json!({"event": "prewarms", "environment": environment, "schedule": schedule}),
            );
            context
                .output
                .human(&list(&schedule, clock.now(), &location));
            Ok(Exit::Success)
        }
        Some(PrewarmAction::Cancel {
            env: EnvArg { environment },
            id,
        }) => {
            let confirmation = prompt::confirmation(context);
            let cancelled = prewarm::cancel(
                &project,
                &environment,
                &id,
                overrides,
                clock.now(),
                &confirmation,
            );
            let Some(changes) = runtime.block_on(cancelled)? else {
                return Ok(Exit::Usage);
            };
            context
                .output
                .human(&format!("prewarm {id} of {environment} cancelled"));
            report_changes(context, &environment, &changes, "");
            Ok(Exit::Success)
        }
    }
}

fn create(
    args: ScheduleArgs,
    project: Project,
    context: &Context,
    clock: Arc<dyn Clock>,
) -> Result<Exit, Error> {
    let ScheduleArgs {
        environment,
        at,
        services,
        capacity,
        factor,
        rps,
        rps_per_replica,
        headroom,
        lead,
        hold,
        pause,
        dry_run,
        now,
    } = args;
    let environment = environment.unwrap_or_default();
    let rule = match (capacity, factor, rps) {
        (Some(n), _, _) => CapacityRule::Replicas(n),
        (_, Some(x), _) => CapacityRule::Factor(x),
        (_, _, Some(rps)) => CapacityRule::Rps {
            rps,
            per_replica: rps_per_replica.unwrap_or(0.0),
            headroom_percent: headroom.unwrap_or(0),
        },
        _ => CapacityRule::Replicas(0),
    };
    let at = at.map(|text| parse_at(&text)).transpose()?;
    let options = ScheduleOptions {
        project: project.clone(),
        environment: environment.clone(),
        at,
        services,
        rule,
        lead: lead.into(),
        hold: hold.into(),
        pause,
        dry_run,
        now,
        overrides: context.overrides.clone(),
    };
    let confirmation = prompt::confirmation(context);
    let runtime = super::runtime()?;
    let scheduled = prewarm::schedule(options, clock.clone(), &confirmation);
    let Scheduled::Planned {
        window,
        planned,
        changes,
        location,
        raised_by,
        stored,
    } = runtime.block_on(scheduled)?
    else {
        return Ok(Exit::Usage);
    };
    context.output.event(json!({"event": "prewarm_plan", "environment": environment, "window": window, "services": planned, "dry_run": dry_run}));
    context
        .output
        .human(&plan_text(&environment, &window, &planned));
    if !stored {
        context.output.human("dry run: nothing stored");
        return Ok(Exit::Success);
    }
    context.output.human(&match raised_by {
        RaisedBy::Apply => format!(
            "stored in {location}; `convoy prewarm apply --env {environment}` raises and restores it on time: run it every minute (cron or a CI schedule)"
        ),
        RaisedBy::ScheduledActions => format!(
            "stored in {location}; the groups' scheduled actions raise and restore it on time, and a deploy moves them to the new group"
        ),
    });
    report_changes(context, &environment, &changes, "");
    if now {
        context.output.human("waiting until the capacity is Ready…");
        let overrides = &context.overrides;
        let waited = prewarm::wait_ready(&project, &environment, overrides, &window, clock);
        runtime.block_on(waited)?;
        context.output.human("prewarmed capacity is Ready");
    }
    Ok(Exit::Success)
}

fn plan_text(environment: &str, window: &Window, planned: &[PlannedService]) -> String {
    let mut text = format!(
        "prewarm {} of {environment}: {} for the spike at {}{}\n  raise at {}, restore at {}\n",
        window.id,
        window.rule,
        local(window.at.timestamp(), &window.at),
        window
            .at
            .time_zone()
            .iana_name()
            .map(|z| format!(" ({z})"))
            .unwrap_or_default(),
        local(window.starts, &window.at),
        local(window.ends, &window.at),
    );
    let mut table = Table::new(["SERVICE", "NOW", "DURING", "NOTE"]);
    for p in planned {
        let note = match (p.paused, p.capped_from) {
            (true, _) => "paused (background work)".to_string(),
            (false, Some(asked)) => format!("capped by max_capacity (asked {asked})"),
            (false, None) => String::new(),
        };
        table.row([
            p.service.clone(),
            p.baseline.to_string(),
            p.during.to_string(),
            note,
        ]);
    }
    text.push_str(&table.to_string());
    text
}

fn report_changes(context: &Context, environment: &str, changes: &[Change], nothing: &str) {
    context
        .output
        .event(json!({"event": "prewarm_applied", "environment": environment, "changes": changes}));
    if changes.is_empty() {
        context.output.human(nothing);
        return;
    }
    let mut text = String::new();
    for change in changes {
        let why = match &change.reason {
            Reason::Raise(ids) => format!("raised for prewarm {}", ids.join(", ")),
            Reason::Pause(ids) => format!("paused for prewarm {}", ids.join(", ")),
            Reason::Restore => "restored".to_string(),
        };
        text.push_str(&format!(
            "{}: {} → {} ({why})\n",
            change.service, change.from, change.to
        ));
    }
    context.output.human(&text);
}

fn list(schedule: &Schedule, now: Timestamp, location: &str) -> String {
    if schedule.windows.is_empty() {
        return format!("no prewarm windows ({location})");
    }
    let mut table = Table::new(["ID", "STATE", "SPIKE", "RAISE", "RESTORE", "CAPACITY"]);
    for w in &schedule.windows {
        let state = if w.active(now) {
            "active"
        } else if w.ends <= now {
            "ended"
        } else {
            "upcoming"
        };
        let mut capacity: Vec<String> =
            w.capacity.iter().map(|(s, n)| format!("{s}={n}")).collect();
        capacity.extend(w.paused.iter().map(|s| format!("{s}=paused")));
        table.row([
            w.id.clone(),
            state.to_string(),
            local(w.at.timestamp(), &w.at),
            local(w.starts, &w.at),
            local(w.ends, &w.at),
            capacity.join(" "),
        ]);
    }
    table.to_string()
}
