//! A service version's Kubernetes objects: rendered from the project's templates, typed by kind,
//! and sorted by the role each plays in a rollout.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;

use crate::artifacts::ArtifactStore;
use crate::config::Project;
use crate::render::{RenderInput, SecretMode, ServiceVersion, render_environment};

use super::KubeError;
use crate::targets::{Revisions, TargetsError, spec_of};

/// The kinds Convoy renders, with their API resources (no discovery round trip needed).
pub fn api_resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let plural = match (group, kind) {
        ("apps", "Deployment") => "deployments",
        ("", "Service") => "services",
        ("", "ConfigMap") => "configmaps",
        ("", "Secret") => "secrets",
        ("autoscaling", "HorizontalPodAutoscaler") => "horizontalpodautoscalers",
        ("policy", "PodDisruptionBudget") => "poddisruptionbudgets",
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}

/// One object to apply.
#[derive(Debug, Clone)]
pub struct Object {
    pub resource: ApiResource,
    pub object: DynamicObject,
}

impl Object {
    /// A Deployment with `spec.replicas`, which rendered objects leave out (see
    /// [`VersionObjects::deployment`]); unchanged for `None`.
    pub fn with_replicas(mut self, replicas: Option<i64>) -> Object {
        if let Some(replicas) = replicas {
            self.object.data["spec"]["replicas"] = replicas.into();
        }
        self
    }

    pub fn name(&self) -> String {
        self.object.metadata.name.clone().unwrap_or_default()
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// `Deployment/api-1a2b3c` for messages.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.resource.kind, self.name())
    }

    /// An object back from the JSON text [`VersionObjects::pack`] wrote.
    fn from_text(text: &str) -> Result<Self, KubeError> {
        let object: DynamicObject = serde_json::from_str(text).map_err(|e| KubeError::Object {
            object: "a packed object".to_string(),
            detail: e.to_string(),
        })?;
        let types = object.types.clone().unwrap_or_default();
        let resource =
            api_resource(&types.api_version, &types.kind).ok_or_else(|| KubeError::Object {
                object: format!(
                    "{}/{}",
                    types.kind,
                    object.metadata.name.as_deref().unwrap_or("")
                ),
                detail: format!("Convoy does not apply {} {}", types.api_version, types.kind),
            })?;
        Ok(Object { resource, object })
    }

    fn from_document(document: &serde_json::Value, template: &str) -> Result<Self, KubeError> {
        let bad = |detail: &str| KubeError::Object {
            object: template.to_string(),
            detail: detail.to_string(),
        };
        let api_version = document["apiVersion"]
            .as_str()
            .ok_or_else(|| bad("no apiVersion"))?;
        let kind = document["kind"].as_str().ok_or_else(|| bad("no kind"))?;
        let resource = api_resource(api_version, kind)
            .ok_or_else(|| bad(&format!("Convoy does not apply {api_version} {kind}")))?;
        let object: DynamicObject =
            serde_json::from_value(document.clone()).map_err(|e| bad(&e.to_string()))?;
        if object.metadata.name.is_none() {
            return Err(bad("no metadata.name"));
        }
        Ok(Object { resource, object })
    }
}

/// A service version's objects by role.
#[derive(Debug, Clone, Default)]
pub struct VersionObjects {
    /// Applied without `spec.replicas`: replicas are runtime state that canary steps, scaling to
    /// zero and HPAs change, and a field Convoy both applied and scaled would conflict with
    /// itself (apply and update are different managers to the API server). The one exception is
    /// the apply that creates it, at its count (the provision): no other manager has set the
    /// count yet, and the first one to change it takes it over.
    pub deployment: Option<Object>,
    /// The replicas the templates ask for.
    pub replicas: i32,
    /// The stable Service: applied when traffic moves, never at provision.
    pub service: Option<Object>,
    /// The HPA: applied once the version takes all traffic, so it does not fight canary steps.
    pub autoscaler: Option<Object>,
    /// ConfigMaps, Secrets, PDBs: applied before the Deployment.
    pub supporting: Vec<Object>,
    /// A slot of the target's bound on revisions parsed at once ([`PARSED_AT_ONCE`]), freed when
    /// this copy (and every clone of it) is dropped.
    pub held: Option<Arc<tokio::sync::OwnedSemaphorePermit>>,
}

/// At most this many revisions' objects are parsed at once (twice the requests a client keeps in
/// flight). A thousand provisions start together and each would parse its objects and then wait
/// for a request slot holding them: 36 MB of `serde_json::Value` trees at a thousand services.
pub const PARSED_AT_ONCE: usize = 2 * super::in_flight::IN_FLIGHT;

/// A revision's objects as the JSON text they are applied as, kept between the steps that apply
/// them: a thousand-service release held two thousand revisions' objects as `serde_json::Value`
/// trees (36 MB of its peak); as text they are about a sixth of that. Each use parses its own
/// copy again ([`Packed::unpack`]), which a step drops before it waits.
#[derive(Debug)]
pub struct Packed {
    replicas: i32,
    objects: Vec<Box<str>>,
}

