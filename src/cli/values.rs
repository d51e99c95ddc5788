//! `convoy values`: the merged values of one service in one environment, secrets masked.

use clap::Args;

use super::Context;
use crate::config::{ConfigError, ConfigErrors, Values};
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct ValuesArgs {
    /// The environment
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
    /// The service
    #[arg(long, value_name = "SERVICE")]
    pub service: String,
    /// Show one dotted key, which file and line set it, and which layers it overrode
    #[arg(long, value_name = "KEY")]
    pub explain: Option<String>,
    /// Override a value, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

pub fn run(args: ValuesArgs, context: &Context) -> Result<Exit, Error> {
    let ValuesArgs {
        environment,
        service,
        explain,
        sets,
    } = args;
    let project = context.load_project()?;
    let values = Values::layer(&project, &environment, &service, &sets)?;
    let Some(key) = explain else {
        let masked = values.masked();
        context.output.event(json!({"event": "values", "environment": environment, "service": service, "values": masked}));
        context.output.human(&crate::report::yaml(&masked));
        return Ok(Exit::Success);
    };
    let explanation = values.explain(&key).ok_or_else(|| {
        ConfigErrors::from(ConfigError::NoSuchValue {
            key: key.clone(),
            service: service.clone(),
            environment: environment.clone(),
        })
    })?;
    let origins: Vec<String> = explanation
        .origins
        .iter()
        .map(ToString::to_string)
        .collect();
    context.output.event(
        json!({"event": "explain", "key": key, "value": explanation.value, "origins": origins}),
    );
    let mut text = format!(
        "{key} = {}",
        crate::report::yaml(&explanation.value).trim_end()
    );
    text.push('\n');
    let merged = explanation.value.is_mapping();
    for (index, origin) in explanation.origins.iter().rev().enumerate() {
        let verb = match (merged, index) {
            (true, _) => "merged from",
            (false, 0) => "set by  ",
            (false, _) => "overrode",
        };
        text.push_str(&format!("  {verb} {origin}\n"));
    }
    context.output.human(&text);
    Ok(Exit::Success)
}
