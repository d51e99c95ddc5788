//! `convoy prewarm`: schedule a window of raised capacity before a known spike, `apply` what is
//! due (from cron), `list` and `cancel` windows. Which services are raised and which paused is
//! decided here; the window's arithmetic is the planner's (`plan::prewarm`).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{Timestamp, Zoned};

use crate::Error;
use crate::config::{ConfigErrors, Project};
use crate::execute::Clock;
use crate::ops::confirm::{Confirmation, confirm};
use crate::ops::rollout::services;
use crate::plan::prewarm::{
    CapacityRule, Change, PlannedService, PrewarmRequest, Schedule, Window,
};
use crate::targets::Overrides;
use crate::targets::prewarm::{self, Capacity, Prewarmer, RaisedBy};

pub struct ScheduleOptions {
    pub project: Project,
    pub environment: String,
    /// When the spike starts; `None` with `now`.
    pub at: Option<Zoned>,
    /// Services to raise; empty means every request-path service that runs.
    pub services: Vec<String>,
    pub rule: CapacityRule,
    pub lead: std::time::Duration,
    pub hold: std::time::Duration,
    /// Background services to pause besides those marked `background`.
    pub pause: Vec<String>,
    pub dry_run: bool,
    /// The window starts now (then [`wait_ready`] waits for its capacity).
    pub now: bool,
    pub overrides: Overrides,
}

pub enum Scheduled {
    Declined,
    Planned {
        window: Box<Window>,
        planned: Vec<PlannedService>,
        /// Changes made at once (the window may already be due); empty for a dry run.
        changes: Vec<Change>,
        /// Where the schedule is kept, and what raises it on time.
        location: String,
        raised_by: RaisedBy,
        stored: bool,
    },
}

/// Plans a window, stores it unless `dry_run`, makes what is due effective, and with `now`
/// waits until the raised capacity is Ready.
pub async fn schedule(
    options: ScheduleOptions,
    clock: Arc<dyn Clock>,
    confirmation: &Confirmation<'_>,
) -> Result<Scheduled, Error> {
    let ScheduleOptions {
        project,
        environment,
        at,
        services: named,
        rule,
        lead,
        hold,
        pause,
        dry_run,
        now: starts_now,
        overrides,
    } = options;
    let env = project
        .environment(&environment)
        .map_err(ConfigErrors::from)?;
    let now = clock.now();
    let at = at.unwrap_or_else(|| now.to_zoned(jiff::tz::TimeZone::system()));
    if !dry_run && !confirm(&project, &environment, "Prewarm", confirmation)? {
        return Ok(Scheduled::Declined);
    }
    let prewarmer = prewarmer(&project, &environment, &overrides).await?;
    let all: Vec<String> = project.services.keys().cloned().collect();
    let running = prewarmer.levels(&all).await?;
    let (raised, paused) = chosen(&project, &named, &pause, &running)?;
    let request = PrewarmRequest {
        environment: environment.clone(),
        at,
        lead,
        hold,
        rule,
        services: raised,
        paused,
        max_capacity: env.rollout.max_capacity,
        starts_now,
    };
    let scheduled = prewarm::schedule(prewarmer.as_ref(), &request, now, dry_run).await?;
    Ok(Scheduled::Planned {
        window: Box::new(scheduled.window),
        planned: scheduled.planned,
        changes: scheduled.changes,
        location: prewarmer.location(),
        raised_by: prewarmer.raised_by(),
        stored: !dry_run,
    })
}

/// `--now`: waits, within the environment's provision budget, until the capacity `window`
/// raised is Ready.
pub async fn wait_ready(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
    window: &Window,
    clock: Arc<dyn Clock>,
) -> Result<(), Error> {
    let budget = project
        .environment(environment)
        .map_err(ConfigErrors::from)?
        .rollout
        .provision_timeout
        .0;
    let prewarmer = prewarmer(project, environment, overrides).await?;
    Ok(prewarm::wait_raised(prewarmer.as_ref(), window, clock, budget).await?)
}

/// `convoy prewarm apply`: raises or restores whatever is due at `now`.
pub async fn apply(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
    now: Timestamp,
) -> Result<Vec<Change>, Error> {
    let prewarmer = prewarmer(project, environment, overrides).await?;
    let stored = prewarmer.load().await?;
    Ok(prewarmer.enforce(stored, now).await?)
}

/// `convoy prewarm list`: the stored windows and where they are kept.
pub async fn list(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<(Schedule, String), Error> {
    let prewarmer = prewarmer(project, environment, overrides).await?;
    let stored = prewarmer.load().await?;
    Ok((stored.schedule, prewarmer.location()))
}

/// `convoy prewarm cancel`: drops the window and gives its capacity back at once; `None` when
/// the person asked said no.
pub async fn cancel(
    project: &Project,
    environment: &str,
    id: &str,
    overrides: &Overrides,
    now: Timestamp,
    confirmation: &Confirmation<'_>,
) -> Result<Option<Vec<Change>>, Error> {
    if !confirm(project, environment, "Cancel a prewarm of", confirmation)? {
        return Ok(None);
    }
    let prewarmer = prewarmer(project, environment, overrides).await?;
    Ok(Some(
        prewarm::cancel(prewarmer.as_ref(), environment, id, now).await?,
    ))
}

async fn prewarmer(
    project: &Project,
    environment: &str,
    overrides: &Overrides,
) -> Result<Arc<dyn Prewarmer>, Error> {
    let backend = crate::targets::open(project, environment, overrides).await?;
    Ok(backend.prewarmer().await?)
}

/// The services to raise and to pause: as named, else every request-path service that runs;
/// background services (and `--pause`) paused.
fn chosen(
    project: &Project,
    named: &[String],
    pause: &[String],
    running: &BTreeMap<String, Capacity>,
) -> Result<(Vec<String>, Vec<String>), Error> {
    services(project, named)?;
    services(project, pause)?;
    let background = |s: &String| project.services.get(s).is_some_and(|s| s.background);
    let raised: Vec<String> = if named.is_empty() {
        project
            .services
            .keys()
            .filter(|s| !background(s) && !pause.contains(s) && running.contains_key(*s))
            .cloned()
            .collect()
    } else {
        named.to_vec()
    };
    let mut paused: Vec<String> = pause.to_vec();
    paused.extend(
        project
            .services
            .keys()
            .filter(|s| background(s) && !named.contains(s) && running.contains_key(*s))
            .filter(|s| !pause.contains(s))
            .cloned(),
    );
    Ok((raised, paused))
}
