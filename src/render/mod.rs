//! Renders per-environment manifests with Tera, validates them as typed objects and lints them.
//! No I/O beyond reading the project's templates and, when revealing, its secrets.
//!
//! Kubernetes environments get the k8s objects, AWS environments the launch-template data and
//! user-data, host environments only their values (nothing to render, but still validated).

pub mod context;
pub mod emit;
mod error;
pub mod lint;
mod output;
pub mod resolved;
pub mod revision;
pub mod secrets;
pub mod strict;
pub mod templates;
pub mod validate;

use std::collections::BTreeMap;

use crate::config::{Project, Target, Values};

pub use context::{RenderContext, flags_config_map};
pub use error::{RenderError, RenderErrors};
pub use lint::{Finding, Severity};
pub use resolved::{ResolvedValues, resolve_values};
pub use validate::TypedObject;

use templates::Templates;
use validate::Origin;

/// Whether secret values appear in clear text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMode {
    Mask,
    Reveal,
}

/// What runs of one service: its artifact (version, commit, digest) and, once a rollout has
/// worked it out, the revision — the version plus a digest of its configuration — which names
/// its objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceVersion {
    pub version: String,
    pub commit: String,
    pub artifact_sha256: Option<String>,
    /// `<version>-<config digest>`; `None` renders by version alone (`render`, `check`, and
    /// the render that the configuration digest is taken of).
    pub revision: Option<String>,
    /// A keyed hash of the service's secret values: names its Secret, so a rotated secret makes
    /// a new one while the old revision keeps the one it started with. `None`: named by the
    /// secrets' sources.
    pub secrets_digest: Option<String>,
}

impl ServiceVersion {
    /// The identity objects are named and selected by: the revision, else the version.
    pub fn id(&self) -> &str {
        self.revision.as_deref().unwrap_or(&self.version)
    }
}

pub struct RenderInput<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    /// Services to render; empty means all of them.
    pub services: &'a [String],
    pub versions: &'a BTreeMap<String, ServiceVersion>,
    /// `--set key=value` overrides, applied to every service.
    pub sets: &'a [String],
    /// Release number for the `convoy.dev/release` label; 0 before a deploy assigns one.
    pub release: u64,
    pub secrets: SecretMode,
    /// The namespace to render into instead of the environment's (`--namespace`).
    pub namespace: Option<&'a str>,
}

/// One rendered object.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub template: String,
    pub kind: String,
    pub name: String,
    /// The document; for user-data, the script as a string.
    pub document: serde_json::Value,
    /// The document as YAML (or the script itself), as written to output.
    pub text: String,
    /// The typed object, for kinds Convoy knows the schema of.
    pub object: Option<TypedObject>,
}

#[derive(Debug, Clone)]
pub struct ServiceRender {
    pub service: String,
    pub version: ServiceVersion,
    pub manifests: Vec<Manifest>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub environment: String,
    pub target: &'static str,
    pub services: Vec<ServiceRender>,
}

