//! The test API server against what a real cluster does, through kube's own client, API types
//! and watcher. Waits are bounded by timeouts and use watches or paused tokio time, never sleeps.

use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use serde_json::json;

use super::*;

const LIMIT: Duration = Duration::from_secs(30);

/// Runs a wait with an upper bound so a broken server fails the test instead of hanging it.
async fn bounded<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

pub fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }))
    .unwrap()
}

fn rv<K: kube::Resource>(obj: &K) -> u64 {
    obj.meta()
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn discovery_finds_the_served_kinds() {
    let client = ApiServer::new().client();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
    let (resource, caps) = discovery.resolve_gvk(&gvk).unwrap();
    assert_eq!(resource.plural, "deployments");
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "status"));
    for (group, kind) in [
        ("", "Pod"),
        ("coordination.k8s.io", "Lease"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
    ] {
        assert!(
            discovery
                .groups()
                .any(|g| g.name() == group && g.recommended_kind(kind).is_some()),
            "{kind}"
        );
    }
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap");
    let (resource, _) = kube::discovery::pinned_kind(&client, &gvk).await.unwrap();
    assert_eq!(resource.plural, "configmaps");
}

#[tokio::test]
async fn create_get_replace_follow_resource_version_rules() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api
        .create(&PostParams::default(), &config_map("cfg", json!({})))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));

    let again = api
        .create(&PostParams::default(), &config_map("cfg", json!({})))
        .await;
    let status = api_error(again.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"cfg\" already exists");

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api
        .replace("cfg", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(rv(&replaced) > rv(&created));
    assert_eq!(replaced.metadata.uid, created.metadata.uid);

    let stale = api.replace("cfg", &PostParams::default(), &changed).await;
    let status = api_error(stale.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );

    let unchanged = api
        .replace("cfg", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(
        rv(&unchanged),
        rv(&replaced),
        "a write that changes nothing keeps the version"
    );

    api.delete("cfg", &DeleteParams::default()).await.unwrap();
    let status = api_error(api.get("cfg").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"cfg\" not found");
}

#[tokio::test]
async fn generation_moves_only_with_the_spec() {
    let client = ApiServer::new().client();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let created = api
        .create(&PostParams::default(), &deployment("web", "nginx:1", 2))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let pp = PatchParams::default();
    let labelled = api
        .patch(
            "web",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    assert!(rv(&labelled) > rv(&created));
    let status_only = api
        .patch_status(
            "web",
            &pp,
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(status_only.metadata.generation, Some(1));
    let scaled = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 3}})))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    let mut current = api.get_status("web").await.unwrap();
    assert_eq!(current.metadata.generation, Some(2));
    current.spec.as_mut().unwrap().replicas = Some(9);
    current.metadata.resource_version = None;
    current.status = Some(serde_json::from_value(json!({"observedGeneration": 2})).unwrap());
    let replaced = api
        .replace_status("web", &PostParams::default(), &current)
        .await
        .unwrap();
    assert_eq!(
        replaced.spec.unwrap().replicas,
        Some(3),
        "a status write leaves the spec alone"
    );
    assert_eq!(replaced.metadata.generation, Some(2));

    let deleted = api.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(
        deleted.is_right(),
        "deployments answer a delete with a Status"
    );
}

