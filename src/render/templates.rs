//! The Tera environment: built-in templates compiled into the binary, overridden or extended by
//! the project's own `templates/` directory (same relative name = override).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tera::{Kwargs, State, Tera};

use crate::diagnostic::Location;
use crate::render::error::RenderError;

/// Directory of a project's own templates, relative to its root.
pub const PROJECT_TEMPLATES: &str = "templates";

/// Built-in templates by name; the name's first segment is the target kind they belong to.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "kubernetes/configmap.yaml",
        include_str!("../../templates/kubernetes/configmap.yaml"),
    ),
    (
        "kubernetes/deployment.yaml",
        include_str!("../../templates/kubernetes/deployment.yaml"),
    ),
    (
        "kubernetes/hpa.yaml",
        include_str!("../../templates/kubernetes/hpa.yaml"),
    ),
    (
        "kubernetes/pdb.yaml",
        include_str!("../../templates/kubernetes/pdb.yaml"),
    ),
    (
        "kubernetes/secret.yaml",
        include_str!("../../templates/kubernetes/secret.yaml"),
    ),
    (
        "kubernetes/service.yaml",
        include_str!("../../templates/kubernetes/service.yaml"),
    ),
    (
        "aws/launch-template.yaml",
        include_str!("../../templates/aws/launch-template.yaml"),
    ),
    (
        "aws/user-data.sh",
        include_str!("../../templates/aws/user-data.sh"),
    ),
];

/// The compiled templates and where each one came from, for error locations.
pub struct Templates {
    tera: Tera,
    sources: BTreeMap<String, Source>,
}

struct Source {
    file: PathBuf,
    text: String,
}

impl Templates {
    /// Built-ins plus every file under `<root>/templates/<target>/` (the project's win on a clash).
    pub fn load(root: &Path, target: &str) -> Result<Templates, RenderError> {
        let mut sources = BTreeMap::new();
        for (name, text) in BUILT_IN {
            if name.starts_with(&format!("{target}/")) {
                let file = Path::new("<built-in>/templates").join(name);
                sources.insert(
                    name.to_string(),
                    Source {
                        file,
                        text: text.to_string(),
                    },
                );
            }
        }
        let dir = root.join(PROJECT_TEMPLATES).join(target);
        for path in files(&dir)? {
            let text =
                std::fs::read_to_string(&path).map_err(|source| RenderError::ReadTemplate {
                    path: path.clone(),
                    source,
                })?;
            let relative = path
                .strip_prefix(root.join(PROJECT_TEMPLATES))
                .unwrap_or(&path);
            let name = relative.to_string_lossy().replace('\\', "/");
            sources.insert(name, Source { file: path, text });
        }
        Templates::compile(sources)
    }

    fn compile(sources: BTreeMap<String, Source>) -> Result<Templates, RenderError> {
        let mut tera = Tera::new();
        tera.autoescape_on(Vec::<&str>::new());
        tera.register_filter("json", json);
        tera.register_filter("shell", shell);
        tera.register_filter("base64", base64);
        let mut templates = Templates {
            tera: Tera::new(),
            sources,
        };
        for (name, source) in &templates.sources {
            tera.add_raw_template(name, &source.text)
                .map_err(|error| templates.error(name, &error))?;
        }
        templates.tera = tera;
        Ok(templates)
    }

    /// sha256 of every template's name and text: the template set a revision was rendered with.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for (name, source) in &self.sources {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(source.text.as_bytes());
            hasher.update([0]);
        }
        hex::encode(hasher.finalize())
    }

    /// Template names in a stable order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.sources
            .get(name)
            .map(|s| s.file.clone())
            .unwrap_or_else(|| PathBuf::from(name))
    }

    /// The line of the template where `needle` first appears (1 when it does not).
    pub fn locate(&self, name: &str, needle: &str, key: &str) -> Location {
        let line = self
            .sources
            .get(name)
            .and_then(|s| s.text.lines().position(|l| l.contains(needle)))
            .map_or(1, |index| index + 1);
        Location::new(&self.file(name), line, 1, key)
    }

    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, RenderError> {
        self.tera
            .render(name, context)
            .map_err(|error| self.error(name, &error))
    }

    fn error(&self, name: &str, error: &tera::Error) -> RenderError {
        let (template, line, column, message) = match error.kind() {
            tera::ErrorKind::SyntaxError(report) | tera::ErrorKind::RenderingError(report) => {
                let template = if report.filename().is_empty() {
                    name
                } else {
                    report.filename()
                };
                let span = report.span();
                (
                    template.to_string(),
                    span.start_line.max(1),
                    span.start_col + 1,
                    report.message().to_string(),
                )
            }
            other => (name.to_string(), 1, 1, other.to_string()),
        };
        RenderError::Template {
            location: Location::new(&self.file(&template), line, column, ""),
            template,
            message,
        }
    }
}

