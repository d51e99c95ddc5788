//! The environment of the commands Convoy runs for a service from a project — build recipes,
//! hooks, health commands and `health.check` commands: not the deployer's whole environment
//! (which holds cloud credentials and the secrets values are read from), but `PATH`, `HOME`,
//! the `CONVOY_*` variables Convoy sets, and the variables the service lists in `env:`.

/// Taken from Convoy's own environment when set.
pub const BASE_VARIABLES: &[&str] = &["PATH", "HOME"];

/// Used when Convoy itself has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `PATH`, `HOME` and each of `declared` that is set in Convoy's environment, in that order.
/// The caller adds its `CONVOY_*` variables after these (they win over a declared one).
pub fn minimal_environment(declared: &[String]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for name in BASE_VARIABLES
        .iter()
        .copied()
        .chain(declared.iter().map(String::as_str))
    {
        if vars.iter().any(|(n, _)| n == name) {
            continue;
        }
        if let Some(value) = std::env::var_os(name) {
            vars.push((name.to_string(), value.to_string_lossy().into_owned()));
        } else if name == "PATH" {
            vars.push((name.to_string(), DEFAULT_PATH.to_string()));
        }
    }
    vars
}
