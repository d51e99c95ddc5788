//! The in-process test API server against a real one, for what Convoy relies on: the same calls
//! on both, their answers normalized (names, uids, versions and times taken out) and compared.
//!
//! On a real server (`CONVOY_TEST_KUBECONFIG`, as CI runs) both servers answer and must agree,
//! and the real answers must match `tests/support/k8s/conformance.json`, recorded from the
//! control plane of `tests/support/k8s` (re-record after a version bump with
//! `CONVOY_RECORD_CONFORMANCE=1`). Without one, the in-process server is compared with that
//! recording.

use std::time::Duration;

use convoy_test_support::cluster::{Cluster, real_cluster_given};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const RECORDED: &str = "tests/support/k8s/conformance.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_server_answers_as_a_real_one_where_convoy_relies_on_it() {
    let fake = observe(&Cluster::fake_only().await).await;
    let path = convoy_test_support::repository_root().join(RECORDED);
    let recorded: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let Some(real) = real().await else {
        return compare(
            "recorded real server",
            &recorded,
            "in-process server",
            &fake,
        );
    };
    if std::env::var_os("CONVOY_RECORD_CONFORMANCE").is_some() {
        std::fs::write(&path, pretty(&real) + "\n").unwrap();
    }
    compare("recording", &recorded, "real server", &real);
    compare("real server", &real, "in-process server", &fake);
}

/// The real server's answers, when the tests have one.
async fn real() -> Option<Value> {
    if !real_cluster_given() {
        return None;
    }
    Some(observe(&Cluster::start().await).await)
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

fn compare(left_name: &str, left: &Value, right_name: &str, right: &Value) {
    let (left, right) = (pretty(left), pretty(right));
    if left != right {
        let diff = similar::TextDiff::from_lines(&left, &right)
            .unified_diff()
            .header(left_name, right_name)
            .to_string();
        panic!("the {right_name} differs from the {left_name}:\n{diff}");
    }
}

/// Every observation, by what Convoy relies on.
async fn observe(cluster: &Cluster) -> Value {
    json!({
        "apply conflict Status": apply_conflicts(cluster).await,
        "Deployment status after a rollout": rollout(cluster).await,
        "label and field selectors": selectors(cluster).await,
        "error Statuses": errors(cluster).await,
        "deleting with a finalizer": finalizers(cluster).await,
    })
}

/// A `Status` with what varies between runs taken out; causes sorted by field.
fn status(error: kube::Error, namespace: &str) -> Value {
    let kube::Error::Api(status) = error else {
        panic!("not an API error: {error}");
    };
    let mut value = serde_json::to_value(&*status).unwrap();
    if let Some(causes) = value
        .pointer_mut("/details/causes")
        .and_then(Value::as_array_mut)
    {
        causes.sort_by_key(|c| c["field"].as_str().unwrap_or_default().to_string());
    }
    let text = value.to_string().replace(namespace, "NAMESPACE");
    serde_json::from_str(&text).unwrap()
}

/// Server-side apply conflicts: with another Apply manager and with an Update one, on a plain
/// field and on the Service's atomic selector.
async fn apply_conflicts(cluster: &Cluster) -> Value {
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let service = |selector: Value, label: &str| {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "payments", "labels": {"team": label}},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 8081}]},
        })
    };
    let ours = service(json!({"app": "payments", "version": "p1"}), "shop");
    let convoy = PatchParams::apply("convoy");
    services
        .patch("payments", &convoy, &Patch::Apply(&ours))
        .await
        .unwrap();
    let theirs = json!({"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "payments", "labels": {"team": "ops"}}});
    services
        .patch(
            "payments",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    let edit = json!({"spec": {"selector": {"tier": "hotfix"}}});
    let kubectl_edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..PatchParams::default()
    };
    let edited = services
        .patch("payments", &kubectl_edit, &Patch::Merge(&edit))
        .await
        .unwrap();
    let next = service(json!({"app": "payments", "version": "p2"}), "shop");
    let refused = services
        .patch("payments", &convoy, &Patch::Apply(&next))
        .await
        .unwrap_err();
    let forced = services
        .patch("payments", &convoy.clone().force(), &Patch::Apply(&next))
        .await
        .unwrap();
    let mut owners: Vec<Value> = forced
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| json!({"manager": m.manager, "operation": m.operation, "fields": m.fields_v1.map(|f| f.0)}))
        .collect();
    owners.sort_by_key(|o| o["manager"].as_str().unwrap_or_default().to_string());
    json!({
        "selector after a merge patch of one key": edited.spec.unwrap().selector,
        "refused apply": status(refused, &cluster.namespace),
        "selector after the forced apply": forced.spec.unwrap().selector,
        "field owners after the forced apply": owners,
    })
}

