//! The environment lock is a lease: it names its holder and expires unless renewed, so a killed
//! deploy never leaves a lock that someone must find and delete by hand.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Who is deploying: shown in lock contention messages and in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub user: String,
    pub host: String,
    /// CI job, when known (e.g. `github run 123`).
    pub ci: Option<String>,
    pub pid: u32,
    /// The pid namespace (`/proc/self/ns/pid`), so a pid is only compared within its own:
    /// two containers on one host can share a hostname but not a pid space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
}

impl Holder {
    /// This process: user, host and CI job as the environment tells them.
    pub fn this_process() -> Holder {
        let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let ci = env("GITHUB_RUN_ID")
            .map(|id| format!("github run {id}"))
            .or_else(|| env("CI_JOB_ID").map(|id| format!("gitlab job {id}")))
            .or_else(|| env("BUILD_ID").map(|id| format!("build {id}")));
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| env("HOSTNAME"))
            .unwrap_or_else(|| "unknown-host".to_string());
        Holder {
            user: env("USER")
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| "unknown".to_string()),
            host,
            ci,
            pid: std::process::id(),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.display().to_string()),
        }
    }

    /// A lease token of this holder taken at `now`: two runs of one process never share one.
    pub fn token(&self, now: Timestamp) -> String {
        format!("{}-{}", self.pid, now.as_nanosecond())
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{} (pid {})", self.user, self.host, self.pid)?;
        if let Some(ci) = &self.ci {
            write!(f, " [{ci}]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: Holder,
    /// Distinguishes two leases of the same holder (a restarted process).
    pub token: String,
    pub acquired: Timestamp,
    pub renewed: Timestamp,
    pub expires: Timestamp,
}

impl Lease {
    /// A fresh lease for `holder`, valid for `ttl` from `now`.
    pub fn new(holder: &Holder, token: &str, ttl: std::time::Duration, now: Timestamp) -> Self {
        Lease {
            holder: holder.clone(),
            token: token.to_string(),
            acquired: now,
            renewed: now,
            expires: now.checked_add(ttl).unwrap_or(now),
        }
    }

    /// The same lease, renewed at `now` for another `ttl`.
    pub fn renewed(self, ttl: std::time::Duration, now: Timestamp) -> Self {
        Lease {
            renewed: now,
            expires: now.checked_add(ttl).unwrap_or(now),
            ..self
        }
    }

    /// Whether this lease keeps the run of `us` with `token` out at `now`: it is someone else's,
    /// unexpired, and its holder is not a process of this host that has died.
    pub fn excludes(&self, us: &Holder, token: &str, now: Timestamp) -> bool {
        !self.is_expired(now) && self.token != token && !self.died_here(us)
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires <= now
    }

    /// Whether the holder was a process of this host (seen from `us`) that no longer exists —
    /// killed with SIGKILL, say. Such a lease is stale at once: nobody will renew it, and waiting
    /// out its expiry helps no one. Only where `/proc` tells the truth, and only within one pid
    /// namespace.
    fn died_here(&self, us: &Holder) -> bool {
        let proc = std::path::Path::new("/proc");
        self.holder.host == us.host
            && self.holder.pid_namespace.is_some()
            && self.holder.pid_namespace == us.pid_namespace
            && self.holder.pid != us.pid
            && proc.join("self").exists()
            && !proc.join(self.holder.pid.to_string()).exists()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("environment `{environment}` is locked by {} since {}", lease.holder, lease.acquired)]
    Held {
        environment: String,
        lease: Box<Lease>,
    },
    #[error("the lock of `{environment}` was taken over by {}", lease.holder)]
    Lost {
        environment: String,
        lease: Box<Lease>,
    },
    #[error("cannot {action} the lock {location}")]
    Io {
        action: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of a successful acquire.
#[derive(Debug, Clone)]
pub struct Acquired {
    pub lease: Lease,
    /// An expired lease that was taken over (warn about it).
    pub took_over: Option<Lease>,
}

#[async_trait]
pub trait EnvLock: Send + Sync {
    async fn acquire(
        &self,
        holder: &Holder,
        token: &str,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Acquired, LockError>;
    async fn renew(
        &self,
        lease: &Lease,
        ttl: std::time::Duration,
        now: Timestamp,
    ) -> Result<Lease, LockError>;
    async fn release(&self, lease: &Lease) -> Result<(), LockError>;
    async fn status(&self) -> Result<Option<Lease>, LockError>;
    /// Removes whatever lease there is (`convoy lock release`); returns it.
    async fn break_lock(&self) -> Result<Option<Lease>, LockError>;
}

impl crate::diagnostic::Diagnose for LockError {
    fn help(&self) -> Option<String> {
        Some(match self {
            LockError::Held { environment, lease } => format!(
                "wait for that run to finish; if it is dead, the lease expires at {} or `convoy lock release --env {environment}` breaks it now",
                lease.expires
            ),
            LockError::Lost { .. } => {
                "another run took the lock over; check `convoy status` before deploying again"
                    .to_string()
            }
            LockError::Io { .. } => {
                "check that the target's state location is writable".to_string()
            }
        })
    }
}
