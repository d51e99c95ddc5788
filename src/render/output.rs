//! Output forms of a rendered environment: one YAML stream, or one file per object.

use crate::render::{Finding, Rendered, emit};

impl Rendered {
    /// All manifests as one `---`-separated YAML stream, in a stable order.
    pub fn to_yaml_stream(&self) -> String {
        let mut out = String::new();
        for service in &self.services {
            for manifest in &service.manifests {
                out.push_str("---\n");
                out.push_str(&format!("# {}: {}\n", service.service, manifest.template));
                if manifest.object.is_none() && manifest.document.is_string() {
                    // user-data is a script, not YAML: carry it as a block so the stream stays YAML.
                    out.push_str(&emit::to_yaml(&serde_json::json!({"kind": manifest.kind, "name": manifest.name, "script": manifest.text})));
                } else {
                    out.push_str(&manifest.text);
                }
            }
        }
        out
    }

    /// Stable relative file names for `--out DIR`: `<service>/<kind>-<name>.<ext>`.
    pub fn files(&self) -> Vec<(String, &str)> {
        let mut files = Vec::new();
        for service in &self.services {
            for manifest in &service.manifests {
                let extension = if manifest.document.is_string() {
                    "sh"
                } else {
                    "yaml"
                };
                let file = format!(
                    "{}/{}-{}.{extension}",
                    service.service,
                    manifest.kind.to_lowercase(),
                    manifest.name
                );
                files.push((file, manifest.text.as_str()));
            }
        }
        files
    }

    pub fn findings(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.services
            .iter()
            .flat_map(|s| s.findings.iter().map(move |f| (s.service.as_str(), f)))
    }
}
