//! The agent's side of Convoy's launch hook on EC2: once the revision is prepared and healthy,
//! the instance is reported `passed` and the hook completed with CONTINUE (only then does Auto
//! Scaling put it in service); otherwise it is reported `failed: <reason>` and the hook completed
//! with ABANDON (AWS terminates it). The `convoy:health` tag is written first, so the deployer
//! can quote the reason even when the instance is gone a moment later.

use crate::targets::aws::connection::Clients;
use crate::targets::aws::names::{HEALTH_PASSED, TAG_HEALTH};

/// AWS keeps at most this many characters of a tag value.
const MAX_TAG_VALUE: usize = 256;

/// What the agent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed(String),
}

impl Verdict {
    /// The `convoy:health` tag's value, within AWS's limit.
    pub fn tag_value(&self) -> String {
        match self {
            Verdict::Passed => HEALTH_PASSED.to_string(),
            Verdict::Failed(reason) => {
                let one_line: String = format!("failed: {reason}")
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                one_line.chars().take(MAX_TAG_VALUE).collect()
            }
        }
    }

    /// CompleteLifecycleAction's result.
    pub fn result(&self) -> &'static str {
        match self {
            Verdict::Passed => "CONTINUE",
            Verdict::Failed(_) => "ABANDON",
        }
    }
}

/// One instance's pending launch hook.
pub struct LaunchGate {
    pub clients: Clients,
    pub group: String,
    pub hook: String,
    pub instance: String,
}

impl LaunchGate {
    /// Tags the instance with `verdict` and completes the hook with its result. A tag that
    /// cannot be written does not stop the completion (the instance must not wait out the
    /// heartbeat); both failures are reported.
    pub async fn report(&self, verdict: &Verdict) -> Result<(), String> {
        let tag = aws_sdk_ec2::types::Tag::builder()
            .key(TAG_HEALTH)
            .value(verdict.tag_value())
            .build();
        let tagged = self
            .clients
            .ec2
            .create_tags()
            .resources(&self.instance)
            .tags(tag)
            .send()
            .await
            .map_err(|e| format!("tag {}: {}", self.instance, describe(&e)));
        let completed = self
            .clients
            .autoscaling
            .complete_lifecycle_action()
            .auto_scaling_group_name(&self.group)
            .lifecycle_hook_name(&self.hook)
            .instance_id(&self.instance)
            .lifecycle_action_result(verdict.result())
            .send()
            .await
            .map_err(|e| {
                format!(
                    "complete {} of {} with {}: {}",
                    self.hook,
                    self.instance,
                    verdict.result(),
                    describe(&e)
                )
            });
        match (tagged, completed) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(a), Err(b)) => Err(format!("{a}; {b}")),
            (Err(e), Ok(_)) | (Ok(_), Err(e)) => Err(e),
        }
    }
}

fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    crate::targets::aws::error::describe(error)
}

/// This instance's id from the instance metadata service (IMDSv2).
pub async fn instance_id_from_imds() -> Result<String, String> {
    let client = aws_config::imds::Client::builder().build();
    let id = client
        .get("/latest/meta-data/instance-id")
        .await
        .map_err(|e| format!("the instance metadata service: {}", describe(&e)))?;
    Ok(id.as_ref().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_one_line_within_the_tag_limit() {
        let verdict = Verdict::Failed(format!("prepare failed:\n{}", "x".repeat(400)));
        let value = verdict.tag_value();
        assert!(value.starts_with("failed: prepare failed: x"), "{value}");
        assert_eq!(value.chars().count(), MAX_TAG_VALUE);
        assert_eq!(verdict.result(), "ABANDON");
        assert_eq!(Verdict::Passed.tag_value(), "passed");
        assert_eq!(Verdict::Passed.result(), "CONTINUE");
    }
}
