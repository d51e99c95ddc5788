//! Which version of each service is live and which are warm, read from the cluster's own
//! objects: the stable Service's selector, else the traffic share Convoy last gave each
//! Deployment. Works with no release record at all.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;

use kube::Api;
use kube::api::ListParams;

use crate::plan::ServiceState;

use super::KubeError;
use super::retry::{Backoff, retrying};
use super::rollout_status::DeploymentSeen;
use super::traffic::{NAME_LABEL, TRAFFIC_ANNOTATION, TRAFFIC_LABEL, VERSION_LABEL};

/// Objects Convoy applied carry this label.
pub const MANAGED: &str = "app.kubernetes.io/managed-by=convoy";

/// The live and warm versions of `services` in `namespace`: two list calls.
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    services: &[String],
) -> Result<BTreeMap<String, ServiceState>, KubeError> {
    Ok(observe_seen(client, namespace, services).await?.0)
}

/// [`observe`], and each version's Deployment (none being deleted) as a rollout is judged by:
/// what a switch to a warm revision needs to know whether it already serves.
pub async fn observe_seen(
    client: &kube::Client,
    namespace: &str,
    services: &[String],
) -> Result<(BTreeMap<String, ServiceState>, Vec<DeploymentSeen>), KubeError> {
    let params = ListParams::default().labels(&selector_of(services));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let stable: Api<Service> = Api::namespaced(client.clone(), namespace);
    let (deployments, stable) = futures::try_join!(
        list_pages(&deployments, &params, "Deployments", slim_deployment),
        list_pages(&stable, &params, "Services", slim_service),
    )?;
    let states = service_states(services, &deployments, &stable);
    let seen = deployments
        .into_iter()
        .filter(|d| d.metadata.deletion_timestamp.is_none())
        .map(DeploymentSeen::from)
        .collect();
    Ok((states, seen))
}

/// Objects per list page: a thousand services' Deployments parsed in one answer (pod
/// templates, managed fields) cost ~80 MB; a page at a time, kept slim, a few.
/// A page of 100 rather than 250: a warm rollback's peak at 1,000 services was the page being
/// parsed (two lists at once), for a dozen more list requests in 7,000. The release's watches
/// list their first view in pages of the same size.
pub(super) const PAGE: u32 = 100;

/// Every object `params` selects, a page at a time, each as `slim` leaves it.
async fn list_pages<K>(
    api: &Api<K>,
    params: &ListParams,
    what: &str,
    slim: fn(&mut K),
) -> Result<Vec<K>, KubeError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    list_kept(api, params, what, |mut object| {
        slim(&mut object);
        Some(object)
    })
    .await
}

/// What `keep` makes of each object `params` selects, listed a page at a time: only one page
/// of whole objects is held at once.
pub(super) async fn list_kept<K, T>(
    api: &Api<K>,
    params: &ListParams,
    what: &str,
    mut keep: impl FnMut(K) -> Option<T>,
) -> Result<Vec<T>, KubeError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut kept = Vec::new();
    let mut params = params.clone().limit(PAGE);
    loop {
        let page = retrying(Backoff::default(), || api.list(&params))
            .await
            .map_err(|e| KubeError::from_kube("list", what, e))?;
        kept.extend(page.items.into_iter().filter_map(&mut keep));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(next) => params = params.continue_token(&next),
            None => return Ok(kept),
        }
    }
}

/// What Convoy reads of a Deployment it observes or follows: metadata without its managed
/// fields, the replica count, the status; not the pod template.
pub(super) fn slim_deployment(deployment: &mut Deployment) {
    deployment.metadata.managed_fields = None;
    if let Some(spec) = deployment.spec.as_mut() {
        spec.template = Default::default();
    }
}

/// A Service without its managed fields.
fn slim_service(service: &mut Service) {
    service.metadata.managed_fields = None;
}

/// Convoy's objects of `services` only, when they are few enough to name in a query (a
/// provision observes its own service, not the whole namespace's); else all of Convoy's.
fn selector_of(services: &[String]) -> String {
    const NAMED: usize = 20;
    if services.is_empty() || services.len() > NAMED {
        return MANAGED.to_string();
    }
    format!("{MANAGED},{NAME_LABEL} in ({})", services.join(","))
}

/// Each running version's pods (`ready/replicas pods`), by service and version: one list call.
pub async fn sizes(
    client: &kube::Client,
    namespace: &str,
    services: &[String],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, KubeError> {
    let params = ListParams::default().labels(MANAGED);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployments = list_pages(&deployments, &params, "Deployments", slim_deployment).await?;
    let mut sizes = BTreeMap::new();
    for (service, seen) in versions(&deployments) {
        if !services.contains(&service) {
            continue;
        }
        let pods = seen.into_iter().map(|v| {
            let size = format!("{}/{} pods", v.ready, v.replicas);
            (v.version, size)
        });
        sizes.insert(service, pods.collect());
    }
    Ok(sizes)
}

/// One version's Deployment, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSeen {
    pub version: String,
    pub replicas: i32,
    pub ready: i32,
    /// The traffic share Convoy last gave it, when it did.
    pub traffic: Option<u8>,
}

fn label<'a>(labels: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a String> {
    labels.and_then(|l| l.get(key))
}

