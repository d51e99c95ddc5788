//! A release task on AWS: `convoy host task` run on one instance of the new revision's group
//! (ours by its tags, InService, Healthy and passed by the agent) through SSM Run Command —
//! SendCommand with `AWS-RunShellScript`, then GetCommandInvocation until a terminal status.
//! Run Command has no watch, so the invocation is polled with a backoff capped at
//! `min(poll, 1.5 s)`; the command's own `executionTimeout` is the step's budget less a margin,
//! so the instance's TimedOut (with its output) arrives before the step's budget runs out.
//!
//! Resuming: each command carries the comment `convoy:<project>/<env>/release-<n>/<service>/<task>`.
//! Before sending, the release's commands (ListCommands since the release started) are searched
//! for it: one that succeeded is not run again, one still running is followed, one that failed is
//! sent again (the executor asked for the step once more). The comment is the journal: nothing
//! needs recording between SendCommand and the journal's own entry, where a kill could land.
//! Outside a release (no unfinished record) nothing is looked up: each run is a new command.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::execute::{Event, TargetError};
use crate::plan::Step;
use crate::render::templates::shell_quote;
use crate::targets::aws::agent_reports::with_agent_reports;
use crate::targets::aws::aws_target::AwsTarget;
use crate::targets::aws::error::{AwsError, describe};
use crate::targets::aws::names::{instance_env_file, instance_root};

/// The SSM document that runs a shell script.
pub const DOCUMENT: &str = "AWS-RunShellScript";
/// A comment holds at most this many characters.
const MAX_COMMENT: usize = 100;
/// Longest wait between two reads of an invocation.
const MAX_BACKOFF: Duration = Duration::from_millis(1500);
const ONE_SECOND: Duration = Duration::from_secs(1);
const FIVE_SECONDS: Duration = Duration::from_secs(5);
/// Output lines a failure quotes.
const TAIL_LINES: usize = 5;

/// What one read of an invocation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Running,
    Succeeded,
    /// Its status, exit code and output tail, one line.
    Failed(String),
}

/// The verdict on an invocation's `Status` (`Success`, `Failed`, `TimedOut`, `Cancelled` are
/// terminal; anything else is still going), its `ResponseCode` (-1: the script never ran) and
/// its output.
pub fn progress(status: &str, code: i32, stdout: &str, stderr: &str) -> Progress {
    match status {
        "Success" => Progress::Succeeded,
        "Failed" | "TimedOut" | "Cancelled" => {
            let code = match code {
                -1 => "no exit code".to_string(),
                code => format!("exit code {code}"),
            };
            let text = format!("{stdout}\n{stderr}");
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join(" / ");
            let tail = match tail.is_empty() {
                true => String::new(),
                false => format!(": {tail}"),
            };
            Progress::Failed(format!("{status} with {code}{tail}"))
        }
        _ => Progress::Running,
    }
}

/// `convoy:<project>/<env>/release-<n>/<service>/<task>`, or its digest when that is too long
/// for a comment: the same task of the same release always gets the same one.
pub fn task_comment(
    project: &str,
    environment: &str,
    release: u64,
    service: &str,
    task: &str,
) -> String {
    let comment = format!("convoy:{project}/{environment}/release-{release}/{service}/{task}");
    if comment.len() <= MAX_COMMENT {
        return comment;
    }
    let digest = hex::encode(Sha256::digest(comment.as_bytes()));
    format!("convoy:{}", &digest[..40])
}

/// The script sent to the instance: `convoy host task`, every argument one shell word.
pub fn task_script(
    project: &str,
    service: &str,
    artifact: &str,
    task: &str,
    command: &str,
    budget: Duration,
) -> String {
    let words = [
        "convoy".to_string(),
        "host".to_string(),
        "task".to_string(),
        "--root".to_string(),
        shell_quote(&instance_root(project)),
        "--env-file".to_string(),
        shell_quote(&instance_env_file(service)),
        "--timeout".to_string(),
        format!("{}s", budget.as_secs().max(1)),
        "--command".to_string(),
        shell_quote(command),
        "--".to_string(),
        shell_quote(service),
        shell_quote(artifact),
        shell_quote(task),
    ];
    words.join(" ")
}

