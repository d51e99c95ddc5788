//! Pod lifecycles, standing in for the scheduler and the kubelet: each container's image picks a
//! `PodBehaviour`, and a pod's status is a pure function of how long ago it was first seen, so
//! every pass computes the same status until something is due to change.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::discovery;
use super::store::{Clock, Store, meta_str};
use super::{PodBehaviour, Settings};

/// How long a crash-looping container runs before it exits.
const CRASH_RUN: Duration = Duration::from_secs(1);
/// The kubelet's back-off: 10 s doubling to 5 min.
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How long a failed pull shows `ErrImagePull` before `ImagePullBackOff`.
const PULL_FAILS_FOR: Duration = Duration::from_secs(5);

/// What a pod does, fixed when it is first seen.
struct Life {
    born: Instant,
    ready_delay: Duration,
    /// Makes container IDs differ between pods.
    salt: u64,
    behaviours: Vec<PodBehaviour>,
}

impl Life {
    /// When every container is Ready, if ever.
    fn ready_at(&self) -> Option<Instant> {
        let all_ready = self.behaviours.iter().all(|b| *b == PodBehaviour::Ready);
        all_ready.then_some(self.born + self.ready_delay)
    }
}

#[derive(Default)]
pub struct Kubelet {
    lives: HashMap<String, Life>,
}

fn behaviour_of(image: &str, settings: &Settings) -> PodBehaviour {
    settings
        .behaviours
        .iter()
        .rev()
        .find(|(needle, _)| image.contains(needle.as_str()))
        .map_or(PodBehaviour::Ready, |(_, b)| *b)
}

impl Kubelet {
    /// When a pod became or becomes Ready, if it ever does.
    pub fn ready_at(&self, uid: &str) -> Option<Instant> {
        self.lives.get(uid).and_then(Life::ready_at)
    }

    /// Forgets the pods that are gone, given the uids of those left.
    pub fn keep_only(&mut self, alive: &std::collections::HashSet<&str>) {
        self.lives.retain(|uid, _| alive.contains(uid.as_str()));
    }

    /// Forgets a pod that is gone.
    pub fn forget(&mut self, uid: &str) {
        self.lives.remove(uid);
    }

    /// Whether the pod has been seen (its life is fixed).
    pub fn knows(&self, uid: &str) -> bool {
        self.lives.contains_key(uid)
    }

    /// Brings one pod's status up to date (fixing its life when first seen); returns when its
    /// status next changes. The status is a pure function of the pod, its life and `now`, so a
    /// pod needs another look only when it changes or that time comes.
    pub fn sync(
        &mut self,
        store: &mut Store,
        settings: &Settings,
        pod: &Value,
        now: Instant,
    ) -> Option<Instant> {
        let pods = discovery::find("", "v1", "pods").expect("pods are served");
        let life = self
            .lives
            .entry(meta_str(pod, "uid").to_string())
            .or_insert_with(|| Life {
                born: now,
                ready_delay: settings.ready_delay,
                salt: hash(meta_str(pod, "uid")),
                behaviours: containers(pod)
                    .iter()
                    .map(|c| behaviour_of(c["image"].as_str().unwrap_or(""), settings))
                    .collect(),
            });
        let (status, due) = pod_status(pod, life, &store.clock, now);
        let mut updated = pod.clone();
        updated["status"] = status;
        store.update(pods, pod, updated, false);
        due
    }
}

fn containers(pod: &Value) -> Vec<Value> {
    pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn condition(kind: &str, ok: bool, since: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": since,
    })
}

