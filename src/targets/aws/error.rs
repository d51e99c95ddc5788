//! What can go wrong opening or validating an AWS environment, each with what to do about it.

/// Found while opening an AWS environment, before anything is changed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{operation} failed: {message}")]
    Call {
        operation: &'static str,
        message: String,
    },
    #[error("environment `{environment}` has no `target.aws.ami`")]
    NoAmi { environment: String },
    #[error("no AMI matches `{ami}` (owners: {})", owners.join(", "))]
    AmiNotFound { ami: String, owners: Vec<String> },
    #[error("subnet `{subnet}` of `target.aws.subnets` does not exist in {region}")]
    SubnetNotFound { subnet: String, region: String },
    #[error("`target.aws.subnets` is empty and {region} has no default VPC with subnets")]
    NoDefaultSubnets { region: String },
    #[error("security group `{group}` of `target.aws.security_groups` does not exist in {vpc}")]
    SecurityGroupNotFound { group: String, vpc: String },
    #[error(
        "target group `{group}` of service `{service}` (`target.aws.target_groups`) does not exist in {region}"
    )]
    TargetGroupNotFound {
        service: String,
        group: String,
        region: String,
    },
    #[error(
        "another run changed the prewarm schedule {location} meanwhile; nothing of this run's change was stored"
    )]
    ScheduleChanged { location: String },
    #[error(
        "the aws target keeps its lock and releases in the artifact store's S3 bucket, but the store is `{store}`"
    )]
    StoreNotS3 { store: String },
    #[error(
        "{kind} `{name}` was not created by project `{project}`, environment `{environment}` (its tags: {owner}); nothing was changed"
    )]
    NotOurs {
        kind: &'static str,
        name: String,
        owner: String,
        project: String,
        environment: String,
    },
    #[error(
        "{policy_type} policy `{policy}` of group `{group}` cannot be copied to the new group: it acts only through CloudWatch alarms, which Convoy does not copy"
    )]
    UncopyablePolicy {
        group: String,
        policy: String,
        policy_type: String,
    },
    #[error("secret `{variable}` of service `{service}` cannot be kept in SSM: {reason}")]
    BadSecret {
        service: String,
        variable: String,
        reason: String,
    },
    /// A release task run through SSM Run Command did not succeed (`detail`: its status, exit
    /// code and output tail, masked), or could not be run at all (`command` empty).
    #[error("task `{task}` on {instance}: {detail}")]
    Task {
        task: String,
        instance: String,
        command: String,
        detail: String,
    },
}

impl AwsError {
    /// An SDK error as one line: its code and message (the debug form would print request ids
    /// and, for some errors, request parameters).
    pub fn call<E>(operation: &'static str, error: E) -> AwsError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        AwsError::Call {
            operation,
            message: describe(&error),
        }
    }
}

/// An SDK error's code and message, or its chain of causes when it has none (a connection error).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

impl crate::diagnostic::Diagnose for AwsError {
    fn help(&self) -> Option<String> {
        Some(match self {
            AwsError::Call { .. } => "check the credentials, `target.aws.region` and `profile`, and that AWS_ENDPOINT_URL (if set) points at a running endpoint".to_string(),
            AwsError::NoAmi { .. } => "set `ami:` to an AMI id (`ami-…`) or a name pattern such as `shop-base-*` with `ami_owners`".to_string(),
            AwsError::AmiNotFound { .. } => "check the pattern and `ami_owners` (`self`, an account id or `amazon`); `aws ec2 describe-images --owners self` lists yours".to_string(),
            AwsError::SubnetNotFound { .. } => "give subnet ids (`subnet-…`), `Name` tags, or `key=value` tags of existing subnets, or leave `subnets` empty for the default VPC's".to_string(),
            AwsError::NoDefaultSubnets { .. } => "list the subnets to use in `target.aws.subnets`".to_string(),
            AwsError::SecurityGroupNotFound { .. } => "give security group ids (`sg-…`) or names of groups in the subnets' VPC".to_string(),
            AwsError::TargetGroupNotFound { .. } => "create the target group first, or fix its name or ARN in `target.aws.target_groups`".to_string(),
            AwsError::ScheduleChanged { .. } => "run the command again: it starts from the schedule as it is now".to_string(),
            AwsError::StoreNotS3 { .. } => "set `artifacts.store` to `s3://bucket/prefix` (instances fetch artifacts from it too), or point this run at a bucket with `--artifacts s3://bucket/prefix` (CONVOY_ARTIFACT_STORE)".to_string(),
            AwsError::NotOurs { kind, name, .. } => format!(
                "Convoy changes and deletes only what this environment's tags (`convoy:project`, `convoy:env`) claim; two environments or projects whose names join alike meet here: rename one, or, if {kind} `{name}` is debris, delete it yourself"
            ),
            AwsError::UncopyablePolicy { group, policy, .. } => format!(
                "replace it with a target-tracking policy (which Convoy copies as it is), or delete it: `aws autoscaling delete-policy --auto-scaling-group-name {group} --policy-name {policy}`"
            ),
            AwsError::Task { task, instance, command, .. } if command.is_empty() => format!(
                "task `{task}` needs an instance of the new group that passed its health gate, and the SSM agent on it (the instance role needs `AmazonSSMManagedInstanceCore`); instance: {instance}"
            ),
            AwsError::Task { instance, command, .. } => format!(
                "the whole output: `aws ssm get-command-invocation --command-id {command} --instance-id {instance}`; the release was rolled back, but what the task changed (a migration) stays: make tasks safe to run again"
            ),
            AwsError::BadSecret { .. } => "secrets become one SecureString each, named by their environment variable: keep names to letters, digits and `_`, and values under 4096 bytes".to_string(),
        })
    }
}