/// Renders and validates every requested service of one environment, reporting all problems.
pub fn render_environment(input: &RenderInput<'_>) -> Result<Rendered, RenderErrors> {
    let project = input.project;
    let environment = project
        .environment(input.environment)
        .map_err(RenderError::from)?;
    let names: Vec<String> = if input.services.is_empty() {
        project.services.keys().cloned().collect()
    } else {
        input.services.to_vec()
    };
    // Only the target is copied for another namespace: the project is megabytes at a thousand
    // services, and a release renders each of them apart.
    let target = match input.namespace {
        Some(namespace) => {
            let mut target = environment.target.clone();
            target.set_namespace(namespace);
            std::borrow::Cow::Owned(target)
        }
        None => std::borrow::Cow::Borrowed(&environment.target),
    };
    let target = target.as_ref();
    let templates = match target.renders_templates() {
        true => Some(Templates::load(&project.root, target.kind())?),
        false => None,
    };
    let mut errors = Vec::new();
    let mut services = Vec::new();
    for name in &names {
        match render_service(input, target, templates.as_ref(), name) {
            Ok(rendered) => services.push(rendered),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(Rendered {
            environment: input.environment.to_string(),
            target: target.kind(),
            services,
        })
    } else {
        Err(RenderErrors(errors))
    }
}

fn render_service(
    input: &RenderInput<'_>,
    target: &Target,
    templates: Option<&Templates>,
    name: &str,
) -> Result<ServiceRender, Vec<RenderError>> {
    let project = input.project;
    let service = project.service(name).map_err(|e| vec![e.into()])?;
    let values = Values::layer(project, input.environment, name, input.sets).map_err(|errors| {
        errors
            .0
            .into_iter()
            .map(RenderError::from)
            .collect::<Vec<_>>()
    })?;
    let version = input.versions.get(name).ok_or_else(|| {
        vec![RenderError::NoVersion {
            service: name.to_string(),
        }]
    })?;
    let inputs = context::Inputs {
        project,
        environment: input.environment,
        target,
        service,
        version,
        release: input.release,
        secrets: input.secrets,
    };
    let mut render_context = RenderContext::build(&inputs, &values).map_err(|e| vec![e])?;
    let mut rendered = ServiceRender {
        service: name.to_string(),
        version: version.clone(),
        manifests: Vec::new(),
        findings: Vec::new(),
    };
    let Some(templates) = templates else {
        return Ok(rendered);
    };
    let chosen = chosen_templates(templates, service.templates.as_deref(), target.kind(), name)?;
    if chosen.iter().any(|t| t == USER_DATA) {
        let user_data = render_user_data(templates, &render_context)?;
        render_context.user_data = user_data.text.clone();
        rendered.manifests.push(user_data);
    }
    let context = tera_context(&render_context)?;
    let manifests = render_templates(templates, &chosen, &context, name)?;
    rendered.manifests.extend(manifests);
    rendered.findings = lint::lint(&rendered.manifests);
    Ok(rendered)
}

/// The AWS user-data script, rendered first: the other templates embed it.
fn render_user_data(
    templates: &Templates,
    render_context: &RenderContext,
) -> Result<Manifest, Vec<RenderError>> {
    let context = tera_context(render_context)?;
    let script = templates.render(USER_DATA, &context).map_err(|e| vec![e])?;
    Ok(Manifest {
        template: USER_DATA.to_string(),
        kind: "UserData".to_string(),
        name: format!("{}-{}", render_context.service, render_context.version),
        document: serde_json::Value::String(script.clone()),
        text: script,
        object: None,
    })
}

/// Every chosen template but the user data, each validated; all their problems at once.
fn render_templates(
    templates: &Templates,
    chosen: &[String],
    context: &tera::Context,
    service: &str,
) -> Result<Vec<Manifest>, Vec<RenderError>> {
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for template in chosen.iter().filter(|t| *t != USER_DATA) {
        let origin = Origin {
            templates,
            template,
            service,
        };
        match render_template(&origin, context) {
            Ok(found) => manifests.extend(found),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(errors)
    }
}

const USER_DATA: &str = "aws/user-data.sh";

/// One template's documents, each validated.
fn render_template(
    origin: &Origin<'_>,
    context: &tera::Context,
) -> Result<Vec<Manifest>, Vec<RenderError>> {
    let text = origin
        .templates
        .render(origin.template, context)
        .map_err(|e| vec![e])?;
    let documents = validate::documents(&text, origin).map_err(|e| vec![e])?;
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for document in documents {
        match validate::validate(&document, origin) {
            Ok((kind, name, object)) => manifests.push(Manifest {
                template: origin.template.to_string(),
                kind,
                name,
                text: emit::to_yaml(&document),
                document,
                object,
            }),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(errors)
    }
}

/// Every template of the target, or the ones the service names (`deployment.yaml` or
/// `kubernetes/deployment.yaml`).
fn chosen_templates(
    templates: &Templates,
    wanted: Option<&[String]>,
    target: &str,
    service: &str,
) -> Result<Vec<String>, Vec<RenderError>> {
    let known: Vec<String> = templates.names().map(String::from).collect();
    let Some(wanted) = wanted else {
        return Ok(known);
    };
    let mut chosen = Vec::new();
    let mut errors = Vec::new();
    for name in wanted {
        let qualified = format!("{target}/{name}");
        if known.contains(name) {
            chosen.push(name.clone());
        } else if known.contains(&qualified) {
            chosen.push(qualified);
        } else {
            errors.push(RenderError::UnknownTemplate {
                service: service.to_string(),
                template: name.clone(),
                known: known.clone(),
            });
        }
    }
    if errors.is_empty() {
        Ok(chosen)
    } else {
        Err(errors)
    }
}

fn tera_context(context: &RenderContext) -> Result<tera::Context, Vec<RenderError>> {
    tera::Context::from_serialize(context).map_err(|error| {
        vec![RenderError::Template {
            location: crate::diagnostic::Location::new(
                std::path::Path::new("<render context>"),
                1,
                1,
                "",
            ),
            template: String::new(),
            message: error.to_string(),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn example() -> Project {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ticketshop/convoy.yaml");
        Project::load(&file).unwrap()
    }

    fn versions(project: &Project) -> BTreeMap<String, ServiceVersion> {
        let version = ServiceVersion {
            version: "2.0.0".into(),
            commit: "abc1234".into(),
            artifact_sha256: None,
            ..ServiceVersion::default()
        };
        project
            .services
            .keys()
            .map(|s| (s.clone(), version.clone()))
            .collect()
    }

    fn input<'a>(
        project: &'a Project,
        environment: &'a str,
        versions: &'a BTreeMap<String, ServiceVersion>,
        secrets: SecretMode,
    ) -> RenderInput<'a> {
        RenderInput {
            project,
            environment,
            services: &[],
            versions,
            sets: &[],
            release: 7,
            secrets,
            namespace: None,
        }
    }

    #[test]
    fn renders_typed_versioned_objects_per_service() {
        let project = example();
        let versions = versions(&project);
        let rendered =
            render_environment(&input(&project, "production", &versions, SecretMode::Mask))
                .unwrap();
        let api = rendered
            .services
            .iter()
            .find(|s| s.service == "api")
            .unwrap();
        let deployment = api
            .manifests
            .iter()
            .find(|m| m.kind == "Deployment")
            .unwrap();
        assert_eq!(deployment.name, "api-2.0.0");
        assert!(matches!(
            deployment.object,
            Some(TypedObject::Deployment(_))
        ));
        assert_eq!(
            deployment.document["metadata"]["labels"]["convoy.dev/release"],
            "7"
        );
        assert!(api.findings.is_empty(), "{:?}", api.findings);
    }

    #[test]
    fn revealing_needs_the_secret_and_masking_does_not() {
        let project = example();
        let versions = versions(&project);
        let masked =
            render_environment(&input(&project, "staging", &versions, SecretMode::Mask)).unwrap();
        assert!(
            masked
                .to_yaml_stream()
                .contains(crate::config::marker::MASK)
        );
        // No test sets this variable, so revealing must fail with the secret's key.
        let mut reveal = input(&project, "staging", &versions, SecretMode::Reveal);
        let only = ["worker".to_string()];
        reveal.services = &only;
        if std::env::var_os("TICKETSHOP_DB_PASSWORD").is_none() {
            let errors = render_environment(&reveal).unwrap_err();
            assert!(errors.to_string().contains("database.password"), "{errors}");
        }
    }

    #[test]
    fn host_environments_render_no_objects() {
        let project = example();
        let versions = versions(&project);
        let rendered =
            render_environment(&input(&project, "local", &versions, SecretMode::Mask)).unwrap();
        assert!(rendered.services.iter().all(|s| s.manifests.is_empty()));
        assert_eq!(rendered.services.len(), 4);
    }
}
