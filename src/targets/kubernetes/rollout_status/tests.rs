use jiff::Timestamp;
use k8s_openapi::List;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;

const DEPLOYMENT_PROGRESSING: &str = include_str!("../fixtures/deployment-progressing.json");
const DEPLOYMENT_DONE: &str = include_str!("../fixtures/deployment-done.json");
const DEPLOYMENT_DEADLINE: &str = include_str!("../fixtures/deployment-deadline-exceeded.json");
const DEPLOYMENT_QUOTA: &str = include_str!("../fixtures/deployment-quota-exceeded.json");
const REPLICA_SETS: &str = include_str!("../fixtures/replicasets.json");
const POD_READY: &str = include_str!("../fixtures/pod-ready.json");
const POD_CRASHLOOP: &str = include_str!("../fixtures/pod-crashloop.json");
const POD_INIT_OOMKILLED: &str = include_str!("../fixtures/pod-init-oomkilled.json");
const POD_IMAGE_PULL: &str = include_str!("../fixtures/pod-image-pull-backoff.json");
const POD_CONFIG_ERROR: &str = include_str!("../fixtures/pod-create-config-error.json");
const POD_UNSCHEDULABLE: &str = include_str!("../fixtures/pod-unschedulable.json");
const POD_OLD_RS_CRASHLOOP: &str = include_str!("../fixtures/pod-old-replicaset-crashloop.json");

/// When the fixtures' rollout was applied; the new ReplicaSet and its pods follow within seconds.
const APPLIED_AT: &str = "2026-11-22T10:00:00Z";

fn at(timestamp: &str) -> Timestamp {
    timestamp.parse().unwrap()
}

fn parse<T: DeserializeOwned>(json: Value) -> T {
    serde_json::from_value(json).unwrap()
}

/// A fixture with a JSON merge patch (RFC 7386) applied, so variants of one recorded object stay
/// readable: `null` removes a field.
fn patched(fixture: &str, patch: Value) -> Value {
    fn merge(target: &mut Value, patch: Value) {
        match patch {
            Value::Object(fields) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let target = target.as_object_mut().unwrap();
                for (key, value) in fields {
                    if value.is_null() {
                        target.remove(&key);
                    } else {
                        merge(target.entry(key).or_insert(Value::Null), value);
                    }
                }
            }
            other => *target = other,
        }
    }
    let mut value: Value = serde_json::from_str(fixture).unwrap();
    merge(&mut value, patch);
    value
}

fn replica_sets() -> Vec<ReplicaSet> {
    serde_json::from_str::<List<ReplicaSet>>(REPLICA_SETS)
        .unwrap()
        .items
}