/// Versions of each service with a Deployment, by service. A Deployment being deleted (it has a
/// `deletionTimestamp` and waits for finalizers) is no version: it may look Ready until the
/// moment it vanishes, and its controller no longer scales it.
pub fn versions(deployments: &[Deployment]) -> BTreeMap<String, Vec<VersionSeen>> {
    let mut by_service: BTreeMap<String, Vec<VersionSeen>> = BTreeMap::new();
    for deployment in deployments {
        if deployment.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = deployment.metadata.labels.as_ref();
        let (Some(service), Some(version)) =
            (label(labels, NAME_LABEL), label(labels, VERSION_LABEL))
        else {
            continue;
        };
        let annotations = deployment.metadata.annotations.as_ref();
        let traffic = label(labels, TRAFFIC_LABEL)
            .or_else(|| label(annotations, TRAFFIC_ANNOTATION))
            .and_then(|t| t.parse().ok());
        let status = deployment.status.as_ref();
        by_service
            .entry(service.clone())
            .or_default()
            .push(VersionSeen {
                version: version.clone(),
                replicas: deployment
                    .spec
                    .as_ref()
                    .and_then(|s| s.replicas)
                    .unwrap_or(1),
                ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
                traffic,
            });
    }
    by_service
}

/// The live and warm versions of `services`. Live: the version the stable Service selects; when
/// it selects several (a canary under way) or there is no Service (a worker), the one with the
/// largest traffic share Convoy gave, then the most replicas. Warm: every version with a
/// Deployment (one scaled to zero is scaled up by the switch that needs it).
pub fn service_states(
    services: &[String],
    deployments: &[Deployment],
    stable: &[Service],
) -> BTreeMap<String, ServiceState> {
    let versions = versions(deployments);
    services
        .iter()
        .map(|service| {
            let seen = versions.get(service).cloned().unwrap_or_default();
            let pinned = stable
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(service.as_str()))
                .and_then(|s| {
                    s.spec
                        .as_ref()?
                        .selector
                        .as_ref()?
                        .get(VERSION_LABEL)
                        .cloned()
                })
                .filter(|v| seen.iter().any(|s| &s.version == v));
            let live = pinned.or_else(|| {
                seen.iter()
                    .filter(|s| s.traffic.is_some_and(|t| t > 0) || s.replicas > 0)
                    .max_by_key(|s| (s.traffic.unwrap_or(0), s.replicas))
                    .map(|s| s.version.clone())
            });
            let warm = seen.iter().map(|s| s.version.clone()).collect();
            (service.clone(), ServiceState { live, warm })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(service: &str, version: &str, replicas: i32, traffic: Option<u8>) -> Deployment {
        let mut labels = serde_json::json!({NAME_LABEL: service, VERSION_LABEL: version});
        if let Some(traffic) = traffic {
            labels[TRAFFIC_LABEL] = traffic.to_string().into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("{service}-{version}"), "labels": labels},
            "spec": {"replicas": replicas, "selector": {}, "template": {}},
        }))
        .unwrap()
    }

    /// A Deployment as releases before the traffic label left it: the share as an annotation.
    fn annotated(service: &str, version: &str, replicas: i32, traffic: u8) -> Deployment {
        let mut deployment = deployment(service, version, replicas, None);
        deployment.metadata.annotations = Some(BTreeMap::from([(
            TRAFFIC_ANNOTATION.to_string(),
            traffic.to_string(),
        )]));
        deployment
    }

    fn service(name: &str, version: Option<&str>) -> Service {
        let selector = super::super::traffic::selector(name, version);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "spec": {"selector": selector},
        }))
        .unwrap()
    }

    #[test]
    fn the_stable_service_names_the_live_version() {
        let states = service_states(
            &["api".into()],
            &[
                deployment("api", "a1", 3, Some(0)),
                deployment("api", "a2", 3, Some(100)),
            ],
            &[service("api", Some("a1"))],
        );
        assert_eq!(states["api"].live.as_deref(), Some("a1"));
        assert_eq!(states["api"].warm, vec!["a1", "a2"]);
    }

    #[test]
    fn without_a_pinned_selector_the_largest_share_is_live() {
        let states = service_states(
            &["api".into(), "worker".into()],
            &[
                deployment("api", "a1", 2, Some(50)),
                deployment("api", "a2", 2, Some(50)),
                deployment("worker", "w1", 0, Some(0)),
                deployment("worker", "w2", 2, Some(100)),
            ],
            &[service("api", None)],
        );
        assert_eq!(states["worker"].live.as_deref(), Some("w2"));
        assert!(states["api"].live.is_some());
    }

    #[test]
    fn a_share_an_older_release_kept_as_an_annotation_still_decides_which_version_is_live() {
        let states = service_states(
            &["worker".into()],
            // Listed first: on equal replicas, without its share the later one would win.
            &[
                annotated("worker", "w2", 2, 100),
                annotated("worker", "w1", 2, 0),
            ],
            &[],
        );
        assert_eq!(states["worker"].live.as_deref(), Some("w2"));
    }

    #[test]
    fn regression_a_deployment_being_deleted_is_neither_live_nor_warm() {
        let mut terminating = deployment("api", "a1", 3, Some(100));
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-12-02T13:44:15Z".parse().unwrap(),
            ));
        let states = service_states(
            &["api".into()],
            &[terminating, deployment("api", "a2", 3, Some(0))],
            &[service("api", Some("a1"))],
        );
        assert_eq!(states["api"].warm, vec!["a2"]);
        assert_eq!(states["api"].live.as_deref(), Some("a2"));
    }

    #[test]
    fn a_service_never_deployed_has_no_live_version() {
        let states = service_states(&["web".into()], &[], &[]);
        assert_eq!(states["web"], ServiceState::default());
    }
}
