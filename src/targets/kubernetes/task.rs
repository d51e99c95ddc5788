//! Running a release task as a Job (see `job.rs` for what it is made of): created once, or taken
//! up again after a killed run, followed by watch until it completes or fails; a failure names
//! the pod's reason and the log tail when the kubelet serves it.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::diagnostic::Diagnose;
use crate::execute::TargetError;

use super::KubeError;
use super::job::{
    BY_HAND_LABEL, JobSpec, JobState, RELEASE_LABEL, build_job, is_ours, job_name, job_state,
    pod_reason, stuck,
};
use super::target::{KubeTarget, action};

/// The release number [`crate::execute::Target::preflight`] is given for a task run by hand
/// (`convoy task run`): its Job runs again even when one of the revision finished before.
pub const BY_HAND: u64 = u64::MAX;
/// Lines of a failed task's log shown in the error.
const LOG_LINES: i64 = 20;
/// How long to wait for the API server to fetch a log from the kubelet.
const LOG_WAIT: Duration = Duration::from_secs(10);
/// Beyond the task's own deadline (`activeDeadlineSeconds`, enforced by the Job controller):
/// how long to wait for the controller to say so before giving up on the Job.
const DEADLINE_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("Job {job} failed: {reason}\n{logs}")]
    Failed {
        job: String,
        namespace: String,
        reason: String,
        logs: String,
    },
    #[error("Job {job} exists and is not this task's (no Convoy labels for it); it was left alone")]
    Foreign { job: String, namespace: String },
    #[error("Job {job} of an earlier attempt of this release failed: {reason}")]
    EarlierFailed {
        job: String,
        namespace: String,
        reason: String,
    },
    #[error("Job {job} did not finish within {budget:?} and its deadline")]
    Timeout { job: String, budget: Duration },
    #[error(transparent)]
    Api(#[from] KubeError),
}

impl Diagnose for TaskError {
    fn help(&self) -> Option<String> {
        match self {
            TaskError::Failed { job, namespace, .. } => Some(format!(
                "the Job is kept for a day: `kubectl -n {namespace} describe job/{job}` and `kubectl -n {namespace} logs job/{job}`"
            )),
            TaskError::Foreign { job, namespace } => Some(format!(
                "rename or remove that Job yourself if it is not needed (`kubectl -n {namespace} delete job/{job}`); Convoy never deletes what it did not make"
            )),
            TaskError::EarlierFailed { job, namespace, .. } => Some(format!(
                "roll the release back (`convoy rollback`), or delete the Job (`kubectl -n {namespace} delete job/{job}`) to run the task again"
            )),
            TaskError::Timeout { .. } => {
                Some("check the Job controller and the pod's events".to_string())
            }
            TaskError::Api(error) => error.help(),
        }
    }
}

impl KubeTarget {
    /// Runs task `task` (`command`) of revision `version` of `service` as a Job built from the
    /// revision's pod template, within `budget`, and follows it to its end.
    pub(super) async fn task(
        &self,
        service: &str,
        version: &str,
        task: &str,
        command: &str,
        budget: Duration,
    ) -> Result<(), TargetError> {
        let what = format!("task {task} of {version}");
        let objects = self.objects(service, version).await?;
        let Some(deployment) = &objects.deployment else {
            return Err(action(service, &what, "the templates render no Deployment"));
        };
        let name = job_name(&deployment.name(), task);
        let release = match self.release.load(std::sync::atomic::Ordering::Relaxed) {
            BY_HAND => BY_HAND_LABEL.to_string(),
            number => number.to_string(),
        };
        let spec = JobSpec {
            name: &name,
            namespace: self.namespace(),
            service,
            revision: version,
            task,
            command,
            release: &release,
            timeout_secs: budget.as_secs(),
        };
        let template = &deployment.object.data["spec"]["template"];
        let job = build_job(&spec, template).map_err(|e| action(service, &what, e))?;
        drop(objects); // a task runs for minutes: it holds no parsed objects meanwhile
        self.run_job(&spec, job, budget)
            .await
            .map_err(|e| TargetError::failed(service, &what, e))
    }

    async fn run_job(
        &self,
        spec: &JobSpec<'_>,
        job: Job,
        budget: Duration,
    ) -> Result<(), TaskError> {
        let jobs: Api<Job> = Api::namespaced(self.client(), self.namespace());
        let name = spec.name;
        let object = format!("Job/{name}");
        let existing = jobs
            .get_opt(name)
            .await
            .map_err(|e| KubeError::from_kube("read", &object, e))?;
        let mut create = true;
        if let Some(existing) = existing {
            let namespace = self.namespace().to_string();
            if !is_ours(&existing, spec.service, spec.revision, spec.task) {
                let job = name.to_string();
                return Err(TaskError::Foreign { job, namespace });
            }
            let labels = existing.metadata.labels.clone().unwrap_or_default();
            // A resume is not told its release number (0): a Job of this revision is its own.
            let this_release = spec.release != BY_HAND_LABEL
                && (spec.release == "0"
                    || labels.get(RELEASE_LABEL).map(String::as_str) == Some(spec.release));
            match job_state(&existing) {
                // A killed run's attempt: follow it rather than start a second one.
                JobState::Running => create = false,
                JobState::Complete if this_release => return Ok(()),
                JobState::Failed { reason, message } if this_release => {
                    let reason = format!("{reason}: {message}");
                    let job = name.to_string();
                    return Err(TaskError::EarlierFailed {
                        job,
                        namespace,
                        reason,
                    });
                }
                // Another release's (or a by-hand) run of the same revision: ours, finished.
                JobState::Complete | JobState::Failed { .. } => {
                    self.delete_job(&jobs, &existing).await?
                }
            }
        }
        if create {
            jobs.create(&PostParams::default(), &job)
                .await
                .map_err(|e| KubeError::from_kube("create", &object, e))?;
        }
        let followed = tokio::time::timeout(budget + DEADLINE_GRACE, self.follow(name)).await;
        let ended = followed.map_err(|_| TaskError::Timeout {
            job: name.to_string(),
            budget,
        })??;
        match ended {
            Ended::Complete => Ok(()),
            Ended::Failed(reason) => Err(self.failure(&jobs, name, reason).await),
        }
    }