enum Expect {
    Stale,
    Progressing(&'static str),
    Done,
    Failed(&'static str),
}

struct Case {
    name: &'static str,
    deployment: Value,
    pods: Vec<&'static str>,
    applied_at: &'static str,
    now: &'static str,
    expect: Expect,
}

fn case(
    name: &'static str,
    deployment: Value,
    pods: &[&'static str],
    now: &'static str,
    expect: Expect,
) -> Case {
    Case {
        name,
        deployment,
        pods: pods.to_vec(),
        applied_at: APPLIED_AT,
        now,
        expect,
    }
}

fn waiting(what: &str) -> String {
    format!("Waiting for deployment \"api\" rollout to finish: {what}...")
}

#[test]
fn classifies_recorded_rollouts() {
    let no_patch = || json!({});
    let counts = |replicas: i32, updated: i32, available: i32| {
        json!({"status": {
            "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": available, "availableReplicas": available,
        }})
    };
    let cases = vec![
        case(
            "stale until the controller observes our generation",
            patched(DEPLOYMENT_DONE, json!({"metadata": {"generation": 5}})),
            &[POD_READY],
            "2026-11-22T10:00:01Z",
            Expect::Stale,
        ),
        case(
            "stale beats failing pods: they may belong to the previous spec",
            patched(
                DEPLOYMENT_PROGRESSING,
                json!({"metadata": {"generation": 5}}),
            ),
            &[POD_CRASHLOOP],
            "2026-11-22T10:04:00Z",
            Expect::Stale,
        ),
        case(
            "stale while the status was never written",
            patched(DEPLOYMENT_DONE, json!({"status": null})),
            &[],
            "2026-11-22T10:00:01Z",
            Expect::Stale,
        ),
        case(
            "kubectl 1: new replicas still being created",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_READY],
            "2026-11-22T10:00:31Z",
            Expect::Progressing("2 out of 3 new replicas have been updated"),
        ),
        case(
            "kubectl 2: old replicas pending termination",
            patched(DEPLOYMENT_PROGRESSING, counts(4, 3, 3)),
            &[POD_READY],
            "2026-11-22T10:00:45Z",
            Expect::Progressing("1 old replicas are pending termination"),
        ),
        case(
            "kubectl 3: updated replicas not yet available",
            patched(DEPLOYMENT_PROGRESSING, counts(3, 3, 2)),
            &[POD_READY],
            "2026-11-22T10:00:50Z",
            Expect::Progressing("2 of 3 updated replicas are available"),
        ),
        case(
            "surplus new replicas during a scale-down are not done yet (kubectl would say done)",
            patched(DEPLOYMENT_DONE, json!({"spec": {"replicas": 2}})),
            &[POD_READY],
            "2026-11-22T10:01:12Z",
            Expect::Progressing("1 surplus new replicas are pending termination"),
        ),
        case(
            "done",
            patched(DEPLOYMENT_DONE, no_patch()),
            &[POD_READY],
            "2026-11-22T10:01:12Z",
            Expect::Done,
        ),
        case(
            "done with spec.replicas defaulted to 1",
            patched(
                DEPLOYMENT_DONE,
                json!({"spec": {"replicas": null}, "status": {
                    "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
                }}),
            ),
            &[POD_READY],
            "2026-11-22T10:01:12Z",
            Expect::Done,
        ),
        case(
            "progress deadline exceeded after our apply",
            patched(DEPLOYMENT_DEADLINE, no_patch()),
            &[POD_READY],
            "2026-11-22T10:10:05Z",
            Expect::Failed(
                "deployment \"api\" exceeded its progress deadline: \
                 ReplicaSet \"api-7d9c8b6f5\" has timed out progressing.",
            ),
        ),
        Case {
            applied_at: "2026-11-22T10:15:00Z",
            ..case(
                "a deadline left over from before our apply does not fail us",
                patched(DEPLOYMENT_DEADLINE, no_patch()),
                &[POD_READY],
                "2026-11-22T10:15:02Z",
                Expect::Progressing("1 out of 3 new replicas have been updated"),
            )
        },
        case(
            "crash loop fails at once, with the tail of the termination message",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_READY, POD_CRASHLOOP],
            "2026-11-22T10:04:00Z",
            Expect::Failed(
                "pod api-7d9c8b6f5-m4n7z container api: CrashLoopBackOff (restarted 4 times; \
                 last exit code 1: \"2026-11-22T10:03:41Z INFO connecting to postgres at \
                 db.shop.svc.cluster.local:5432 | 2026-11-22T10:03:46Z WARN connect attempt 1 \
                 failed, retrying | 2026-11-22T10:03:51Z ERROR database unreachable\")",
            ),
        ),
        case(
            "an init container's crash loop, OOMKilled without a message",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_INIT_OOMKILLED],
            "2026-11-22T10:00:40Z",
            Expect::Failed(
                "pod api-7d9c8b6f5-t8r5v init container migrate: CrashLoopBackOff \
                 (restarted 1 time; last exit code 137 (OOMKilled))",
            ),
        ),
        case(
            "an old ReplicaSet's crash-looping pod does not fail the rollout",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_OLD_RS_CRASHLOOP, POD_READY],
            "2026-11-22T10:00:31Z",
            Expect::Progressing("2 out of 3 new replicas have been updated"),
        ),
        case(
            "image pull back-off inside the grace is still progressing",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_IMAGE_PULL],
            "2026-11-22T10:00:40Z",
            Expect::Progressing("2 out of 3 new replicas have been updated"),
        ),
        case(
            "image pull back-off past the grace fails",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_IMAGE_PULL],
            "2026-11-22T10:01:30Z",
            Expect::Failed(
                "pod api-7d9c8b6f5-h6j3d container api: ImagePullBackOff (for 1m 28s): \
                 Back-off pulling image \"registry.example.com/shop/api:4.2.0\": ErrImagePull: \
                 failed to pull and unpack image \"registry.example.com/shop/api:4.2.0\": failed \
                 to resolve reference \"registry.example.com/shop/api:4.2.0\": \
                 registry.example.com/shop/api:4.2.0: not found",
            ),
        ),
        case(
            "CreateContainerConfigError fails at once",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_READY, POD_CONFIG_ERROR],
            "2026-11-22T10:00:05Z",
            Expect::Failed(
                "pod api-7d9c8b6f5-w2c9f container api: CreateContainerConfigError: \
                 secret \"api-db\" not found",
            ),
        ),
        case(
            "unschedulable inside the grace is still progressing",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_UNSCHEDULABLE],
            "2026-11-22T10:01:00Z",
            Expect::Progressing("2 out of 3 new replicas have been updated"),
        ),
        case(
            "unschedulable past the grace fails",
            patched(DEPLOYMENT_PROGRESSING, no_patch()),
            &[POD_UNSCHEDULABLE],
            "2026-11-22T10:03:00Z",
            Expect::Failed(
                "pod api-7d9c8b6f5-p5s8k: Unschedulable (for 2m 58s): 0/3 nodes are available: \
                 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims \
                 found for incoming pod.",
            ),
        ),
        case(
            "ReplicaFailure (quota) fails at once",
            patched(DEPLOYMENT_QUOTA, no_patch()),
            &[],
            "2026-11-22T10:00:02Z",
            Expect::Failed(
                "deployment \"api\" cannot create pods: FailedCreate: pods \"api-7d9c8b6f5-8kd2w\" \
                 is forbidden: exceeded quota: compute-quota, requested: limits.cpu=500m, used: \
                 limits.cpu=3800m, limited: limits.cpu=4",
            ),
        ),
    ];

    let replica_sets = replica_sets();
    for case in cases {
        let deployment: Deployment = parse(case.deployment);
        let pods: Vec<Pod> = case
            .pods
            .iter()
            .map(|pod| serde_json::from_str(pod).unwrap())
            .collect();
        let status = rollout_status_of(
            &deployment,
            &replica_sets,
            &pods,
            at(case.applied_at),
            at(case.now),
            &Graces::default(),
        );
        match (&case.expect, &status) {
            (Expect::Stale, RolloutStatus::Stale) | (Expect::Done, RolloutStatus::Done) => {}
            (Expect::Progressing(what), RolloutStatus::Progressing { message, .. }) => {
                assert_eq!(message, &waiting(what), "{}", case.name)
            }
            (Expect::Failed(expected), RolloutStatus::Failed(failure)) => {
                assert_eq!(failure.to_string(), *expected, "{}", case.name)
            }
            _ => panic!("{}: got {status:?}", case.name),
        }
    }
}