#[tokio::test]
async fn invalid_objects_and_missing_namespaces_are_refused() {
    let client = ApiServer::new().client();
    let mut bad = deployment("web", "nginx", 1);
    bad.spec.as_mut().unwrap().selector.match_labels =
        Some([("app".into(), "other".into())].into());
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let status = api_error(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .message
            .contains("`selector` does not match template `labels`")
    );

    let status = api_error(
        api.create(&PostParams::default(), &deployment("Bad_Name", "x", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.reason, "Invalid");

    let elsewhere: Api<ConfigMap> = Api::namespaced(client, "nope");
    let status = api_error(
        elsewhere
            .create(&PostParams::default(), &config_map("c", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
}

#[tokio::test]
async fn server_side_apply_tracks_owners_and_reports_conflicts() {
    let client = ApiServer::new().client();
    let api: Api<Deployment> = Api::default_namespaced(client);
    let mut config = serde_json::to_value(deployment("web", "nginx:1", 2)).unwrap();
    config["metadata"]["labels"] = json!({"a": "1", "b": "2"});
    let created = api
        .patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let managers = created.metadata.managed_fields.clone().unwrap();
    assert_eq!(managers.len(), 1);
    assert_eq!(
        (
            managers[0].manager.as_deref(),
            managers[0].operation.as_deref()
        ),
        (Some("convoy"), Some("Apply"))
    );

    let theirs = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
    let refused = api
        .patch(
            "web",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(&theirs),
        )
        .await;
    let status = api_error(refused.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"convoy\": .spec.replicas"
    );

    let forced = api
        .patch(
            "web",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.as_ref().unwrap().replicas, Some(5));

    // convoy stops applying replicas (now kubectl's) and label b: replicas stay, b goes.
    config["metadata"]["labels"] = json!({"a": "1"});
    config["spec"].as_object_mut().unwrap().remove("replicas");
    let reapplied = api
        .patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(reapplied.spec.as_ref().unwrap().replicas, Some(5));
    let labels = reapplied.metadata.labels.unwrap();
    assert_eq!(labels.get("a").map(String::as_str), Some("1"));
    assert!(!labels.contains_key("b"));
    config["metadata"].as_object_mut().unwrap().remove("labels");
    let unlabelled = api
        .patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(unlabelled.metadata.labels, None, "no empty map left behind");

    let missing = api
        .patch("web", &PatchParams::default(), &Patch::Apply(&config))
        .await;
    assert_eq!(api_error(missing.unwrap_err()).code, 400);
}

#[tokio::test]
async fn dry_run_stores_nothing() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let before = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let shown = api
        .create(&dry, &config_map("dry", json!({})))
        .await
        .unwrap();
    assert_eq!(shown.metadata.name.as_deref(), Some("dry"));
    assert_eq!(api_error(api.get("dry").await.unwrap_err()).code, 404);

    api.create(&PostParams::default(), &config_map("real", json!({})))
        .await
        .unwrap();
    let stored_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert_ne!(before, stored_rv);
    let pp = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = api
        .patch("real", &pp, &Patch::Merge(json!({"data": {"k": "dry"}})))
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "dry");
    let applied = config_map("real", json!({"x": "y"}));
    api.patch(
        "real",
        &PatchParams::apply("t").dry_run(),
        &Patch::Apply(&applied),
    )
    .await
    .unwrap();
    let dp = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("real", &dp).await.unwrap();
    let stored = api.get("real").await.unwrap();
    assert_eq!(stored.data.unwrap()["k"], "v");
    assert_eq!(stored.metadata.labels.unwrap_or_default().len(), 0);
    let after = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version;
    assert_eq!(after, stored_rv);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "web", "tier": "back", "canary": "true"})),
        ("c", json!({"app": "db"})),
    ] {
        api.create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    let names = |selector: &'static str, fields: bool| {
        let api = api.clone();
        async move {
            let lp = if fields {
                ListParams::default().fields(selector)
            } else {
                ListParams::default().labels(selector)
            };
            let list = api.list(&lp).await.unwrap();
            list.items
                .into_iter()
                .map(|c| c.metadata.name.unwrap())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    assert_eq!(names("app=web", false).await, "a,b");
    assert_eq!(names("app!=web", false).await, "c");
    assert_eq!(names("tier in (front,back),!canary", false).await, "a");
    assert_eq!(names("app,tier notin (back)", false).await, "a,c");
    assert_eq!(names("tier", false).await, "a,b");
    assert_eq!(names("metadata.name=b", true).await, "b");
    assert_eq!(
        names("metadata.namespace=default,metadata.name!=b", true).await,
        "a,c"
    );
}

#[tokio::test]
async fn lists_page_by_limit_and_continue_from_the_first_pages_version() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    for name in ["a", "b", "c", "d", "e"] {
        let labels = match name {
            "c" => json!({"app": "db"}),
            _ => json!({"app": "web"}),
        };
        api.create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    let mut params = ListParams::default().labels("app=web").limit(2);
    let mut pages = Vec::new();
    let mut versions = Vec::new();
    loop {
        let list = api.list(&params).await.unwrap();
        versions.push(list.metadata.resource_version.clone().unwrap());
        let names: Vec<String> = list
            .items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        pages.push(names.join(","));
        // A write between pages: later pages still report the first page's version.
        api.create(
            &PostParams::default(),
            &config_map(&format!("z{}", pages.len()), json!({})),
        )
        .await
        .unwrap();
        match list.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    // Only what the selector takes, two at a time; the last page is full and says so.
    assert_eq!(pages, ["a,b", "d,e"]);
    assert!(versions.iter().all(|v| *v == versions[0]), "{versions:?}");
}

#[tokio::test]
async fn a_metadata_only_list_answers_each_items_metadata_and_nothing_else() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for name in ["a", "b"] {
        api.create(
            &PostParams::default(),
            &config_map(name, json!({"app": "web"})),
        )
        .await
        .unwrap();
    }
    let listed = api
        .list_metadata(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .map(|i| i.metadata.name.clone())
        .collect();
    assert_eq!(names, [Some("a".to_string()), Some("b".to_string())]);
    assert!(
        listed
            .items
            .iter()
            .all(|i| i.metadata.labels.as_ref().unwrap()["app"] == "web")
    );
    // On the wire: the metadata list's own type, and no item carries its data.
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .header(
            http::header::ACCEPT,
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = client.request(request).await.unwrap();
    assert_eq!(raw["kind"], "PartialObjectMetadataList");
    let items = raw["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|i| i.get("data").is_none() && i["kind"] == "PartialObjectMetadata")
    );
}

#[tokio::test(start_paused = true)]
async fn watches_replay_history_bookmark_and_expire() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    let first = api
        .create(&PostParams::default(), &config_map("one", json!({})))
        .await
        .unwrap();
    let from = rv(&first).to_string();
    api.create(&PostParams::default(), &config_map("two", json!({})))
        .await
        .unwrap();

    let wp = WatchParams::default().timeout(60);
    let mut stream = api.watch(&wp, &from).await.unwrap().boxed();
    let next = bounded("the replayed event", stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(next, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("two")));
    let next = bounded("a bookmark", stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(next, WatchEvent::Bookmark(_)), "{next:?}");

    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    server.compact();
    let mut stream = api.watch(&wp, &from).await.unwrap().boxed();
    let next = bounded("the expiry", stream.try_next())
        .await
        .unwrap()
        .unwrap();
    let WatchEvent::Error(status) = next else {
        panic!("expected an error event, got {next:?}")
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
}

#[tokio::test(start_paused = true)]
async fn a_watcher_sees_changes_and_relists_after_410() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    api.create(&PostParams::default(), &config_map("one", json!({})))
        .await
        .unwrap();
    let config = watcher::Config::default().timeout(5);
    let mut events = watcher(api.clone(), config).boxed();
    let mut seen = Vec::new();
    bounded("the initial list", async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let watcher::Event::InitDone = event {
                break;
            }
            seen.push(event);
        }
    })
    .await;
    assert!(
        matches!(&seen[..], [watcher::Event::Init, watcher::Event::InitApply(cm)] if cm.metadata.name.as_deref() == Some("one"))
    );

    api.create(&PostParams::default(), &config_map("two", json!({})))
        .await
        .unwrap();
    let event = bounded("the new object", events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, watcher::Event::Apply(cm) if cm.metadata.name.as_deref() == Some("two"))
    );

    // Changes elsewhere move the history past the watcher's version; once its watch times out
    // and resumes, the server answers 410 and the watcher lists again.
    let secrets: Api<Secret> = Api::default_namespaced(server.client());
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap(),
        )
        .await
        .unwrap();
    server.compact();
    let expired = bounded("the 410", events.next()).await.unwrap();
    assert!(matches!(expired, Err(watcher::Error::WatchError(s)) if s.code == 410));
    let relisted = bounded("the re-list", events.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(relisted, watcher::Event::Init));
}

