//! Flags several commands share, defined once and flattened into each.

use clap::Args;

/// `--env ENV`: the environment a command works on.
#[derive(Debug, Args)]
pub struct EnvArg {
    /// The environment
    #[arg(long = "env", value_name = "ENV")]
    pub environment: String,
}

/// `--ref REV`: which commit's versions.
#[derive(Debug, Args)]
pub struct RefArg {
    /// The git revision (branch, tag, commit); uncommitted changes never count
    #[arg(long = "ref", value_name = "REV", default_value = "HEAD")]
    pub rev: String,
}

/// `--set KEY=VALUE`, repeatable: values that override every layer.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Override a value, e.g. `--set replicas=3` (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}
