//! What the real server adds and refuses on writes: defaults, allocated cluster IPs, Secret
//! `stringData`, immutable fields, and streaming-list watches.

use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use super::tests::deployment;
use super::*;

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn writes_get_the_server_defaults() {
    let client = ApiServer::new().client();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let mut d = deployment("web", "nginx", 1);
    d.spec.as_mut().unwrap().replicas = None;
    let d = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(
        (
            spec.replicas,
            spec.progress_deadline_seconds,
            spec.revision_history_limit
        ),
        (Some(1), Some(600), Some(10))
    );
    let strategy = spec.strategy.unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(
        container.image_pull_policy.as_deref(),
        Some("Always"),
        "untagged images are pulled always"
    );

    let services: Api<Service> = Api::default_namespaced(client.clone());
    let svc = json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let svc = services
        .create(
            &PostParams::default(),
            &serde_json::from_value(svc).unwrap(),
        )
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ip = spec.cluster_ip.unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}));
    let patched = services
        .patch("web", &PatchParams::default(), &relabel)
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().cluster_ip, Some(ip));

    let secrets: Api<Secret> = Api::default_namespaced(client);
    let secret = json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
    let secret = secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    assert!(secret.string_data.is_none());
    assert_eq!(secret.data.unwrap()["password"].0, b"hunter2");
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn immutable_fields_are_refused() {
    let client = ApiServer::new().client();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    deployments
        .create(&PostParams::default(), &deployment("web", "nginx:1", 1))
        .await
        .unwrap();
    let reselect = Patch::Merge(json!({"spec": {
        "selector": {"matchLabels": {"app": "web", "v": "2"}},
        "template": {"metadata": {"labels": {"app": "web", "v": "2"}}},
    }}));
    let status = api_error(
        deployments
            .patch("web", &PatchParams::default(), &reselect)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("spec.selector") && status.message.contains("field is immutable"),
        "{}",
        status.message
    );

    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let frozen = json!({"metadata": {"name": "frozen"}, "data": {"k": "v"}, "immutable": true});
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(frozen).unwrap(),
    )
    .await
    .unwrap();
    let edit = Patch::Merge(json!({"data": {"k": "w"}}));
    let status = api_error(
        maps.patch("frozen", &PatchParams::default(), &edit)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"ok": "yes"}}}));
    assert!(
        maps.patch("frozen", &PatchParams::default(), &relabel)
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn a_streaming_list_watcher_gets_the_initial_events_end_bookmark() {
    let server = ApiServer::new();
    let maps: Api<ConfigMap> = Api::default_namespaced(server.client());
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap(),
    )
    .await
    .unwrap();
    let config = watcher::Config::default().streaming_lists();
    let events = watcher(maps, config);
    futures::pin_mut!(events);
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.try_next().await.unwrap() {
            let done = matches!(event, watcher::Event::InitDone);
            seen.push(event);
            if done {
                break;
            }
        }
    })
    .await
    .expect("the initial events in time");
    assert!(matches!(
        &seen[..],
        [
            watcher::Event::Init,
            watcher::Event::InitApply(_),
            watcher::Event::InitDone
        ]
    ));
    let watches: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.verb == "watch")
        .collect();
    assert_eq!(
        watches.len(),
        1,
        "no list: the watch streamed the initial state"
    );
}