#[tokio::test]
async fn served_over_http_with_a_kubeconfig() {
    let server = ApiServer::new();
    let served = server.serve().await;
    assert!(served.url().starts_with("http://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    served.write_kubeconfig(&path, "test", "default");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some("test".into()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    bounded(
        "create over HTTP",
        api.create(&PostParams::default(), &config_map("http", json!({}))),
    )
    .await
    .unwrap();
    // The in-process client sees what came over HTTP: one state.
    let local: Api<ConfigMap> = Api::default_namespaced(server.client());
    assert!(local.get("http").await.is_ok());
    let mut stream = bounded("a watch over HTTP", api.watch(&WatchParams::default(), "0"))
        .await
        .unwrap()
        .boxed();
    let event = bounded("the first event", stream.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(event, WatchEvent::Added(_)));
    let logged = server.requests();
    assert!(
        logged
            .iter()
            .any(|r| r.verb == "create" && r.resource == "configmaps" && r.status == 201)
    );
    assert!(logged.iter().any(|r| r.verb == "watch" && r.status == 200));
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_objects() {
    let client = ApiServer::new().client();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    api.create(&PostParams::default(), &config_map("c", json!({})))
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    let all: Api<ConfigMap> = Api::all(client);
    let left = all.list(&ListParams::default()).await.unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test]
async fn apply_conflicts_name_update_managers_with_their_api_version() {
    let server = ApiServer::new();
    let api: Api<Deployment> = Api::default_namespaced(server.client());
    let pp = PostParams {
        field_manager: Some("kubectl-create".into()),
        ..Default::default()
    };
    api.create(&pp, &deployment("web", "nginx:1", 2))
        .await
        .unwrap();
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    api.patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&same))
        .await
        .expect("the same value is shared, not a conflict");
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let refused = api
        .patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&other))
        .await;
    let status = api_error(refused.unwrap_err());
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
    );
    let scaler = PatchParams {
        field_manager: Some("kubectl-scale".into()),
        ..Default::default()
    };
    let scale = Patch::Merge(json!({"spec": {"replicas": 4}}));
    api.patch("web", &scaler, &scale).await.unwrap();
    let refused = api
        .patch("web", &PatchParams::apply("convoy"), &Patch::Apply(&same))
        .await;
    let status = api_error(refused.unwrap_err());
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"
    );
    let dry = PatchParams::apply("convoy").dry_run().force();
    api.patch("web", &dry, &Patch::Apply(&same)).await.unwrap();
    let logged: Vec<(String, bool)> = server
        .requests()
        .into_iter()
        .filter(|r| r.resource == "deployments")
        .map(|r| (r.verb, r.dry_run))
        .collect();
    let expected = [
        ("create", false),
        ("apply", false),
        ("apply", false),
        ("patch", false),
        ("apply", false),
        ("apply", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(v, d)| (v.to_string(), *d)).collect();
    assert_eq!(logged, expected);
}

