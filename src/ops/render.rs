//! `convoy render`: one environment's manifests, secrets masked unless asked; and the version
//! every service renders with when none is given.

use std::collections::BTreeMap;

use crate::Error;
use crate::config::Project;
use crate::render::{RenderInput, Rendered, SecretMode, ServiceVersion, render_environment};

pub struct RenderOptions<'a> {
    pub project: &'a Project,
    pub environment: &'a str,
    /// Services to render; empty means all.
    pub services: &'a [String],
    /// The version of every service; by default the one a deploy of HEAD would roll out.
    pub version: Option<String>,
    pub secrets: SecretMode,
    pub sets: &'a [String],
}

pub fn render(options: RenderOptions<'_>) -> Result<Rendered, Error> {
    let RenderOptions {
        project,
        environment,
        services,
        version,
        secrets,
        sets,
    } = options;
    let versions = versions(project, version);
    let input = RenderInput {
        project,
        environment,
        services,
        versions: &versions,
        sets,
        release: 0,
        secrets,
        namespace: None,
    };
    Ok(render_environment(&input)?)
}

/// The version of every service: `version` for all of them when given; else the versions the
/// build derives from git (the same a deploy of HEAD would roll out); else `dev` outside a
/// repository, so `convoy check` also works on a plain directory.
pub fn versions(project: &Project, version: Option<String>) -> BTreeMap<String, ServiceVersion> {
    let resolved = crate::build::resolve_versions(project, "HEAD").ok();
    project
        .services
        .keys()
        .map(|name| {
            let from_git = resolved
                .as_ref()
                .and_then(|r| r.services.iter().find(|v| &v.service == name));
            let (derived, commit) = match from_git {
                Some(v) => (v.version.clone(), v.commit.clone()),
                None => ("dev".to_string(), "unknown".to_string()),
            };
            let service = ServiceVersion {
                version: version.clone().unwrap_or(derived),
                commit,
                artifact_sha256: None,
                ..ServiceVersion::default()
            };
            (name.clone(), service)
        })
        .collect()
}