/// The instance's budget for the task: the step's less a margin (a tenth, at most 30 s), so its
/// own timeout is read before the step's ends.
pub fn remote_budget(step: Duration) -> Duration {
    let margin = (step / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    step.saturating_sub(margin).max(Duration::from_secs(1))
}

/// A command found again by its comment.
struct Sent {
    id: String,
    instance: String,
    status: String,
}

impl AwsTarget {
    /// Runs task `task` (`command`) of revision `version` on one instance of its group.
    pub(super) async fn task(
        &self,
        step: &Step,
        version: &str,
        task: &str,
        command: &str,
    ) -> Result<(), TargetError> {
        let service = step.service.as_str();
        let action = format!("task {task} of {version}");
        let fail = |instance: &str, command: &str, detail: String| {
            let error = AwsError::Task {
                task: task.to_string(),
                instance: instance.to_string(),
                command: command.to_string(),
                detail: self.masked(&detail),
            };
            TargetError::failed(service, &action, error)
        };
        let (release, started) = self.release_started().await;
        let comment = task_comment(&self.project, &self.environment, release, service, task);
        // Only a release resumes: outside one (a task run by hand) every run is a new command.
        let sent = match started {
            Some(started) => self
                .sent_before(&comment, started)
                .await
                .map_err(|detail| self.failed(service, &action, detail))?,
            None => None,
        };
        let budget = remote_budget(step.timeout.0);
        let (id, instance) = match sent {
            Some(sent) if sent.status == "Success" => {
                self.reporter.report(&Event::Note {
                    message: format!(
                        "{service}: task {task} already succeeded on {} (command {}); not run again",
                        sent.instance, sent.id
                    ),
                });
                return Ok(());
            }
            Some(sent) if matches!(progress(&sent.status, 0, "", ""), Progress::Running) => {
                (sent.id, sent.instance)
            }
            _ => {
                let instance = self.task_instance(service, version).await?;
                let instance = instance.ok_or_else(|| {
                    let detail = "no instance of the group is InService and passed its health gate";
                    fail("no instance", "", detail.to_string())
                })?;
                let artifact = crate::plan::revision::artifact_of(version);
                // `convoy host task` stops the command a little before SSM would, so its own
                // report (exit status, masked tail) is what the invocation says.
                let own = budget.saturating_sub((budget / 20).clamp(ONE_SECOND, FIVE_SECONDS));
                let script = task_script(&self.project, service, artifact, task, command, own);
                let id = self
                    .send(&instance, &comment, &script, budget)
                    .await
                    .map_err(|detail| fail(&instance, "", detail))?;
                (id, instance)
            }
        };
        let wait_for = budget + (step.timeout.0.saturating_sub(budget)) / 2;
        match self.follow(&id, &instance, wait_for).await {
            Ok(()) => Ok(()),
            Err(detail) => Err(fail(&instance, &id, detail)),
        }
    }

    /// The unfinished release's number and start (seconds), 0 and none outside a release.
    async fn release_started(&self) -> (u64, Option<i64>) {
        let Some(releases) = &self.releases else {
            return (0, None);
        };
        match releases.latest().await {
            Ok(Some(record)) if record.is_unfinished() => {
                (record.number, Some(record.started.as_second()))
            }
            _ => (0, None),
        }
    }

    /// The newest command with `comment` sent since `started`.
    async fn sent_before(&self, comment: &str, started: i64) -> Result<Option<Sent>, String> {
        // A minute's slack for the clocks of the deployer and of AWS.
        let since = jiff::Timestamp::from_second(started - 60).unwrap_or_default();
        let filters = vec![
            filter("DocumentName", DOCUMENT)?,
            filter("InvokedAfter", &since.to_string())?,
        ];
        let mut pages = self
            .clients
            .ssm
            .list_commands()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        let mut newest: Option<(i64, Sent)> = None;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| format!("ListCommands: {}", describe(&e)))?;
            for found in page.commands.unwrap_or_default() {
                if found.comment() != Some(comment) {
                    continue;
                }
                let at = found.requested_date_time().map_or(0, |t| t.secs());
                let (Some(id), Some(instance)) = (found.command_id(), found.instance_ids().first())
                else {
                    continue;
                };
                let sent = Sent {
                    id: id.to_string(),
                    instance: instance.clone(),
                    status: found.status().map_or("", |s| s.as_str()).to_string(),
                };
                if newest.as_ref().is_none_or(|(t, _)| at >= *t) {
                    newest = Some((at, sent));
                }
            }
        }
        Ok(newest.map(|(_, sent)| sent))
    }

    /// One instance of the revision's group that counts towards its health gate (ours by the
    /// group's tags, InService, Healthy, passed by the agent); the first by id.
    async fn task_instance(
        &self,
        service: &str,
        version: &str,
    ) -> Result<Option<String>, TargetError> {
        let action = "find an instance for the task";
        let Some(group) = self.find(service, version).await? else {
            let name = self.group_name(service, version);
            return Err(self.failed(service, action, format!("group {name} is gone")));
        };
        let group = with_agent_reports(&self.clients, group, None)
            .await
            .map_err(|detail| self.failed(service, action, detail))?;
        let mut ready: Vec<String> = group
            .ready_instances()
            .into_iter()
            .map(|i| i.id.clone())
            .collect();
        ready.sort();
        Ok(ready.into_iter().next())
    }

    async fn send(
        &self,
        instance: &str,
        comment: &str,
        script: &str,
        budget: Duration,
    ) -> Result<String, String> {
        let sent = self
            .clients
            .ssm
            .send_command()
            .document_name(DOCUMENT)
            .instance_ids(instance)
            .comment(comment)
            .parameters("commands", vec![script.to_string()])
            .parameters(
                "executionTimeout",
                vec![budget.as_secs().max(1).to_string()],
            )
            .send()
            .await
            .map_err(|e| format!("SendCommand: {}", describe(&e)))?;
        sent.command
            .and_then(|c| c.command_id)
            .ok_or_else(|| "SendCommand answered no command id".to_string())
    }

    /// Reads the invocation until it ends or `budget` (from now) runs out.
    async fn follow(&self, id: &str, instance: &str, budget: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + budget;
        let cap = self.poll.min(MAX_BACKOFF);
        let mut wait = (cap / 8).max(Duration::from_millis(10));
        let mut last = "not found yet".to_string();
        loop {
            let read = self
                .clients
                .ssm
                .get_command_invocation()
                .command_id(id)
                .instance_id(instance)
                .send()
                .await;
            match read {
                Ok(output) => {
                    let status = output.status().map_or("", |s| s.as_str());
                    let out = output.standard_output_content().unwrap_or_default();
                    let err = output.standard_error_content().unwrap_or_default();
                    match progress(status, output.response_code(), out, err) {
                        Progress::Succeeded => return Ok(()),
                        Progress::Failed(detail) => return Err(detail),
                        Progress::Running => last = status.to_string(),
                    }
                }
                // Right after SendCommand the invocation may not be visible yet.
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_invocation_does_not_exist()) => {}
                Err(error) => return Err(format!("GetCommandInvocation: {}", describe(&error))),
            }
            if tokio::time::Instant::now() + wait > deadline {
                return Err(format!(
                    "no result after {}s (last status: {last})",
                    budget.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(cap);
        }
    }
}

fn filter(key: &str, value: &str) -> Result<aws_sdk_ssm::types::CommandFilter, String> {
    aws_sdk_ssm::types::CommandFilter::builder()
        .key(aws_sdk_ssm::types::CommandFilterKey::from(key))
        .value(value)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_statuses_decide_and_the_rest_keep_waiting() {
        assert_eq!(progress("Success", 0, "migrated", ""), Progress::Succeeded);
        for status in ["Pending", "InProgress", "Delayed", "Cancelling", ""] {
            assert_eq!(progress(status, -1, "", ""), Progress::Running, "{status}");
        }
        let failed = progress(
            "Failed",
            3,
            "step 1\nstep 2\n",
            "a\nb\nc\nd\nrelation \"users\" exists",
        );
        assert_eq!(
            failed,
            Progress::Failed(
                "Failed with exit code 3: a / b / c / d / relation \"users\" exists".to_string()
            )
        );
        assert_eq!(
            progress("TimedOut", -1, "", ""),
            Progress::Failed("TimedOut with no exit code".to_string())
        );
        assert!(
            matches!(progress("Cancelled", -1, "", ""), Progress::Failed(d) if d.starts_with("Cancelled"))
        );
    }

    #[test]
    fn the_script_quotes_every_argument_and_the_comment_fits() {
        let script = task_script(
            "shop",
            "api",
            "a1",
            "migrate",
            "bin/migrate --to 'latest'; rm -rf /",
            Duration::from_secs(540),
        );
        assert_eq!(
            script,
            "convoy host task --root '/srv/shop' --env-file '/etc/convoy/api.env' --timeout 540s --command 'bin/migrate --to '\\''latest'\\''; rm -rf /' -- 'api' 'a1' 'migrate'"
        );
        let comment = task_comment("shop", "production", 7, "api", "migrate");
        assert_eq!(comment, "convoy:shop/production/release-7/api/migrate");
        let long = task_comment(&"p".repeat(60), "production", 7, "api", "migrate");
        assert!(
            long.len() <= MAX_COMMENT && long.starts_with("convoy:"),
            "{long}"
        );
        assert_eq!(
            long,
            task_comment(&"p".repeat(60), "production", 7, "api", "migrate")
        );
    }

    #[test]
    fn the_instance_times_out_before_the_step_does() {
        assert_eq!(
            remote_budget(Duration::from_secs(600)),
            Duration::from_secs(570)
        );
        assert_eq!(
            remote_budget(Duration::from_secs(60)),
            Duration::from_secs(54)
        );
        assert_eq!(
            remote_budget(Duration::from_secs(5)),
            Duration::from_secs(4)
        );
    }
}
