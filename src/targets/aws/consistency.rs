//! AWS's APIs are eventually consistent: a group or template created a moment ago may still be
//! "not found" by the next call. Such answers are retried, a bounded number of times and only for
//! calls that follow a create, rather than taken as a failure (which would delete a healthy new
//! group as debris).

use std::future::Future;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::targets::aws::aws_target::AwsTarget;

/// How many times a call right after a create is made while it answers "not found" (a poll
/// apart: 30 s on AWS).
pub(super) const SETTLE_ATTEMPTS: u32 = 6;

/// Whether an error says the resource is not there (yet): the EC2 `…NotFound…` codes, and Auto
/// Scaling's `ValidationError`s for a group or launch template it cannot find.
pub fn not_found<E: ProvideErrorMetadata>(error: &E) -> bool {
    let code = error.code().unwrap_or_default();
    let message = error.message().unwrap_or_default().to_ascii_lowercase();
    code.contains("NotFound")
        || (code == "ValidationError"
            && (message.contains("not found") || message.contains("does not exist")))
}

impl AwsTarget {
    /// `call`'s answer once it is not "not found", or the last one after [`SETTLE_ATTEMPTS`].
    pub(super) async fn settled<T, E, F, Fut>(&self, mut call: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: ProvideErrorMetadata,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(error) if not_found(&error) && attempt < SETTLE_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(self.poll).await;
                }
                answer => return answer,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::error::ErrorMetadata;

    fn error(code: &str, message: &str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).message(message).build()
    }

    #[test]
    fn not_found_covers_the_codes_and_messages_of_a_resource_not_visible_yet() {
        assert!(not_found(&error(
            "InvalidLaunchTemplateName.NotFoundException",
            "x"
        )));
        assert!(not_found(&error(
            "ValidationError",
            "You must use a valid fully-formed launch template. The specified launch template, with template name shop-prod-web, does not exist."
        )));
        assert!(not_found(&error(
            "ValidationError",
            "AutoScalingGroup name not found - shop-prod-web-v1"
        )));
        assert!(!not_found(&error(
            "ValidationError",
            "MaxSize must be >= 0"
        )));
        assert!(!not_found(&error("Throttling", "Rate exceeded")));
    }
}
