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
fn json(value: tera::Value, _: Kwargs, _: &State) -> tera::TeraResult<String> {
    serde_json::to_string(&value).map_err(tera::Error::message)
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

    #[test]
    fn built_ins_compile() {
        for target in ["kubernetes", "aws"] {
            let templates = Templates::load(Path::new("/nonexistent"), target).unwrap();
            assert!(templates.names().count() >= 2);
        }
    }
}
