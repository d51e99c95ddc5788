//! `convoy check`: CI's dry run of every environment.

use clap::Args;

use super::Context;
use super::args::SetArgs;
use crate::diagnostic::Diagnose;
use crate::ops::check::{CheckOptions, EnvironmentCheck};
use crate::render::Severity;
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Environments to check [default: all]
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    #[command(flatten)]
    pub set: SetArgs,
    /// Fail on lint warnings too, not only on errors
    #[arg(long)]
    pub strict: bool,
    /// The version to render with [default: the project repository's HEAD commit, or `dev`]
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
}

pub fn run(args: CheckArgs, context: &Context) -> Result<Exit, Error> {
    let CheckArgs {
        environments,
        set: SetArgs { sets },
        strict,
        version,
    } = args;
    let project = context.load_project()?;
    let report = crate::ops::check::check(CheckOptions {
        project: &project,
        environments,
        sets: &sets,
        strict,
        version,
    })?;
    let mut table = Table::new(["ENVIRONMENT", "TARGET", "SERVICES", "OBJECTS", "RESULT"]);
    let mut findings = String::new();
    for checked in &report.environments {
        table.row(row(context, checked));
        for (service, finding) in &checked.findings {
            let name = &checked.environment;
            context.output.event(
                json!({"event": "finding", "environment": name, "service": service,
                "rule": finding.rule, "severity": finding.severity, "kind": finding.kind,
                "name": finding.name, "message": finding.message}),
            );
            findings.push_str(&format!(
                "{}[{}]: {name}/{service}: {} {}: {}\n",
                finding.severity, finding.rule, finding.kind, finding.name, finding.message
            ));
        }
    }
    context.output.human(&table.to_string());
    if !findings.is_empty() {
        context.output.human(&format!("\n{findings}"));
    }
    report.into_result()?;
    Ok(Exit::Success)
}

/// One environment's line of the table, and its events.
fn row(context: &Context, checked: &EnvironmentCheck) -> [String; 5] {
    let (errors, warnings) = (
        checked.count(Severity::Error),
        checked.count(Severity::Warning),
    );
    let problems = checked.problems.len();
    for error in &checked.problems {
        context.output.event(json!({"event": "problem", "environment": checked.environment,
            "message": error.to_string(), "location": Diagnose::location(error).map(ToString::to_string)}));
    }
    context.output.event(json!({
        "event": "checked", "environment": checked.environment, "target": checked.kind,
        "services": checked.services, "objects": checked.objects, "problems": problems,
        "lint_errors": errors, "warnings": warnings,
    }));
    let result = match (problems, errors, warnings) {
        (0, 0, 0) => "ok".to_string(),
        (0, e, w) => format!("{e} lint error(s), {w} warning(s)"),
        (p, _, _) => format!("{p} problem(s)"),
    };
    [
        checked.environment.clone(),
        checked.kind.to_string(),
        checked.services.to_string(),
        checked.objects.to_string(),
        result,
    ]
}