#[test]
fn crash_loop_failure_names_pod_container_reason_and_exit() {
    let deployment: Deployment = parse(patched(DEPLOYMENT_PROGRESSING, json!({})));
    let pods: Vec<Pod> = vec![serde_json::from_str(POD_CRASHLOOP).unwrap()];
    let status = rollout_status_of(
        &deployment,
        &replica_sets(),
        &pods,
        at(APPLIED_AT),
        at("2026-11-22T10:04:00Z"),
        &Graces::default(),
    );
    let RolloutStatus::Failed(RolloutFailure::Pod(failure)) = status else {
        panic!("not a pod failure: {status:?}");
    };
    assert_eq!(failure.pod, "api-7d9c8b6f5-m4n7z");
    assert_eq!(failure.container.as_deref(), Some("api"));
    assert!(!failure.init_container);
    assert_eq!(failure.reason, "CrashLoopBackOff");
    assert_eq!(failure.restarts, Some(4));
    let last = failure.last_termination.unwrap();
    assert_eq!(last.exit_code, 1);
    assert!(
        last.message_tail
            .unwrap()
            .ends_with("ERROR database unreachable")
    );
}

#[test]
fn progressing_reports_the_counts() {
    let deployment: Deployment = parse(patched(DEPLOYMENT_PROGRESSING, json!({})));
    let status = rollout_status_of(
        &deployment,
        &replica_sets(),
        &[],
        at(APPLIED_AT),
        at("2026-11-22T10:00:31Z"),
        &Graces::default(),
    );
    assert!(matches!(
        status,
        RolloutStatus::Progressing {
            updated: 2,
            ready: 3,
            available: 3,
            desired: 3,
            ..
        }
    ));
}

