//! Fault rules and the request log, plus the rolling-update bounds seen through a pod watch.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use serde_json::json;
use tokio::time::Instant;

use super::tests::deployment;
use super::*;

const LIMIT: Duration = Duration::from_secs(60);

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

fn status_of(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_status_fault_fails_the_next_request_then_passes() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    api.create(&PostParams::default(), &config_map("c"))
        .await
        .unwrap();
    server.clear_requests();
    server.fault(
        Fault::status(503)
            .verb("get")
            .resource("configmaps")
            .times(1),
    );
    let status = status_of(api.get("c").await.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (503, "ServiceUnavailable")
    );
    assert!(api.get("c").await.is_ok());
    let log: Vec<(String, u16)> = server
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.status))
        .collect();
    assert_eq!(log, [("get".to_string(), 503), ("get".to_string(), 200)]);

    server.fault(Fault::conflict().verb("patch").name("c"));
    let patch = Patch::Merge(json!({"data": {"k": "w"}}));
    let status = status_of(
        api.patch("c", &PatchParams::default(), &patch)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    server.clear_faults();
    assert!(
        api.patch("c", &PatchParams::default(), &patch)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let server = ApiServer::new();
    server.fault(Fault::too_many_requests().verb("list"));
    let request = http::Request::get("/api/v1/namespaces/default/configmaps")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = server.client().send(request).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    let status = status_of(api.list(&Default::default()).await.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (429, "TooManyRequests")
    );
}

#[tokio::test(start_paused = true)]
async fn a_delay_holds_the_request_in_tokio_time() {
    let server = ApiServer::new();
    server.fault(Fault::delay(Duration::from_secs(7)).verb("create"));
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    let start = Instant::now();
    api.create(&PostParams::default(), &config_map("slow"))
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn watches_end_early_when_dropped_or_timed_out() {
    let server = ApiServer::new();
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
    }
    server.fault(Fault::drop_watch_after(2).resource("configmaps").times(1));
    let events: Vec<WatchEvent<ConfigMap>> = tokio::time::timeout(LIMIT, async {
        api.watch(&WatchParams::default(), "0")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(events.len(), 2);

    let start = Instant::now();
    let quiet = WatchParams::default().timeout(20).disable_bookmarks();
    let rest: Vec<WatchEvent<ConfigMap>> = tokio::time::timeout(LIMIT, async {
        api.watch(&quiet, "0")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        rest.len(),
        3,
        "the initial objects, then the end of the stream"
    );
    assert!(start.elapsed() >= Duration::from_secs(20));
    let watch = server
        .requests()
        .into_iter()
        .filter(|r| r.verb == "watch")
        .count();
    assert_eq!(watch, 2);
}

#[tokio::test(start_paused = true)]
async fn a_rolling_update_stays_within_max_surge() {
    let server = ApiServer::new();
    server.ready_delay(Duration::from_secs(3));
    let client = server.client();
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let mut d = deployment("web", "nginx:1", 4);
    d.spec.as_mut().unwrap().strategy = serde_json::from_value(json!({
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let complete = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref()).is_some_and(|s| {
            s.observed_generation == Some(2)
                && s.updated_replicas == Some(4)
                && s.replicas == Some(4)
                && s.available_replicas == Some(4)
        })
    };
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    // The most pods alive at once, as a pod watch sees them.
    let most = std::sync::Arc::new(std::sync::Mutex::new(0));
    let seen = most.clone();
    let watch = watcher(pods, watcher::Config::default()).try_fold(
        BTreeSet::new(),
        move |mut live, event| {
            match event {
                watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                    live.insert(p.metadata.name.unwrap())
                }
                watcher::Event::Delete(p) => live.remove(&p.metadata.name.unwrap()),
                _ => false,
            };
            let mut most = seen.lock().unwrap();
            *most = (*most).max(live.len());
            async move { Ok(live) }
        },
    );
    let rollout = async {
        let first = |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.available_replicas == Some(4))
        };
        await_condition(deployments.clone(), "web", first)
            .await
            .unwrap();
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(image))
            .await
            .unwrap();
        await_condition(deployments.clone(), "web", complete)
            .await
            .unwrap();
    };
    tokio::time::timeout(LIMIT, async {
        tokio::select! {
            _ = rollout => {}
            r = watch => panic!("the pod watch ended: {r:?}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(
        *most.lock().unwrap(),
        5,
        "replicas + maxSurge at most, and the surge used"
    );
}

#[tokio::test]
async fn watch_faults_act_alike_in_the_server_and_in_the_proxy_in_front_of_one() {
    let server = ApiServer::new();
    let proxy = FaultProxy::new(server.client());
    let api: Api<ConfigMap> = Api::default_namespaced(server.client());
    for name in ["a", "b", "c"] {
        api.create(&PostParams::default(), &config_map(name))
            .await
            .unwrap();
    }
    let watch = |client: kube::Client| async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        let params = WatchParams::default().timeout(1).disable_bookmarks();
        tokio::time::timeout(LIMIT, async {
            let events: Vec<WatchEvent<ConfigMap>> = api
                .watch(&params, "0")
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            events
        })
        .await
        .unwrap()
    };
    for rule in [
        Fault::drop_watch_after(2).resource("configmaps").times(1),
        Fault::expired().resource("configmaps").times(1),
    ] {
        server.fault(rule.clone());
        proxy.fault(rule);
        let direct = watch(server.client()).await;
        let proxied = watch(proxy.client("default")).await;
        let shape = |events: &[WatchEvent<ConfigMap>]| -> Vec<String> {
            events
                .iter()
                .map(|e| match e {
                    WatchEvent::Error(status) => format!("error {}", status.code),
                    _ => "object".to_string(),
                })
                .collect()
        };
        assert_eq!(shape(&direct), shape(&proxied));
    }
    let logged: Vec<(String, u16)> = proxy
        .requests()
        .into_iter()
        .map(|r| (r.verb, r.status))
        .collect();
    assert_eq!(logged, [("watch".into(), 200), ("watch".into(), 200)]);
}
