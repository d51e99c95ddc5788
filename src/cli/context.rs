//! Settings shared by every command, resolved from the global flags: where the project is, how
//! to print, whether to ask, and the connection overrides.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Error;
use crate::config::{ConfigError, Project};
use crate::execute::Reporter;
use crate::report::{HumanReporter, JsonReporter, Output};

use super::{GlobalArgs, OutputFormat};

/// Settings shared by every command, resolved from the global flags.
pub struct Context {
    pub project_flag: Option<PathBuf>,
    pub output: Output,
    pub progress: bool,
    pub assume_yes: bool,
    pub verbose: u8,
    pub overrides: crate::targets::Overrides,
    /// Replaces the project's `artifacts.store` (a scratch bucket for the same project).
    pub artifact_store: Option<String>,
}

impl Context {
    pub(super) fn from_args(global: GlobalArgs) -> Self {
        let GlobalArgs {
            project,
            output,
            no_progress,
            yes,
            verbose,
            kube_context,
            namespace,
            artifact_store,
        } = global;
        Context {
            project_flag: project,
            output: Output::new(output == OutputFormat::Json),
            progress: !no_progress,
            assume_yes: yes,
            verbose,
            overrides: crate::targets::Overrides {
                kube_context,
                namespace,
            },
            artifact_store: artifact_store.filter(|s| !s.is_empty()),
        }
    }

    /// Finds and loads the project named by `--project`, or the nearest one.
    pub fn load_project(&self) -> Result<Project, Error> {
        let cwd = std::env::current_dir().map_err(|source| ConfigError::Read {
            path: PathBuf::from("."),
            source,
        });
        let cwd = cwd.map_err(crate::config::ConfigErrors::from)?;
        let file = Project::discover(self.project_flag.as_deref(), &cwd)
            .map_err(crate::config::ConfigErrors::from)?;
        let mut project = Project::load(&file)?;
        if let Some(store) = &self.artifact_store {
            project.artifact_store = store.clone();
        }
        Ok(project)
    }
}

impl Context {
    /// Where a long operation reports its progress: a terminal, or JSON lines.
    pub fn reporter(&self) -> Arc<dyn Reporter> {
        let clock = Arc::new(crate::execute::SystemClock);
        if self.output.is_json() {
            Arc::new(JsonReporter::new(clock))
        } else {
            Arc::new(HumanReporter::new(self.progress, clock))
        }
    }
}
