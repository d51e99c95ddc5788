//! `convoy check`: render and validate every service in every environment (or the ones named),
//! touching nothing and needing no secrets: CI's dry-run.

use clap::Args;

use super::Context;
use crate::config::ConfigErrors;
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

    let mut errors = Vec::new();
    let (mut lint_errors, mut warnings) = (0, 0);
    let mut findings_text = String::new();
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
        let (problems, objects, found) = match render_environment(&input) {
            Ok(rendered) => {
                let objects: usize = rendered.services.iter().map(|s| s.manifests.len()).sum();
                let mut found = (0, 0);
                for (service, finding) in rendered.findings() {
                    match finding.severity {
                        Severity::Error => found.0 += 1,
                        Severity::Warning => found.1 += 1,
                    }
                    context.output.event(
                        json!({"event": "finding", "environment": name, "service": service,
                        "rule": finding.rule, "severity": finding.severity, "kind": finding.kind,
                        "name": finding.name, "message": finding.message}),
                    );
                    let severity = finding.severity;
                    findings_text.push_str(&format!(
                        "{severity}[{}]: {name}/{service}: {} {}: {}\n",
                        finding.rule, finding.kind, finding.name, finding.message
                    ));
                }
                (0, objects, found)
            }
            Err(RenderErrors(found)) => {
                for error in &found {
                    context.output.event(json!({"event": "problem", "environment": name, "message": error.to_string(),
                        "location": crate::diagnostic::Diagnose::location(error).map(ToString::to_string)}));
                }
                let count = found.len();
                errors.extend(found);
                (count, 0, (0, 0))
            }
        };
        lint_errors += found.0;
        warnings += found.1;
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
