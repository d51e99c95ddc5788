//! `convoy values`.

use clap::Args;

use super::Context;
use super::args::{EnvArg, SetArgs};
use crate::ops::values::Shown;
use crate::report::json;
use crate::{Error, Exit};

#[derive(Debug, Args)]
pub struct ValuesArgs {
    #[command(flatten)]
    pub env: EnvArg,
    /// The service
    #[arg(long, value_name = "SERVICE")]
    pub service: String,
    /// Show one dotted key, which file and line set it, and which layers it overrode
    #[arg(long, value_name = "KEY")]
    pub explain: Option<String>,
    #[command(flatten)]
    pub set: SetArgs,
}

pub fn run(args: ValuesArgs, context: &Context) -> Result<Exit, Error> {
    let ValuesArgs {
        env: EnvArg { environment },
        service,
        explain,
        set: SetArgs { sets },
    } = args;
    let project = context.load_project()?;
    match crate::ops::values::values(&project, &environment, &service, &sets, explain)? {
        Shown::All(masked) => {
            context.output.event(json!({"event": "values", "environment": environment, "service": service, "values": masked}));
            context.output.human(&crate::report::yaml(&masked));
        }
        Shown::Explained(explanation) => {
            let origins: Vec<String> = explanation
                .origins
                .iter()
                .map(ToString::to_string)
                .collect();
            context.output.event(json!({"event": "explain", "key": explanation.key, "value": explanation.value, "origins": origins}));
            let value = crate::report::yaml(&explanation.value);
            let mut text = format!("{} = {}\n", explanation.key, value.trim_end());
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
        }
    }
    Ok(Exit::Success)
}
