//! The service's environment on an EC2 instance: its configuration (from user data, a JSON
//! object carried as base64) and its secrets (from SSM), written as a file only root can read
//! (mode 0600, created fresh and renamed into place, never through a link) for the service's
//! own units to load (`EnvironmentFile=`, or `. FILE` in a shell), and handed to the hooks and
//! the health command with the secrets masked in whatever they print.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::render::templates::shell_quote;
use crate::targets::host::CommandEnv;

/// The decoded `--env-base64`: names to values.
pub fn decode(base64: &str) -> Result<BTreeMap<String, String>, String> {
    let bytes = aws_smithy_types::base64::decode(base64.trim())
        .map_err(|e| format!("the environment is not base64: {e}"))?;
    let values: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the environment is not a JSON object: {e}"))?;
    let mut found = BTreeMap::new();
    for (name, value) in values {
        if let Some(reason) = name_problem(&name) {
            return Err(format!("environment variable `{name}`: {reason}"));
        }
        let text = match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        found.insert(name, text);
    }
    Ok(found)
}

fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Some("a name must start with a letter or `_`");
    }
    (!name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some("a name is letters, digits and `_`")
}

/// Configuration and secrets as the hooks' environment; a secret wins over a value of the same
/// name, and every secret is masked in the hooks' output.
pub fn command_env(
    config: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) -> Result<CommandEnv, String> {
    for name in secrets.keys() {
        if let Some(reason) = name_problem(name) {
            return Err(format!("secret `{name}`: {reason}"));
        }
    }
    let mut all = config.clone();
    all.extend(secrets.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(CommandEnv {
        vars: all.into_iter().collect(),
        secrets: secrets.values().cloned().collect(),
        // The agent's hooks see the machine's environment, as on any host.
        pass: None,
    })
}

/// Opens the line naming the variables that are secrets, so a later reader of the file
/// (`convoy host task`) masks them as the agent did; a comment to `EnvironmentFile=` and `sh`.
const SECRETS_LINE: &str = "# convoy secrets:";

/// `NAME='value'` lines, each value one single-quoted word (newlines and quotes kept exactly),
/// after a comment naming the variables that hold secrets.
pub fn render(env: &CommandEnv) -> String {
    let secret_names: Vec<&str> = env
        .vars
        .iter()
        .filter(|(_, value)| env.secrets.contains(value))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut text = String::new();
    if !secret_names.is_empty() {
        text.push_str(&format!("{SECRETS_LINE} {}\n", secret_names.join(" ")));
    }
    for (name, value) in &env.vars {
        text.push_str(&format!("{name}={}\n", shell_quote(value)));
    }
    text
}

/// The environment a file of [`render`] holds, its secrets known again (the machine's own
/// environment passes through, as for the agent's hooks).
pub fn parse(text: &str) -> Result<CommandEnv, String> {
    let mut vars = Vec::new();
    let mut secret_names: Vec<String> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(line) = rest.strip_prefix(SECRETS_LINE) {
            let (names, after) = line.split_once('\n').unwrap_or((line, ""));
            secret_names.extend(names.split_whitespace().map(str::to_string));
            rest = after;
            continue;
        }
        if let Some(after) = rest.strip_prefix('\n') {
            rest = after;
            continue;
        }
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("a line without `=`: {}", rest.lines().next().unwrap_or("")))?;
        if let Some(reason) = name_problem(name) {
            return Err(format!("environment variable `{name}`: {reason}"));
        }
        let (value, after) =
            unquote(after).ok_or_else(|| format!("`{name}`: not one quoted word"))?;
        vars.push((name.to_string(), value));
        rest = after;
    }
    let secrets = vars
        .iter()
        .filter(|(name, _)| secret_names.contains(name))
        .map(|(_, value)| value.clone())
        .collect();
    Ok(CommandEnv {
        vars,
        secrets,
        pass: None,
    })
}

/// One word of `shell_quote` (`'…'` pieces joined by `\'`) up to the end of its line: the
/// value, and what follows the line.
fn unquote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        if let Some(after) = rest.strip_prefix('\'') {
            let end = after.find('\'')?;
            value.push_str(&after[..end]);
            rest = &after[end + 1..];
        } else if let Some(after) = rest.strip_prefix("\\'") {
            value.push('\'');
            rest = after;
        } else if rest.is_empty() {
            return Some((value, rest));
        } else if let Some(after) = rest.strip_prefix('\n') {
            return Some((value, after));
        } else {
            return None;
        }
    }
}

/// Writes `text` to `path` with mode 0600: a new file beside it (`O_CREAT|O_EXCL`, which never
/// opens an existing name and never follows a link), synced, then renamed over the old one.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("env");
    let partial = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(error) = written.and_then(|()| std::fs::rename(&partial, path)) {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_environment_round_trips_through_base64_and_a_private_file() {
        let config = BTreeMap::from([
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("GREETING".to_string(), "it's $(id)\nCONVOY_ENV".to_string()),
        ]);
        let json = serde_json::to_string(&config).unwrap();
        let decoded = decode(&aws_smithy_types::base64::encode(json)).unwrap();
        assert_eq!(decoded, config);
        let secrets = BTreeMap::from([("DB_PASSWORD".to_string(), "p'w".to_string())]);
        let env = command_env(&decoded, &secrets).unwrap();
        assert_eq!(env.secrets, vec!["p'w".to_string()]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etc/api.env");
        write_private(&file, &render(&env)).unwrap();
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The shell reads back exactly the values, and runs none of them.
        let script = format!(
            ". '{}'; printf '%s|%s|%s' \"$GREETING\" \"$DB_PASSWORD\" \"$LOG_LEVEL\"",
            file.display()
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "it's $(id)\nCONVOY_ENV|p'w|info"
        );
    }

    #[test]
    fn the_file_reads_back_with_its_secrets_known() {
        let config = BTreeMap::from([
            ("LOG_LEVEL".to_string(), "info".to_string()),
            ("GREETING".to_string(), "it's\n'quoted' $(id)".to_string()),
        ]);
        let secrets = BTreeMap::from([("DB_PASSWORD".to_string(), "p'w\nx".to_string())]);
        let env = command_env(&config, &secrets).unwrap();
        let text = render(&env);
        assert!(
            text.starts_with("# convoy secrets: DB_PASSWORD\n"),
            "{text}"
        );
        let read = parse(&text).unwrap();
        assert_eq!(read.vars, env.vars);
        assert_eq!(read.secrets, vec!["p'w\nx".to_string()]);
        assert!(parse("A=unquoted\n").is_err());
    }

    #[test]
    fn bad_names_and_bad_encodings_are_refused() {
        let bad = aws_smithy_types::base64::encode(r#"{"A B": "x"}"#);
        assert!(decode(&bad).unwrap_err().contains("`A B`"));
        assert!(decode("%%%").unwrap_err().contains("base64"));
        let secrets = BTreeMap::from([("1X".to_string(), "v".to_string())]);
        assert!(command_env(&BTreeMap::new(), &secrets).is_err());
    }

    #[test]
    fn a_link_in_the_way_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "untouched").unwrap();
        let file = dir.path().join("api.env");
        std::os::unix::fs::symlink(&outside, &file).unwrap();
        write_private(&file, "A='1'\n").unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched");
        assert!(
            !std::fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