impl Packed {
    pub fn unpack(&self) -> Result<VersionObjects, KubeError> {
        let mut objects = VersionObjects {
            replicas: self.replicas,
            ..VersionObjects::default()
        };
        for text in &self.objects {
            objects.place(Object::from_text(text)?);
        }
        Ok(objects)
    }
}

impl VersionObjects {
    /// The objects as text, to be kept (see [`Packed`]).
    pub fn pack(&self) -> Result<Packed, KubeError> {
        let objects = self
            .all()
            .map(|object| {
                serde_json::to_string(&object.object)
                    .map(String::into_boxed_str)
                    .map_err(|e| KubeError::Object {
                        object: object.describe(),
                        detail: e.to_string(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Packed {
            replicas: self.replicas,
            objects,
        })
    }

    /// Files an object under the role its kind plays.
    fn place(&mut self, object: Object) {
        match object.kind() {
            "Deployment" => self.deployment = Some(object),
            "Service" => self.service = Some(object),
            "HorizontalPodAutoscaler" => self.autoscaler = Some(object),
            _ => self.supporting.push(object),
        }
    }

    pub fn all(&self) -> impl Iterator<Item = &Object> {
        self.supporting
            .iter()
            .chain(&self.deployment)
            .chain(&self.autoscaler)
            .chain(&self.service)
    }

    /// The Deployment's desired replicas as rendered.
    pub fn replicas(&self) -> i32 {
        self.replicas
    }

    /// At least `floor` replicas, and an HPA whose `minReplicas` (and `maxReplicas`) allow
    /// them: a version deployed during a prewarm window starts at the prewarmed capacity.
    pub fn at_least(&mut self, floor: u32) {
        let floor = i32::try_from(floor).unwrap_or(i32::MAX);
        self.replicas = self.replicas.max(floor);
        if let Some(spec) = self
            .autoscaler
            .as_mut()
            .and_then(|a| a.object.data["spec"].as_object_mut())
        {
            for key in ["minReplicas", "maxReplicas"] {
                let value = spec.get(key).and_then(|v| v.as_i64()).unwrap_or(1);
                spec.insert(key.to_string(), value.max(i64::from(floor)).into());
            }
        }
    }
}

/// Renders revisions of services of one environment, in the environment's namespace (or the
/// `--namespace` override): each from its own spec (the project and `--set` flags it was made
/// with), or, for an id nothing was given for, from this project as a version.
pub struct Renderer {
    /// The project as loaded (shared with the release's), rendered into `namespace`.
    pub project: Arc<Project>,
    pub environment: String,
    pub sets: Vec<String>,
    namespace: String,
    revisions: Revisions,
}

impl Renderer {
    /// Renders `project` with the environment's namespace replaced by `namespace`.
    pub fn new(project: Arc<Project>, environment: &str, sets: &[String], namespace: &str) -> Self {
        Renderer {
            project,
            environment: environment.to_string(),
            sets: sets.to_vec(),
            namespace: namespace.to_string(),
            revisions: Revisions::default(),
        }
    }

    /// Renders the revisions of `revisions` from their specs.
    pub fn with_revisions(mut self, revisions: Revisions) -> Self {
        self.revisions = revisions;
        self
    }

    /// The objects of each service's revision (service → revision id), secrets as `mode` says.
    /// Revisions made from the same project and flags render together: one load of its
    /// templates for all of them. The project is not copied into this namespace: the render
    /// takes the namespace (a copy per render was half of a thousand-service release's
    /// allocations).
    pub async fn render(
        &self,
        versions: &BTreeMap<String, String>,
        store: Option<&dyn ArtifactStore>,
        release: u64,
        mode: SecretMode,
    ) -> Result<BTreeMap<String, VersionObjects>, TargetsError> {
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (service, id) in versions {
            let (project, sets, mut version) = match spec_of(&self.revisions, service, id) {
                Some(spec) if spec.version.id() == id => (
                    Some(&spec.project),
                    spec.sets.as_slice(),
                    spec.version.clone(),
                ),
                _ => {
                    let version = ServiceVersion {
                        version: id.clone(),
                        commit: "unknown".to_string(),
                        ..ServiceVersion::default()
                    };
                    (None, self.sets.as_slice(), version)
                }
            };
            if version.commit.is_empty() || version.commit == "unknown" {
                version.commit = commit_of(store, service, &version.version).await;
            }
            let same = |g: &&mut Group<'_>| {
                let project_is = match (g.project, project) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (a, b) => a.is_none() && b.is_none(),
                };
                project_is && g.sets == sets
            };
            match groups.iter_mut().find(same) {
                Some(group) => group.versions.insert(service.clone(), version),
                None => {
                    let versions = BTreeMap::from([(service.clone(), version)]);
                    groups.push(Group {
                        project,
                        sets,
                        versions,
                    });
                    None
                }
            };
        }
        let mut out = BTreeMap::new();
        for group in groups {
            let project = group.project.unwrap_or(&self.project);
            let services: Vec<String> = group.versions.keys().cloned().collect();
            let rendered = render_environment(&RenderInput {
                project,
                environment: &self.environment,
                services: &services,
                versions: &group.versions,
                sets: group.sets,
                release,
                secrets: mode,
                namespace: Some(&self.namespace),
            })?;
            out.extend(Self::split(rendered)?);
        }
        Ok(out)
    }

    /// Each service's objects, sorted into what a version is made of.
    fn split(
        rendered: crate::render::Rendered,
    ) -> Result<BTreeMap<String, VersionObjects>, TargetsError> {
        let mut out = BTreeMap::new();
        for service in rendered.services {
            let mut objects = VersionObjects {
                replicas: 1,
                ..VersionObjects::default()
            };
            for manifest in &service.manifests {
                let mut object = Object::from_document(&manifest.document, &manifest.template)?;
                if object.kind() == "Deployment"
                    && let Some(spec) = object.object.data["spec"].as_object_mut()
                    && let Some(replicas) = spec.remove("replicas")
                {
                    objects.replicas = replica_count(&replicas, &manifest.template)?;
                }
                objects.place(object);
            }
            out.insert(service.service, objects);
        }
        Ok(out)
    }
}

/// Revisions rendered together: from one project (a spec's, or `None`: the renderer's own) with
/// the same `--set` flags.
struct Group<'a> {
    project: Option<&'a Arc<Project>>,
    sets: &'a [String],
    versions: BTreeMap<String, ServiceVersion>,
}

/// The commit an artifact was built from, for the `convoy.dev/commit` annotation; `unknown`
/// when no store can say.
async fn commit_of(store: Option<&dyn ArtifactStore>, service: &str, version: &str) -> String {
    let Some(store) = store else {
        return "unknown".to_string();
    };
    let meta = store.meta(service, version).await.ok().flatten();
    meta.map_or_else(|| "unknown".to_string(), |m| m.commit)
}

/// `spec.replicas` as the `i32` Kubernetes holds, `null` meaning 1. Rendering refuses a
/// `values.replicas` out of range and typed validation a Deployment's, so this refuses only what a
/// template wrote by hand (a negative count) rather than truncating it.
fn replica_count(value: &serde_json::Value, template: &str) -> Result<i32, KubeError> {
    if value.is_null() {
        return Ok(1);
    }
    value
        .as_i64()
        .and_then(|n| i32::try_from(n).ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| KubeError::Object {
            object: template.to_string(),
            detail: format!(
                "spec.replicas `{value}` is not a whole number from 0 to {}",
                i32::MAX
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the render cache keeps between steps comes back as the same objects in the same
    /// roles: a packed Deployment without its replicas is not applied at the default of one.
    #[test]
    fn packed_objects_unpack_to_the_objects_in_their_roles() {
        let object = |kind: &str, api_version: &str, name: &str| {
            let document = serde_json::json!({
                "apiVersion": api_version,
                "kind": kind,
                "metadata": {"name": name, "labels": {"convoy.dev/release": "7"}},
                "spec": {"note": format!("{kind} {name}")},
            });
            Object::from_document(&document, "t.yaml").unwrap()
        };
        let mut objects = VersionObjects {
            replicas: 3,
            ..VersionObjects::default()
        };
        for o in [
            object("ConfigMap", "v1", "api-config"),
            object("Deployment", "apps/v1", "api-1a"),
            object("Secret", "v1", "api-secret"),
            object("Service", "v1", "api"),
            object("HorizontalPodAutoscaler", "autoscaling/v2", "api-1a"),
        ] {
            objects.place(o);
        }
        let back = objects.pack().unwrap().unpack().unwrap();
        assert_eq!(back.replicas(), 3);
        let describe = |o: &VersionObjects| -> Vec<(String, String, serde_json::Value)> {
            o.all()
                .map(|o| {
                    (
                        o.describe(),
                        o.resource.plural.clone(),
                        o.object.data.clone(),
                    )
                })
                .collect()
        };
        assert_eq!(describe(&back), describe(&objects));
        assert_eq!(back.deployment.unwrap().name(), "api-1a");
        assert_eq!(back.service.unwrap().name(), "api");
        assert_eq!(back.autoscaler.unwrap().kind(), "HorizontalPodAutoscaler");
        let supporting: Vec<String> = back.supporting.iter().map(Object::describe).collect();
        assert_eq!(supporting, ["ConfigMap/api-config", "Secret/api-secret"]);
    }

    /// `replicas as i32` turned 4294967297 into 1 and kept -1.
    #[test]
    fn replicas_beyond_i32_is_an_error_not_a_truncation() {
        let count = |value| replica_count(&value, "kubernetes/deployment.yaml");
        assert_eq!(count(serde_json::json!(3)).unwrap(), 3);
        assert_eq!(count(serde_json::Value::Null).unwrap(), 1);
        for wrong in [
            serde_json::json!(4_294_967_297_u64),
            serde_json::json!(-1),
            serde_json::json!(2.5),
        ] {
            let error = count(wrong.clone()).unwrap_err();
            assert!(error.to_string().contains(&wrong.to_string()), "{error}");
        }
    }
}