#[test]
fn new_replica_set_is_the_one_with_the_deployments_revision() {
    let replica_sets = replica_sets();
    let seen: Vec<ReplicaSetSeen> = replica_sets.iter().cloned().map(Into::into).collect();
    let new_of = |deployment: &Deployment| {
        new_replica_set(&deployment.clone().into(), &seen).map(|rs| rs.name.clone())
    };
    // The list holds revisions 3, 4, 2 of `api` and a revision 7 owned by `worker`.
    let deployment: Deployment = parse(patched(DEPLOYMENT_PROGRESSING, json!({})));
    assert_eq!(new_of(&deployment).as_deref(), Some("api-7d9c8b6f5"));

    // Revision 5 is announced but its ReplicaSet not yet listed: no new ReplicaSet, so no pod can
    // fail the rollout yet.
    let ahead: Deployment = parse(patched(
        DEPLOYMENT_PROGRESSING,
        json!({"metadata": {"annotations": {REVISION_ANNOTATION: "5"}}}),
    ));
    assert!(new_of(&ahead).is_none());
    let pods: Vec<Pod> = vec![serde_json::from_str(POD_CRASHLOOP).unwrap()];
    let status = rollout_status_of(
        &ahead,
        &replica_sets,
        &pods,
        at(APPLIED_AT),
        at("2026-11-22T10:04:00Z"),
        &Graces::default(),
    );
    assert!(
        matches!(status, RolloutStatus::Progressing { .. }),
        "{status:?}"
    );

    // Without a revision annotation, the highest revision it controls.
    let unannotated: Deployment = parse(patched(
        DEPLOYMENT_PROGRESSING,
        json!({"metadata": {"annotations": {REVISION_ANNOTATION: null}}}),
    ));
    assert_eq!(new_of(&unannotated).as_deref(), Some("api-7d9c8b6f5"));
}

#[test]
fn terminating_pods_of_the_new_replica_set_are_ignored() {
    let deployment: Deployment = parse(patched(DEPLOYMENT_PROGRESSING, json!({})));
    let pods: Vec<Pod> = vec![parse(patched(
        POD_CRASHLOOP,
        json!({"metadata": {"deletionTimestamp": "2026-11-22T10:03:55Z", "deletionGracePeriodSeconds": 30}}),
    ))];
    let status = rollout_status_of(
        &deployment,
        &replica_sets(),
        &pods,
        at(APPLIED_AT),
        at("2026-11-22T10:04:00Z"),
        &Graces::default(),
    );
    assert!(
        matches!(status, RolloutStatus::Progressing { .. }),
        "{status:?}"
    );
}

#[test]
fn graces_are_configurable() {
    let deployment: Deployment = parse(patched(DEPLOYMENT_PROGRESSING, json!({})));
    let pods: Vec<Pod> = vec![serde_json::from_str(POD_IMAGE_PULL).unwrap()];
    let patient = Graces {
        image_pull: Duration::from_secs(300),
        ..Graces::default()
    };
    let status = rollout_status_of(
        &deployment,
        &replica_sets(),
        &pods,
        at(APPLIED_AT),
        at("2026-11-22T10:01:30Z"),
        &patient,
    );
    assert!(
        matches!(status, RolloutStatus::Progressing { .. }),
        "{status:?}"
    );
}
