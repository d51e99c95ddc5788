//! `convoy check`: validate the project and every environment's values, touching nothing.

use clap::Args;

use super::Context;
use crate::config::{ConfigErrors, Values};
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
}

pub fn run(args: CheckArgs, context: &Context) -> Result<Exit, Error> {
    let CheckArgs { environments, sets } = args;
    let project = context.load_project()?;
    let environments: Vec<String> = if environments.is_empty() {
        project.environments.keys().cloned().collect()
    } else {
        for name in &environments {
            project.environment(name).map_err(ConfigErrors::from)?;
        }
        environments
    };

    let mut errors = Vec::new();
    let mut table = Table::new(["ENVIRONMENT", "TARGET", "SERVICES", "RESULT"]);
    for name in &environments {
        let environment = project.environment(name).map_err(ConfigErrors::from)?;
        let mut problems = 0;
        for service in project.services.keys() {
            if let Err(ConfigErrors(found)) = Values::layer(&project, name, service, &sets) {
                problems += found.len();
                errors.extend(found);
            }
        }
        let result = if problems == 0 {
            "ok".to_string()
        } else {
            format!("{problems} problem(s)")
        };
        context.output.event(json!({
            "event": "checked", "environment": name, "target": environment.target.kind(),
            "services": project.services.len(), "problems": problems,
        }));
        table.row([
            name.clone(),
            environment.target.kind().to_string(),
            project.services.len().to_string(),
            result,
        ]);
    }
    context.output.human(&table.to_string());
    if errors.is_empty() {
        Ok(Exit::Success)
    } else {
        Err(ConfigErrors(errors).into())
    }
}