/// The Deployment's status once its rollout is done, as `kubectl rollout status` reads it.
async fn rollout(cluster: &Cluster) -> Value {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-v1"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "registry.example.com/web:v1"},
            ]}},
        },
    });
    deployments
        .patch(
            "web-v1",
            &PatchParams::apply("convoy"),
            &Patch::Apply(&deployment),
        )
        .await
        .unwrap();
    let done = |d: &Deployment| {
        let status = d.status.clone().unwrap_or_default();
        status.observed_generation == d.metadata.generation
            && status.available_replicas == Some(2)
            && status.conditions.unwrap_or_default().iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
            })
    };
    let mut seen = deployments.get("web-v1").await.unwrap();
    for _ in 0..300 {
        if done(&seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = deployments.get("web-v1").await.unwrap();
    }
    let mut status = serde_json::to_value(seen.status.unwrap()).unwrap();
    for condition in status["conditions"].as_array_mut().unwrap() {
        let object = condition.as_object_mut().unwrap();
        object.remove("lastUpdateTime");
        object.remove("lastTransitionTime");
        // The ReplicaSet's name ends in a hash of the pod template.
        if let Some(message) = object.get_mut("message") {
            let text = message.as_str().unwrap_or_default();
            let masked = regex_like_hash(text);
            *message = json!(masked);
        }
    }
    json!({"generation": seen.metadata.generation, "status": status})
}

/// `ReplicaSet "web-v1-5d8f7c9b6" …` with the template hash replaced.
fn regex_like_hash(text: &str) -> String {
    text.split('"')
        .enumerate()
        .map(|(i, part)| match part.rsplit_once('-') {
            Some((name, _)) if i % 2 == 1 && name.starts_with("web-v1") => format!("{name}-HASH"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\"")
}

/// Which ConfigMaps each selector lists.
async fn selectors(cluster: &Cluster) -> Value {
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    for (name, labels) in [
        ("a1-b2", json!({"a": "1", "b": "2"})),
        ("a2", json!({"a": "2"})),
        ("b1", json!({"b": "1"})),
        ("none", json!({})),
    ] {
        let object: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
        configmaps
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    let mut found = serde_json::Map::new();
    for selector in [
        "a=1",
        "a==1",
        "a!=1",
        "a in (1,2)",
        "a notin (1)",
        "a",
        "!a",
        "a=1,b=2",
        "a,b",
        "app.kubernetes.io/name=none",
    ] {
        let list = configmaps
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap();
        let mut names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .filter(|n| n != "kube-root-ca.crt")
            .collect();
        names.sort();
        found.insert(format!("labels {selector}"), json!(names));
    }
    let list = configmaps
        .list(&ListParams::default().fields("metadata.name=a2"))
        .await
        .unwrap();
    let names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    found.insert("fields metadata.name=a2".into(), json!(names));
    Value::Object(found)
}

/// Not found, already exists, a stale update, and a create in a namespace being deleted.
async fn errors(cluster: &Cluster) -> Value {
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let ns = &cluster.namespace;
    let missing = deployments.get("missing").await.unwrap_err();
    let object: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}})).unwrap();
    let created = configmaps
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
    let exists = configmaps
        .create(&PostParams::default(), &object)
        .await
        .unwrap_err();
    configmaps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"k": "v"}})),
        )
        .await
        .unwrap();
    let stale = configmaps
        .replace("settings", &PostParams::default(), &created)
        .await
        .unwrap_err();
    json!({
        "get a missing Deployment": status(missing, ns),
        "create an existing ConfigMap": status(exists, ns),
        "replace with a stale resourceVersion": status(stale, ns),
        "create in a namespace being deleted": terminating_namespace(cluster).await,
    })
}

/// A namespace of its own, held Terminating by a finalizer, then released.
async fn terminating_namespace(cluster: &Cluster) -> Value {
    let name = format!("{}-gone", cluster.namespace);
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &name);
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    configmaps
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let object: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap();
    let refused = configmaps
        .create(&PostParams::default(), &object)
        .await
        .unwrap_err();
    let phase = namespaces.get(&name).await.unwrap().status.unwrap().phase;
    configmaps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    json!({"phase": phase, "refused": status(refused, &name)})
}

/// An object with a finalizer, deleted: what the delete answers and what stays.
async fn finalizers(cluster: &Cluster) -> Value {
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    configmaps
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    // The object (not a Status) when it stays.
    let first = configmaps
        .delete("held", &DeleteParams::background())
        .await
        .unwrap()
        .left();
    let again = configmaps
        .delete("held", &DeleteParams::background())
        .await
        .unwrap()
        .left();
    let shape = |deleted: Option<ConfigMap>| {
        deleted.map(|object| {
            json!({
                "deletionTimestamp": object.metadata.deletion_timestamp.is_some(),
                "finalizers": object.metadata.finalizers,
            })
        })
    };
    let (first, again) = (shape(first), shape(again));
    configmaps
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let gone = configmaps.get_opt("held").await.unwrap().is_none();
    json!({"first delete": first, "second delete": again, "gone once released": gone})
}
