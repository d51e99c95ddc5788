//! `convoy check`: render and validate every service in every environment (or the ones named),
//! touching nothing and needing no secrets: CI's dry run. Lint errors fail the check; warnings
//! fail it too in strict mode.

use crate::Error;
use crate::config::{ConfigErrors, Project};
use crate::ops::render::versions;
use crate::render::{
    Finding, RenderError, RenderErrors, RenderInput, SecretMode, Severity, render_environment,
};

pub struct CheckOptions<'a> {
    pub project: &'a Project,
    /// Environments to check; empty means all.
    pub environments: Vec<String>,
    pub sets: &'a [String],
    /// Warnings fail the check too.
    pub strict: bool,
    pub version: Option<String>,
}

/// One environment's result.
pub struct EnvironmentCheck {
    pub environment: String,
    pub kind: &'static str,
    pub services: usize,
    pub objects: usize,
    /// What stopped rendering (nothing to lint then).
    pub problems: Vec<RenderError>,
    pub findings: Vec<(String, Finding)>,
}

impl EnvironmentCheck {
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|(_, f)| f.severity == severity)
            .count()
    }
}

pub struct CheckReport {
    pub environments: Vec<EnvironmentCheck>,
    pub strict: bool,
}

impl CheckReport {
    /// The verdict: every problem, plus lint errors always and warnings in strict mode.
    pub fn into_result(self) -> Result<(), RenderErrors> {
        let count =
            |severity| -> usize { self.environments.iter().map(|c| c.count(severity)).sum() };
        let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
        let mut found: Vec<RenderError> = self
            .environments
            .into_iter()
            .flat_map(|c| c.problems)
            .collect();
        if errors > 0 || (self.strict && warnings > 0) {
            found.push(RenderError::Lints {
                errors,
                warnings,
                strict: self.strict,
            });
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(RenderErrors(found))
        }
    }
}

pub fn check(options: CheckOptions<'_>) -> Result<CheckReport, Error> {
    let CheckOptions {
        project,
        environments,
        sets,
        strict,
        version,
    } = options;
    let names: Vec<String> = if environments.is_empty() {
        project.environments.keys().cloned().collect()
    } else {
        for name in &environments {
            project.environment(name).map_err(ConfigErrors::from)?;
        }
        environments
    };
    let versions = versions(project, version);
    let mut checked = Vec::new();
    for name in names {
        let kind = project
            .environment(&name)
            .map_err(ConfigErrors::from)?
            .target
            .kind();
        let input = RenderInput {
            project,
            environment: &name,
            services: &[],
            versions: &versions,
            sets,
            release: 0,
            secrets: SecretMode::Mask,
            namespace: None,
        };
        let (problems, findings, objects) = match render_environment(&input) {
            Ok(rendered) => {
                let objects = rendered.services.iter().map(|s| s.manifests.len()).sum();
                let findings = rendered
                    .findings()
                    .map(|(service, finding)| (service.to_string(), finding.clone()))
                    .collect();
                (Vec::new(), findings, objects)
            }
            Err(RenderErrors(found)) => (found, Vec::new(), 0),
        };
        checked.push(EnvironmentCheck {
            environment: name,
            kind,
            services: project.services.len(),
            objects,
            problems,
            findings,
        });
    }
    Ok(CheckReport {
        environments: checked,
        strict,
    })
}