/// One container's state at `t` after the pod was born: (status, started, ready, next change).
fn container_status(
    spec: &Value,
    b: PodBehaviour,
    life: &Life,
    clock: &Clock,
    t: Duration,
) -> (Value, bool, bool, Option<Duration>) {
    let name = spec["name"].as_str().unwrap_or("");
    let image = spec["image"].as_str().unwrap_or("");
    let at = |d: Duration| clock.stamp_at(life.born + d);
    let running = |since: Duration| json!({"running": {"startedAt": at(since)}});
    let waiting =
        |reason: &str, message: String| json!({"waiting": {"reason": reason, "message": message}});
    let (state, last, restarts, started, ready, next) = match b {
        PodBehaviour::Ready => {
            let ready = t >= life.ready_delay;
            let next = (!ready).then_some(life.ready_delay);
            (running(Duration::ZERO), json!({}), 0, true, ready, next)
        }
        PodBehaviour::ImagePullFails if t < PULL_FAILS_FOR => {
            let message =
                format!("failed to pull and unpack image \"docker.io/library/{image}\": not found");
            (
                waiting("ErrImagePull", message),
                json!({}),
                0,
                false,
                false,
                Some(PULL_FAILS_FOR),
            )
        }
        PodBehaviour::ImagePullFails => {
            let message = format!("Back-off pulling image \"{image}\"");
            (
                waiting("ImagePullBackOff", message),
                json!({}),
                0,
                false,
                false,
                None,
            )
        }
        PodBehaviour::CrashLoop => {
            let crash = crash_loop(t);
            let last = match crash.last_run {
                Some((from, to)) => json!({"terminated": {
                    "exitCode": 1, "reason": "Error", "message": "container exited with code 1",
                    "startedAt": at(from), "finishedAt": at(to),
                }}),
                None => json!({}),
            };
            let state = match crash.running_since {
                Some(since) => running(since),
                None => waiting(
                    "CrashLoopBackOff",
                    format!(
                        "back-off {}s restarting failed container={name}",
                        crash.backoff.as_secs()
                    ),
                ),
            };
            (state, last, crash.restarts, true, false, Some(crash.next))
        }
    };
    let mut status = json!({
        "name": name, "image": image, "ready": ready, "restartCount": restarts,
        "started": started && state.get("running").is_some(), "state": state, "lastState": last,
    });
    if started {
        status["containerID"] = json!(format!("containerd://{:064x}", hash(name) ^ life.salt));
        status["imageID"] = json!(format!(
            "docker.io/library/{image}@sha256:{:064x}",
            hash(image)
        ));
    }
    (status, started, ready, next)
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

struct Crash {
    restarts: u32,
    running_since: Option<Duration>,
    last_run: Option<(Duration, Duration)>,
    backoff: Duration,
    next: Duration,
}

/// Run for a second, exit 1, wait out the back-off, run again.
fn crash_loop(t: Duration) -> Crash {
    let (mut start, mut restarts, mut last_run) = (Duration::ZERO, 0, None);
    loop {
        let exit = start + CRASH_RUN;
        let backoff = BACKOFF_START
            .saturating_mul(1 << restarts.min(5))
            .min(BACKOFF_MAX);
        if t < exit {
            return Crash {
                restarts,
                running_since: Some(start),
                last_run,
                backoff,
                next: exit,
            };
        }
        let restart = exit + backoff;
        if t < restart {
            let last_run = Some((start, exit));
            return Crash {
                restarts: restarts + 1,
                running_since: None,
                last_run,
                backoff,
                next: restart,
            };
        }
        last_run = Some((start, exit));
        start = restart;
        restarts += 1;
    }
}

/// The whole pod status at `now`, and when it next changes.
fn pod_status(pod: &Value, life: &Life, clock: &Clock, now: Instant) -> (Value, Option<Instant>) {
    let t = now.saturating_duration_since(life.born);
    let born = clock.stamp_at(life.born);
    let (mut statuses, mut all_started, mut all_ready, mut next) =
        (Vec::new(), true, true, None::<Duration>);
    for (spec, b) in containers(pod).iter().zip(&life.behaviours) {
        let (status, started, ready, due) = container_status(spec, *b, life, clock, t);
        statuses.push(status);
        all_started &= started;
        all_ready &= ready;
        next = match (next, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let ready_since = match life.ready_at() {
        Some(at) if all_ready => clock.stamp_at(at),
        _ => born.clone(),
    };
    let index = hash(meta_str(pod, "name")) % 250 + 2;
    let status = json!({
        "phase": if all_started { "Running" } else { "Pending" },
        "conditions": [
            condition("PodReadyToStartContainers", true, &born),
            condition("Initialized", true, &born),
            condition("Ready", all_ready, &ready_since),
            condition("ContainersReady", all_ready, &ready_since),
            condition("PodScheduled", true, &born),
        ],
        "hostIP": "172.18.0.2",
        "hostIPs": [{"ip": "172.18.0.2"}],
        "podIP": format!("10.244.0.{index}"),
        "podIPs": [{"ip": format!("10.244.0.{index}")}],
        "startTime": born,
        "containerStatuses": statuses,
        "qosClass": "BestEffort",
    });
    (status, next.map(|d| life.born + d))
}
