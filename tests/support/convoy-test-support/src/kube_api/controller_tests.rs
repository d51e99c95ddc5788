//! The Deployment controller and pod lifecycles against what a real cluster shows, waiting with
//! kube-runtime's watch-based `await_condition` under paused tokio time.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::wait::{Condition, await_condition};
use serde_json::json;
use tokio::time::Instant;

use super::tests::deployment;
use super::*;

/// Waits (bounded) until the named object satisfies `cond`.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let waited = tokio::time::timeout(
        Duration::from_secs(3600),
        await_condition(api.clone(), name, cond),
    );
    waited
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap()
        .unwrap_or_else(|| panic!("{name} is gone while waiting for {what}"))
}

/// `kubectl rollout status`'s rule for a finished rollout.
fn rolled_out(d: Option<&Deployment>) -> bool {
    let Some(d) = d else { return false };
    let (Some(spec), Some(status)) = (&d.spec, &d.status) else {
        return false;
    };
    let want = spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
        && updated == want
        && status.replicas.unwrap_or(0) == updated
        && status.available_replicas.unwrap_or(0) >= updated
}

fn condition_reason(d: &Deployment, kind: &str) -> (String, String) {
    let conditions = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let c = conditions
        .into_iter()
        .find(|c| c.type_ == kind)
        .expect(kind);
    (c.status, c.reason.unwrap_or_default())
}

async fn pods(client: &kube::Client, selector: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

/// The first pod matching `selector`, waiting (bounded) for the controllers to create it.
async fn first_pod(client: &kube::Client, selector: &str) -> Pod {
    let api: Api<Pod> = Api::default_namespaced(client.clone());
    let config = kube::runtime::watcher::Config::default().labels(selector);
    let pods = kube::runtime::watcher(api, config).applied_objects();
    let first = tokio::time::timeout(Duration::from_secs(60), async {
        futures::pin_mut!(pods);
        futures::TryStreamExt::try_next(&mut pods).await
    });
    first.await.expect("a pod in time").unwrap().expect("a pod")
}

fn first_container(pod: &Pod) -> ContainerStatus {
    pod.status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_deployment_rolls_out_after_the_ready_delay() {
    let server = ApiServer::new();
    server.ready_delay(Duration::from_secs(5));
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let start = Instant::now();
    api.create(&PostParams::default(), &deployment("web", "nginx:1", 3))
        .await
        .unwrap();
    let done = wait_for(&api, "web", "the rollout", rolled_out).await;
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "ready before the delay"
    );
    assert_eq!(
        condition_reason(&done, "Available"),
        ("True".into(), "MinimumReplicasAvailable".into())
    );
    assert_eq!(
        condition_reason(&done, "Progressing"),
        ("True".into(), "NewReplicaSetAvailable".into())
    );
    let status = done.status.unwrap();
    assert_eq!(
        (status.ready_replicas, status.unavailable_replicas),
        (Some(3), None)
    );

    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let rs = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let rs_name = rs.metadata.name.clone().unwrap();
    let hash = rs.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(rs.metadata.owner_references.unwrap()[0].name, "web");
    assert_eq!(rs.status.unwrap().available_replicas, Some(3));
    let pods = pods(&client, "app=web").await;
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        let name = pod.metadata.name.as_deref().unwrap();
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert!(first_container(pod).ready);
    }
}

#[tokio::test(start_paused = true)]
async fn a_new_template_rolls_to_a_new_replica_set() {
    let server = ApiServer::new();
    server.ready_delay(Duration::from_secs(2));
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", "nginx:1", 4))
        .await
        .unwrap();
    wait_for(&api, "web", "the first rollout", rolled_out).await;
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    let patched = api
        .patch("web", &PatchParams::default(), &Patch::Merge(image))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    let done = wait_for(&api, "web", "the second rollout", rolled_out).await;
    assert_eq!(done.status.unwrap().observed_generation, Some(2));
    assert_eq!(
        done.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    let replicas: Vec<i32> = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|rs| rs.spec.as_ref().unwrap().replicas.unwrap())
        .collect();
    assert_eq!(replicas.iter().sum::<i32>(), 4);
    assert!(replicas.contains(&0) && replicas.len() == 2);
    for pod in pods(&client, "app=web").await {
        let image = pod.spec.unwrap().containers[0].image.clone();
        assert_eq!(image.as_deref(), Some("nginx:2"));
    }
}

#[tokio::test(start_paused = true)]
async fn crash_looping_pods_restart_and_the_rollout_times_out() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    let mut d = deployment("web", "registry/crashloop:1", 1);
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(120);
    api.create(&PostParams::default(), &d).await.unwrap();
    let pod_api: Api<Pod> = Api::default_namespaced(client.clone());
    let name = first_pod(&client, "app=web").await.metadata.name.unwrap();
    let backoff = |restarts: i32| {
        move |p: Option<&Pod>| {
            p.is_some_and(|p| {
                let c = first_container(p);
                let waiting = c.state.and_then(|s| s.waiting).and_then(|w| w.reason);
                waiting.as_deref() == Some("CrashLoopBackOff") && c.restart_count >= restarts
            })
        }
    };
    let first = wait_for(&pod_api, &name, "CrashLoopBackOff", backoff(1)).await;
    let last = first_container(&first)
        .last_state
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(last.exit_code, 1);
    wait_for(&pod_api, &name, "more restarts", backoff(3)).await;

    let timed_out = |d: Option<&Deployment>| {
        d.is_some_and(|d| condition_reason(d, "Progressing").1 == "ProgressDeadlineExceeded")
    };
    let done = wait_for(&api, "web", "the progress deadline", timed_out).await;
    assert_eq!(condition_reason(&done, "Progressing").0, "False");
    assert_eq!(condition_reason(&done, "Available").0, "False");
}

