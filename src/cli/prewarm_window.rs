//! `convoy prewarm --env E --at TIME …`: a new window, shown as a plan first, stored, and with
//! `--now` raised at once and waited for.

use std::sync::Arc;

use clap::{ArgGroup, Args};

use super::prewarm::report_changes;
use super::{Context, prompt};
use crate::config::Project;
use crate::execute::Clock;
use crate::ops::prewarm::{self, ScheduleOptions, Scheduled};
use crate::ops::prewarm_at::parse_at;
use crate::plan::prewarm::CapacityRule;
use crate::report::{self, json};
use crate::targets::prewarm::RaisedBy;
use crate::{Error, Exit};

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

fn percent(text: &str) -> Result<u32, String> {
    text.trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage such as 30%"))
}

pub(super) fn create(
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
        .human(&report::prewarm::plan(&environment, &window, &planned));
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