/// `{{ value | json }}`: any value as JSON, which is also valid YAML, so no quoting mistakes.
/// Maps come out with their keys sorted: Tera's own maps iterate in a different order each run,
/// and a rendered object's text is part of its revision's digest.
fn json(value: tera::Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    let canonical = serde_json::to_value(&value).map_err(tera::Error::message)?;
    serde_json::to_string(&canonical).map_err(tera::Error::message)
}

/// `{{ value | shell }}`: one word for a POSIX shell, whatever it holds — single-quoted, each
/// `'` written `'\''` — so no newline, `$(…)`, quote or heredoc terminator can end it early.
fn shell(value: tera::Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    Ok(shell_quote(&text_of(&value)))
}

/// A string as it is, nothing as nothing, anything else as it displays.
fn text_of(value: &tera::Value) -> String {
    match value.as_str() {
        Some(text) => text.to_string(),
        None if value.is_none() || value.is_undefined() => String::new(),
        None => value.to_string(),
    }
}

/// `text` as one single-quoted shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `{{ text | base64 }}`: standard base64, whose alphabet needs no quoting anywhere.
fn base64(value: tera::Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    Ok(aws_smithy_types::base64::encode(text_of(&value).as_bytes()))
}

fn files(dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(source) => {
            return Err(RenderError::ReadTemplate {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let path = entry
            .map_err(|source| RenderError::ReadTemplate {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            found.extend(files(&path)?);
        } else {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(name: &str, text: &str) -> Result<Templates, RenderError> {
        let mut sources = BTreeMap::new();
        let file = PathBuf::from("templates").join(name);
        sources.insert(
            name.to_string(),
            Source {
                file,
                text: text.to_string(),
            },
        );
        Templates::compile(sources)
    }

    #[test]
    fn a_syntax_error_points_at_the_template_line() {
        let Err(error) = compile("kubernetes/x.yaml", "a: 1\nb: {{ oops \n") else {
            panic!("compiled a broken template");
        };
        let RenderError::Template { location, .. } = error else {
            panic!("{error:?}")
        };
        assert_eq!(location.file, Path::new("templates/kubernetes/x.yaml"));
        assert_eq!(location.line, 2);
    }

    #[test]
    fn json_filter_quotes_strings_safely() {
        let templates = compile("kubernetes/x.yaml", "a: {{ v | json }}").unwrap();
        let mut context = tera::Context::new();
        context.insert("v", "yes: no # x");
        assert_eq!(
            templates.render("kubernetes/x.yaml", &context).unwrap(),
            r#"a: "yes: no # x""#
        );
    }

    /// The user data's `aws.environment | json | base64` once differed between two renders of
    /// the same revision, so every deploy saw every service as changed.
    #[test]
    fn json_filter_sorts_map_keys_so_renders_are_identical() {
        let templates = compile("aws/z.sh", "{{ v | json }}").unwrap();
        let map: BTreeMap<String, u32> = (0..32).map(|n| (format!("K{n:02}"), n)).collect();
        let expected = serde_json::to_string(&map).unwrap();
        // Each context holds a new Tera map, with its own iteration order.
        for _ in 0..8 {
            let mut context = tera::Context::new();
            context.insert("v", &map);
            assert_eq!(templates.render("aws/z.sh", &context).unwrap(), expected);
        }
    }

    #[test]
    fn shell_filter_makes_one_word_of_anything() {
        let templates = compile("aws/x.sh", "echo {{ v | shell }}").unwrap();
        let mut context = tera::Context::new();
        context.insert("v", "it's $(id)\n`x`");
        assert_eq!(
            templates.render("aws/x.sh", &context).unwrap(),
            r"echo 'it'\''s $(id)
`x`'"
        );
        let templates = compile("aws/y.sh", "{{ v | json | base64 }}").unwrap();
        let mut context = tera::Context::new();
        context.insert("v", &BTreeMap::from([("A", "1")]));
        assert_eq!(
            templates.render("aws/y.sh", &context).unwrap(),
            aws_smithy_types::base64::encode(r#"{"A":"1"}"#)
        );
    }

    #[test]
    fn built_ins_compile() {
        for target in ["kubernetes", "aws"] {
            let templates = Templates::load(Path::new("/nonexistent"), target).unwrap();
            assert!(templates.names().count() >= 2);
        }
    }
}
