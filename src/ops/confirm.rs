//! Protected environments ask before they are changed: on a terminal a person answers; elsewhere
//! (CI) `--yes` must say so up front.

use crate::Error;
use crate::config::{ConfigErrors, Project};

/// Who answers a yes-or-no question.
pub trait Prompt: Send + Sync {
    /// Asks `question`; `None` when nobody can answer (no terminal).
    fn ask(&self, question: &str) -> Option<std::io::Result<bool>>;
}

/// How a command was told to confirm.
pub struct Confirmation<'a> {
    /// `--yes`: confirmed in advance.
    pub assume_yes: bool,
    pub prompt: &'a dyn Prompt,
}

/// Whether to go on changing `environment` (`what`: e.g. "Deploy to").
pub fn confirm(
    project: &Project,
    environment: &str,
    what: &str,
    confirmation: &Confirmation<'_>,
) -> Result<bool, Error> {
    let protected = project
        .environment(environment)
        .map_err(ConfigErrors::from)?
        .protected;
    if !protected || confirmation.assume_yes {
        return Ok(true);
    }
    match confirmation.prompt.ask(&format!("{what} `{environment}`?")) {
        Some(answer) => answer.map_err(Error::Output),
        None => Err(Error::Protected {
            environment: environment.to_string(),
        }),
    }
}

/// Answers yes to everything: for tests and callers that confirmed by other means.
pub struct Yes;

impl Prompt for Yes {
    fn ask(&self, _question: &str) -> Option<std::io::Result<bool>> {
        Some(Ok(true))
    }
}
