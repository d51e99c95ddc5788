//! A [`Target`] whose errors never carry a secret: every step error, health failure and
//! preflight refusal is masked (in every form, see [`Masker`]) before the executor journals,
//! records or reports it — whatever the target, whatever printed it (a hook, a health check,
//! an API server echoing an object back).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::diagnostic::Diagnose;
use crate::execute::{Target, TargetError};
use crate::plan::{Plan, ServiceState, Step};
use crate::secrets::Masker;

pub struct MaskedTarget {
    inner: Arc<dyn Target>,
    masker: Masker,
}

impl MaskedTarget {
    /// `inner` itself when there is nothing to mask.
    pub fn wrap(inner: Arc<dyn Target>, masker: Masker) -> Arc<dyn Target> {
        if masker.is_empty() {
            return inner;
        }
        Arc::new(MaskedTarget { inner, masker })
    }

    fn mask(&self, error: TargetError) -> TargetError {
        let m = |text: String| self.masker.mask(&text);
        match error {
            TargetError::Unhealthy {
                service,
                version,
                detail,
            } => TargetError::Unhealthy {
                service,
                version,
                detail: m(detail),
            },
            TargetError::Action {
                service,
                action,
                detail,
            } => TargetError::Action {
                service,
                action: m(action),
                detail: m(detail),
            },
            TargetError::Failed {
                service,
                action,
                source,
            } => {
                let cause = MaskedCause {
                    text: m(crate::diagnostic::chain(&source)),
                    help: crate::diagnostic::Diagnose::help(&TargetError::Failed {
                        service: String::new(),
                        action: String::new(),
                        source,
                    })
                    .map(m),
                };
                TargetError::failed(&service, &m(action), cause)
            }
            io @ TargetError::Io { .. } => io,
        }
    }
}

/// A target error's cause, already rendered and masked: its text and its `help:` line.
#[derive(Debug)]
struct MaskedCause {
    text: String,
    help: Option<String>,
}

impl std::fmt::Display for MaskedCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for MaskedCause {}

impl Diagnose for MaskedCause {
    fn help(&self) -> Option<String> {
        self.help.clone()
    }
}

#[async_trait]
impl Target for MaskedTarget {
    fn weighted_traffic(&self) -> bool {
        self.inner.weighted_traffic()
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
        self.inner.observe(services).await.map_err(|e| self.mask(e))
    }

    async fn preflight(&self, plan: &Plan, release: u64) -> Result<(), TargetError> {
        self.inner
            .preflight(plan, release)
            .await
            .map_err(|e| self.mask(e))
    }

    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        self.inner.apply(step).await.map_err(|e| self.mask(e))
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.inner
            .verify(service, version)
            .await
            .map_err(|e| self.mask(e))
    }

    fn calls(&self, step: &Step) -> Vec<String> {
        self.inner.calls(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("hook printed {0}")]
    struct Leaky(String);

    impl Diagnose for Leaky {
        fn help(&self) -> Option<String> {
            Some(format!("see {}", self.0))
        }
    }

    struct Failing;

    #[async_trait]
    impl Target for Failing {
        fn weighted_traffic(&self) -> bool {
            false
        }
        async fn observe(
            &self,
            _: &[String],
        ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
            Ok(BTreeMap::new())
        }
        async fn apply(&self, _: &Step) -> Result<(), TargetError> {
            Err(TargetError::failed(
                "api",
                "prepare",
                Leaky("\"s3cr\\\\et\"".into()),
            ))
        }
        async fn verify(&self, _: &str, _: &str) -> Result<(), TargetError> {
            Err(TargetError::Unhealthy {
                service: "api".into(),
                version: "v1".into(),
                detail: "czNjclxldA==".into(),
            })
        }
    }

    #[tokio::test]
    async fn errors_keep_their_shape_and_help_but_lose_the_secret() {
        let target = MaskedTarget::wrap(Arc::new(Failing), Masker::new([r"s3cr\et"]));
        let step = crate::plan::Step {
            id: crate::plan::StepId(0),
            phase: crate::plan::Phase::Provision,
            service: "api".into(),
            action: crate::plan::Action::Provision {
                version: "v1".into(),
            },
            after: Vec::new(),
            after_all_below: None,
            timeout: crate::config::Dur::secs(1),
            not_before: None,
        };
        let error = target.apply(&step).await.unwrap_err();
        assert_eq!(
            crate::diagnostic::chain(&error),
            "api: prepare failed: hook printed \"********\""
        );
        assert_eq!(error.help().as_deref(), Some("see \"********\""));
        let error = target.verify("api", "v1").await.unwrap_err();
        assert_eq!(error.to_string(), "api v1 is unhealthy: ********");
    }
}