#[tokio::test]
async fn deletes_collect_what_loses_its_last_owner() {
    let client = ApiServer::new().client();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let create = |name: &'static str, owners: Vec<&ConfigMap>| {
        let refs: Vec<serde_json::Value> = owners
            .iter()
            .map(|o| {
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "name": o.metadata.name, "uid": o.metadata.uid})
            })
            .collect();
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": refs},
        }))
        .unwrap();
        let api = api.clone();
        async move { api.create(&PostParams::default(), &cm).await.unwrap() }
    };
    let a = create("a", vec![]).await;
    let b = create("b", vec![]).await;
    create("shared", vec![&a, &b]).await;
    let child = create("child", vec![&a]).await;
    create("grandchild", vec![&child]).await;
    create("kept", vec![&b]).await;
    let names = || async {
        let list = api.list(&ListParams::default()).await.unwrap();
        let names: Vec<String> = list
            .items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        names
    };

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(names().await, ["b", "kept", "shared"]);

    // Orphaning drops the references to `b`: `kept` has no owner left to lose, `shared` only
    // the gone `a`.
    api.delete("b", &DeleteParams::orphan()).await.unwrap();
    assert_eq!(names().await, ["kept"]);
    let kept = api.get("kept").await.unwrap();
    assert_eq!(kept.metadata.owner_references.unwrap_or_default(), []);
}