#[tokio::test(start_paused = true)]
async fn image_pull_failures_back_off() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &deployment("web", "nginx:pullfail", 1),
    )
    .await
    .unwrap();
    let pod_api: Api<Pod> = Api::default_namespaced(client.clone());
    let name = first_pod(&client, "app=web").await.metadata.name.unwrap();
    let reason = |want: &'static str| {
        move |p: Option<&Pod>| {
            p.is_some_and(|p| {
                let waiting = first_container(p)
                    .state
                    .and_then(|s| s.waiting)
                    .and_then(|w| w.reason);
                waiting.as_deref() == Some(want)
            })
        }
    };
    let pulling = wait_for(&pod_api, &name, "ErrImagePull", reason("ErrImagePull")).await;
    assert_eq!(pulling.status.unwrap().phase.as_deref(), Some("Pending"));
    wait_for(
        &pod_api,
        &name,
        "ImagePullBackOff",
        reason("ImagePullBackOff"),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn paused_deployments_wait_and_scale_and_delete_cascade() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", "nginx:1", 2))
        .await
        .unwrap();
    wait_for(&api, "web", "the rollout", rolled_out).await;

    let pause = json!({"spec": {"paused": true, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(pause))
        .await
        .unwrap();
    let paused = |d: Option<&Deployment>| {
        d.is_some_and(|d| condition_reason(d, "Progressing").1 == "DeploymentPaused")
    };
    wait_for(&api, "web", "the paused condition", paused).await;
    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );

    let resume = json!({"spec": {"paused": false, "replicas": 0}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(resume))
        .await
        .unwrap();
    wait_for(&api, "web", "scale to zero", rolled_out).await;
    assert!(pods(&client, "app=web").await.is_empty());

    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    wait_for(&api, "web", "scale up", rolled_out).await;
    assert_eq!(pods(&client, "app=web").await.len(), 2);

    api.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let gone = |p: Option<&ReplicaSet>| p.is_none();
    let rs = sets.list(&ListParams::default()).await.unwrap().items;
    for rs in rs {
        let name = rs.metadata.name.unwrap();
        tokio::time::timeout(
            Duration::from_secs(60),
            await_condition(sets.clone(), &name, gone),
        )
        .await
        .unwrap()
        .unwrap();
    }
    assert!(pods(&client, "app=web").await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_image_marked_pullfail_cannot_be_pulled() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(
        &PostParams::default(),
        &deployment("stuck", "app:pullfail", 1),
    )
    .await
    .unwrap();
    let pod_api: Api<Pod> = Api::default_namespaced(client.clone());
    let name = first_pod(&client, "app=stuck").await.metadata.name.unwrap();
    let waiting = |reason: &'static str| {
        move |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|c| c.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == reason)
        }
    };
    let pulling = wait_for(&pod_api, &name, "ErrImagePull", waiting("ErrImagePull")).await;
    assert_eq!(pulling.status.unwrap().phase.as_deref(), Some("Pending"));
    wait_for(
        &pod_api,
        &name,
        "ImagePullBackOff",
        waiting("ImagePullBackOff"),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_rollback_reuses_the_old_replica_set_as_a_new_revision() {
    let server = ApiServer::new();
    let client = server.client();
    let api: Api<Deployment> = Api::default_namespaced(client.clone());
    api.create(&PostParams::default(), &deployment("web", "nginx:1", 2))
        .await
        .unwrap();
    wait_for(&api, "web", "revision 1", rolled_out).await;
    let image = |tag: &str| {
        let spec = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": format!("nginx:{tag}")}]}}}});
        Patch::Merge(spec)
    };
    api.patch("web", &PatchParams::default(), &image("2"))
        .await
        .unwrap();
    wait_for(&api, "web", "revision 2", rolled_out).await;
    api.patch("web", &PatchParams::default(), &image("1"))
        .await
        .unwrap();
    let back = wait_for(&api, "web", "revision 3", rolled_out).await;
    assert_eq!(
        back.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    let sets: Api<ReplicaSet> = Api::default_namespaced(client.clone());
    assert_eq!(
        sets.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
}

/// One HTTP/1.0 request (so the response is not chunked), answering a reader past the headers.
fn http10(
    url: &str,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::BufReader<std::net::TcpStream> {
    use std::io::{BufRead, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
        line.clear();
    }
    reader
}

#[tokio::test]
async fn served_rollouts_progress_while_the_test_thread_blocks() {
    use std::io::BufRead;
    let server = ApiServer::new();
    let served = server.serve().await;
    let url = served.url();
    // Everything below blocks this (single) test thread, as running the convoy binary would.
    let body = serde_json::to_string(&deployment("web", "nginx:1", 2)).unwrap();
    http10(
        &url,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        &body,
    );
    let path = "/apis/apps/v1/namespaces/default/deployments?watch=true&timeoutSeconds=30";
    let events = http10(&url, "GET", path, "");
    let done = events.lines().map(Result::unwrap).any(|line| {
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        let d: Deployment = serde_json::from_value(event["object"].clone()).unwrap();
        rolled_out(Some(&d))
    });
    assert!(
        done,
        "the rollout completed while the test thread was blocked"
    );
    drop(served);
    assert!(
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err(),
        "the port is closed"
    );
}
