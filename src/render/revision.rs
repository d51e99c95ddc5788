//! Working out a service's revision: its artifact version plus the digest of everything its
//! configuration resolves to for the target — every value after layering and `--set`, each
//! secret by a hash keyed with the environment's own key (so the digest says nothing of it),
//! the objects rendered for the target (secrets masked) and the template set.

use std::collections::BTreeMap;

use aws_lc_rs::hmac;
use sha2::Digest;

use crate::config::Project;
use crate::plan::revision::{Revision, flatten, revision_id};
use crate::render::resolved::ResolvedValues;
use crate::render::templates::Templates;
use crate::render::{RenderErrors, RenderInput, SecretMode, ServiceVersion, render_environment};

/// One service's configuration to work the revision of.
pub struct RevisionInput<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    pub service: &'a str,
    /// The artifact: version, commit, sha256.
    pub artifact: &'a ServiceVersion,
    pub values: &'a ResolvedValues,
    pub sets: &'a [String],
    /// The environment's digest key.
    pub key: &'a [u8],
    /// The project commit being deployed, and whether the work tree had other changes.
    pub commit: &'a str,
    pub dirty: bool,
}

/// The revision of one service, and the identity its objects are rendered with.
pub fn revision(input: &RevisionInput<'_>) -> Result<(Revision, ServiceVersion), RenderErrors> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, input.key);
    let secrets: BTreeMap<String, String> = input
        .values
        .secret_values
        .iter()
        .map(|(path, clear)| {
            let tag = hmac::sign(&key, format!("{path}\0{clear}").as_bytes());
            (path.clone(), hex::encode(tag.as_ref()))
        })
        .collect();
    let mut version = ServiceVersion {
        revision: None,
        secrets_digest: (!secrets.is_empty()).then(|| sha256_json(&secrets)),
        ..input.artifact.clone()
    };
    let objects = rendered_objects(input, &version)?;
    let templates = template_set(input.project, input.environment)?;
    let image = input
        .project
        .services
        .get(input.service)
        .and_then(|s| s.image.as_ref())
        .map(|image| format!("{image}:{}", input.artifact.version));
    let values = flatten(&input.values.masked);
    let digest = sha256_json(&(
        &input.artifact.version,
        &values,
        &secrets,
        &objects,
        &templates,
        &image,
    ));
    let id = revision_id(&input.artifact.version, &digest);
    version.revision = Some(id.clone());
    let revision = Revision {
        id,
        service: input.service.to_string(),
        version: input.artifact.version.clone(),
        artifact_commit: input.artifact.commit.clone(),
        digest,
        commit: input.commit.to_string(),
        dirty: input.dirty,
        sets: input.sets.to_vec(),
        values,
        origins: input.values.origins.clone(),
        secrets,
        objects,
        templates,
        image,
    };
    Ok((revision, version))
}

/// Each object the target would get (`Kind/name`) and the sha256 of its text, secrets masked.
fn rendered_objects(
    input: &RevisionInput<'_>,
    version: &ServiceVersion,
) -> Result<BTreeMap<String, String>, RenderErrors> {
    let services = [input.service.to_string()];
    let versions = BTreeMap::from([(input.service.to_string(), version.clone())]);
    let rendered = render_environment(&RenderInput {
        project: input.project,
        environment: input.environment,
        services: &services,
        versions: &versions,
        sets: input.sets,
        release: 0,
        secrets: SecretMode::Mask,
        namespace: None,
    })?;
    Ok(rendered
        .services
        .iter()
        .flat_map(|s| &s.manifests)
        .map(|m| {
            let digest = hex::encode(sha2::Sha256::digest(m.text.as_bytes()));
            (format!("{}/{}", m.kind, m.name), digest)
        })
        .collect())
}

/// The digest of the templates the environment's target renders with; empty for a host.
fn template_set(project: &Project, environment: &str) -> Result<String, RenderErrors> {
    let target = &project
        .environment(environment)
        .map_err(|e| RenderErrors(vec![e.into()]))?
        .target;
    if !target.renders_templates() {
        return Ok(String::new());
    }
    let templates =
        Templates::load(&project.root, target.kind()).map_err(|e| RenderErrors(vec![e]))?;
    Ok(templates.digest())
}

fn sha256_json<T: serde::Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(bytes))
}
