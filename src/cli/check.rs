//! `convoy check`: render and validate every service in every environment (or the ones named),
//! touching nothing and needing no secrets: CI's dry-run.

use clap::Args;

use super::Context;
use crate::config::ConfigErrors;
use crate::diagnostic::Diagnose;
use crate::render::{
    RenderError, RenderErrors, RenderInput, SecretMode, Severity, render_environment,
};
use crate::report::{Table, json};
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Environments to check [default: all]
    #[arg(long = "env", value_name = "ENV")]
    pub environments: Vec<String>,
    /// Override a value in every service, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Fail on lint warnings too, not only on errors
    #[arg(long)]
    pub strict: bool,
    /// The version to render with [default: the project repository's HEAD commit, or `dev`]
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
}

pub fn run(args: CheckArgs, context: &Context) -> Result<Exit, Error> {
    let CheckArgs {
        environments,
        sets,
        strict,
        version,
    } = args;
    let project = context.load_project()?;
    let environments: Vec<String> = if environments.is_empty() {
        project.environments.keys().cloned().collect()
    } else {
        for name in &environments {
            project.environment(name).map_err(ConfigErrors::from)?;
        }
        environments
    };
    let versions = super::render::versions(&project, version);

    let mut tally = Tally::default();
    let mut table = Table::new(["ENVIRONMENT", "TARGET", "SERVICES", "OBJECTS", "RESULT"]);
    for name in &environments {
        let environment = project.environment(name).map_err(ConfigErrors::from)?;
        let input = RenderInput {
            project: &project,
            environment: name,
            services: &[],
            versions: &versions,
            sets: &sets,
            release: 0,
            secrets: SecretMode::Mask,
        };
        let (before_errors, before_warnings) = (tally.lint_errors, tally.warnings);
        let (problems, objects) = check_environment(&input, context, &mut tally);
        let found = (
            tally.lint_errors - before_errors,
            tally.warnings - before_warnings,
        );
        let result = match (problems, found) {
            (0, (0, 0)) => "ok".to_string(),
            (0, (e, w)) => format!("{e} lint error(s), {w} warning(s)"),
            (p, _) => format!("{p} problem(s)"),
        };
        context.output.event(json!({
            "event": "checked", "environment": name, "target": environment.target.kind(),
            "services": project.services.len(), "objects": objects, "problems": problems,
            "lint_errors": found.0, "warnings": found.1,
        }));
        table.row([
            name.clone(),
            environment.target.kind().to_string(),
            project.services.len().to_string(),
            objects.to_string(),
            result,
        ]);
    }
    let Tally {
        mut errors,
        lint_errors,
        warnings,
        findings_text,
    } = tally;
    context.output.human(&table.to_string());
    if !findings_text.is_empty() {
        context.output.human(&format!("\n{findings_text}"));
    }
    if lint_errors > 0 || (strict && warnings > 0) {
        errors.push(RenderError::Lints {
            errors: lint_errors,
            warnings,
            strict,
        });
    }
    if errors.is_empty() {
        Ok(Exit::Success)
    } else {
        Err(RenderErrors(errors).into())
    }
}

/// What every environment's check adds up to.
#[derive(Default)]
struct Tally {
    errors: Vec<RenderError>,
    lint_errors: usize,
    warnings: usize,
    findings_text: String,
}

/// Renders one environment into `tally`; returns its number of problems and of objects.
fn check_environment(
    input: &RenderInput<'_>,
    context: &Context,
    tally: &mut Tally,
) -> (usize, usize) {
    let name = input.environment;
    match render_environment(input) {
        Ok(rendered) => {
            for (service, finding) in rendered.findings() {
                match finding.severity {
                    Severity::Error => tally.lint_errors += 1,
                    Severity::Warning => tally.warnings += 1,
                }
                context.output.event(
                    json!({"event": "finding", "environment": name, "service": service,
                    "rule": finding.rule, "severity": finding.severity, "kind": finding.kind,
                    "name": finding.name, "message": finding.message}),
                );
                tally.findings_text.push_str(&format!(
                    "{}[{}]: {name}/{service}: {} {}: {}\n",
                    finding.severity, finding.rule, finding.kind, finding.name, finding.message
                ));
            }
            (0, rendered.services.iter().map(|s| s.manifests.len()).sum())
        }
        Err(RenderErrors(found)) => {
            for error in &found {
                context.output.event(
                    json!({"event": "problem", "environment": name, "message": error.to_string(),
                    "location": Diagnose::location(error).map(ToString::to_string)}),
                );
            }
            let count = found.len();
            tally.errors.extend(found);
            (count, 0)
        }
    }
}
