//! `convoy values`: the merged values of one service in one environment, secrets masked, or one
//! key with the files and lines that set it.

use crate::Error;
use crate::config::values::Explanation;
use crate::config::{ConfigError, ConfigErrors, Project, Values};

pub enum Shown {
    /// Every value, secrets masked.
    All(yaml_serde::Value),
    /// One key: its value and where it came from.
    Explained(Explanation),
}

pub fn values(
    project: &Project,
    environment: &str,
    service: &str,
    sets: &[String],
    explain: Option<String>,
) -> Result<Shown, Error> {
    let values = Values::layer(project, environment, service, sets)?;
    let Some(key) = explain else {
        return Ok(Shown::All(values.masked()));
    };
    let explanation = values.explain(&key).ok_or_else(|| {
        ConfigErrors::from(ConfigError::NoSuchValue {
            key: key.clone(),
            service: service.to_string(),
            environment: environment.to_string(),
        })
    })?;
    Ok(Shown::Explained(explanation))
}