    /// Deletes an earlier finished Job of ours, with its pods, and waits until it is gone.
    async fn delete_job(&self, jobs: &Api<Job>, job: &Job) -> Result<(), TaskError> {
        let name = job.metadata.name.clone().unwrap_or_default();
        let object = format!("Job/{name}");
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: job
                .metadata
                .uid
                .clone()
                .map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..DeleteParams::default()
        };
        match jobs.delete(&name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(()),
            Err(e) => return Err(KubeError::from_kube("delete", object, e).into()),
        }
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let gone = kube::runtime::wait::await_condition(
            jobs.clone(),
            &name,
            kube::runtime::wait::conditions::is_deleted(&uid),
        );
        tokio::time::timeout(Duration::from_secs(120), gone)
            .await
            .map_err(|_| TaskError::Timeout {
                job: name.clone(),
                budget: Duration::from_secs(120),
            })?
            .map_err(|e| KubeError::Api {
                action: "wait for the deletion of",
                object,
                message: e.to_string(),
                code: None,
            })?;
        Ok(())
    }

    /// Watches Job `name` and its pods until it completes or fails, or a pod cannot start.
    async fn follow(&self, name: &str) -> Result<Ended, TaskError> {
        let jobs: Api<Job> = Api::namespaced(self.client(), self.namespace());
        let pods: Api<Pod> = Api::namespaced(self.client(), self.namespace());
        let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let by_job =
            watcher::Config::default().labels(&format!("batch.kubernetes.io/job-name={name}"));
        let j = watcher::watcher(jobs, by_name)
            .default_backoff()
            .filter_map(|e| async move { e.ok().map(|e| Seen::Job(Box::new(e))) });
        let p = watcher::watcher(pods, by_job)
            .default_backoff()
            .filter_map(|e| async move { e.ok().map(|e| Seen::Pod(Box::new(e))) });
        let mut seen = futures::stream::select(j.boxed(), p.boxed());
        while let Some(event) = seen.next().await {
            match event {
                Seen::Job(event) => {
                    let (Event::Apply(job) | Event::InitApply(job)) = *event else {
                        continue;
                    };
                    match job_state(&job) {
                        JobState::Running => {}
                        JobState::Complete => return Ok(Ended::Complete),
                        JobState::Failed { reason, message } => {
                            return Ok(Ended::Failed(format!("{reason}: {message}")));
                        }
                    }
                }
                Seen::Pod(event) => {
                    let (Event::Apply(pod) | Event::InitApply(pod)) = *event else {
                        continue;
                    };
                    if let Some(reason) = stuck(&pod) {
                        return Ok(Ended::Failed(reason));
                    }
                }
            }
        }
        std::future::pending().await
    }

    /// The error for failed Job `name`: its pod's reason (exit code, OOMKilled, pull failure)
    /// over the Job's own, and the log tail or why there is none.
    async fn failure(&self, jobs: &Api<Job>, name: &str, job_reason: String) -> TaskError {
        let pods: Api<Pod> = Api::namespaced(self.client(), self.namespace());
        let listed = pods
            .list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let reason = match pod_reason(&listed) {
            Some(pod) if job_reason.starts_with(&pod) => pod,
            Some(pod) => format!("{pod}; {job_reason}"),
            None => job_reason,
        };
        let logs = match listed.first().and_then(|p| p.metadata.name.clone()) {
            Some(pod) => self.log_tail(&pods, &pod).await,
            None => "logs unavailable: the Job made no pod".to_string(),
        };
        // A pod stuck pulling would only end at the deadline: the Job is ours, stop it.
        if listed.iter().any(|p| stuck(p).is_some())
            && let Ok(Some(job)) = jobs.get_opt(name).await
        {
            let _ = self.delete_job(jobs, &job).await;
        }
        TaskError::Failed {
            job: name.to_string(),
            namespace: self.namespace().to_string(),
            reason,
            logs,
        }
    }

    /// The last lines of `pod`'s log, or `logs unavailable: …` when the kubelet does not serve
    /// them (the test cluster's stand-in kubelet does not).
    async fn log_tail(&self, pods: &Api<Pod>, pod: &str) -> String {
        let params = LogParams {
            tail_lines: Some(LOG_LINES),
            ..LogParams::default()
        };
        match tokio::time::timeout(LOG_WAIT, pods.logs(pod, &params)).await {
            Ok(Ok(text)) if text.trim().is_empty() => "output: (none)".to_string(),
            Ok(Ok(text)) => format!("output (last {LOG_LINES} lines):\n{}", text.trim_end()),
            Ok(Err(kube::Error::Api(status))) => {
                format!("logs unavailable: {}", status.message)
            }
            Ok(Err(error)) => format!("logs unavailable: {}", crate::diagnostic::chain(&error)),
            Err(_) => format!(
                "logs unavailable: the kubelet did not serve them within {}s",
                LOG_WAIT.as_secs()
            ),
        }
    }
}

enum Seen {
    Job(Box<Event<Job>>),
    Pod(Box<Event<Pod>>),
}

enum Ended {
    Complete,
    Failed(String),
}
