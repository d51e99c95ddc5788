//! In-memory fakes of the executor's traits — a target with injectable faults and delays, a
//! release store and a lock — for tests and benchmarks. Time is tokio's, so tests can pause it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use convoy::execute::{Lease, LeaseStore, LockError, Slot};
use convoy::execute::{Newest, ReleaseError, ReleaseRecord, ReleaseStore, Target, TargetError};
use convoy::plan::{Action, ServiceState, Step};

/// One service as the fake sees it: the versions running, and the traffic share of each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeService {
    pub running: BTreeSet<String>,
    pub traffic: BTreeMap<String, u8>,
}

impl FakeService {
    /// The version with all the traffic, if exactly one has it.
    pub fn serving(&self) -> Option<&str> {
        let mut full = self.traffic.iter().filter(|(_, p)| **p == 100);
        match (full.next(), full.next()) {
            (Some((v, _)), None) if self.traffic.values().filter(|p| **p > 0).count() == 1 => {
                Some(v)
            }
            _ => None,
        }
    }
}

/// When a fault fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultOn {
    Provision,
    /// A switch step reaching this share (or any share when `None`).
    Switch(Option<u8>),
    Verify,
    Remove,
    /// A release task (the fault's `version` is the revision the task runs on).
    Task,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub service: String,
    pub version: String,
    pub on: FaultOn,
    /// `true`: never answers (tests timeouts); `false`: fails at once.
    pub hang: bool,
    /// Fail like a target kind's own error that says what to do (its `help:` line).
    pub help: Option<String>,
}

/// An injected failure with a diagnosis, as a target kind's own error would carry.
#[derive(Debug, thiserror::Error)]
#[error("injected fault on {on}")]
pub struct InjectedFault {
    pub on: String,
    pub help: String,
}

impl convoy::diagnostic::Diagnose for InjectedFault {
    fn help(&self) -> Option<String> {
        Some(self.help.clone())
    }
}

#[derive(Default)]
pub struct MemoryTarget {
    pub services: Mutex<BTreeMap<String, FakeService>>,
    faults: Mutex<Vec<Fault>>,
    /// Time a provision takes (pods becoming ready).
    pub provision_delay: Duration,
    /// Every action in order, e.g. `provision api a2`.
    pub log: Mutex<Vec<String>>,
    /// The steps of each plan checked before it changed anything, e.g. `switch api a1 → a2 (100%)`.
    pub preflights: Mutex<Vec<Vec<String>>>,
}

impl MemoryTarget {
    /// A target where each service already serves `version`.
    pub fn serving(pairs: &[(&str, &str)], provision_delay: Duration) -> Self {
        let services = pairs
            .iter()
            .map(|(s, v)| {
                let service = FakeService {
                    running: [v.to_string()].into(),
                    traffic: [(v.to_string(), 100)].into(),
                };
                (s.to_string(), service)
            })
            .collect();
        MemoryTarget {
            services: Mutex::new(services),
            provision_delay,
            ..MemoryTarget::default()
        }
    }

    pub fn fault(&self, fault: Fault) {
        self.faults.lock().unwrap().push(fault);
    }

    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    pub fn snapshot(&self) -> BTreeMap<String, FakeService> {
        self.services.lock().unwrap().clone()
    }

    pub fn actions(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn maybe_fault(
        &self,
        service: &str,
        version: &str,
        on: FaultOn,
    ) -> Result<(), TargetError> {
        let fault = self
            .faults
            .lock()
            .unwrap()
            .iter()
            .find(|f| {
                f.service == service
                    && f.version == version
                    && match (&f.on, &on) {
                        (FaultOn::Switch(None), FaultOn::Switch(_)) => true,
                        (a, b) => a == b,
                    }
            })
            .cloned();
        match fault {
            None => Ok(()),
            Some(Fault { hang: true, .. }) => std::future::pending().await,
            Some(Fault {
                help: Some(help), ..
            }) => {
                let on = format!("{on:?}");
                Err(TargetError::failed(
                    service,
                    "injected",
                    InjectedFault { on, help },
                ))
            }
            Some(_) => Err(TargetError::Unhealthy {
                service: service.to_string(),
                version: version.to_string(),
                detail: format!("injected fault on {on:?}"),
            }),
        }
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn weighted_traffic(&self) -> bool {
        true
    }

    async fn observe(
        &self,
        services: &[String],
    ) -> Result<BTreeMap<String, ServiceState>, TargetError> {
        let state = self.services.lock().unwrap();
        Ok(services
            .iter()
            .filter_map(|name| {
                let service = state.get(name)?;
                let live = service
                    .traffic
                    .iter()
                    .max_by_key(|(_, p)| **p)
                    .map(|(v, _)| v.clone());
                Some((
                    name.clone(),
                    ServiceState {
                        live,
                        warm: service.running.iter().cloned().collect(),
                    },
                ))
            })
            .collect())
    }

    async fn preflight(&self, plan: &convoy::plan::Plan, _release: u64) -> Result<(), TargetError> {
        let steps = plan.steps.iter();
        let checked = steps
            .map(|s| format!("{} {}", s.service, s.action))
            .collect();
        self.preflights.lock().unwrap().push(checked);
        Ok(())
    }

    async fn apply(&self, step: &Step) -> Result<(), TargetError> {
        let service = step.service.as_str();
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {}", service, step.action));
        match &step.action {
            Action::Provision { version } => {
                tokio::time::sleep(self.provision_delay).await;
                self.maybe_fault(service, version, FaultOn::Provision)
                    .await?;
                let mut state = self.services.lock().unwrap();
                state
                    .entry(service.to_string())
                    .or_default()
                    .running
                    .insert(version.clone());
            }
            Action::Switch {
                from, to, percent, ..
            } => {
                self.maybe_fault(service, to, FaultOn::Switch(Some(*percent)))
                    .await?;
                let mut state = self.services.lock().unwrap();
                let entry = state.entry(service.to_string()).or_default();
                entry.running.insert(to.clone());
                entry.traffic.insert(to.clone(), *percent);
                match from {
                    Some(from) if *percent == 100 => {
                        entry.traffic.remove(from);
                    }
                    Some(from) => {
                        entry.traffic.insert(from.clone(), 100 - percent);
                    }
                    None => {}
                }
            }
            Action::Task { version, .. } => {
                self.maybe_fault(service, version, FaultOn::Task).await?;
            }
            Action::Retire { version } | Action::Remove { version } => {
                self.maybe_fault(service, version, FaultOn::Remove).await?;
                let mut state = self.services.lock().unwrap();
                if let Some(entry) = state.get_mut(service) {
                    entry.running.remove(version);
                    entry.traffic.remove(version);
                }
            }
        }
        Ok(())
    }

    async fn verify(&self, service: &str, version: &str) -> Result<(), TargetError> {
        self.maybe_fault(service, version, FaultOn::Verify).await
    }
}

/// Release records in memory; `kill_after(n)` makes the n-th next save hang forever, which is
/// what a SIGKILL looks like from the journal's point of view.
#[derive(Default)]
pub struct MemoryReleases {
    records: Mutex<BTreeMap<u64, ReleaseRecord>>,
    kill_after: Mutex<Option<usize>>,
    pub saves: Mutex<usize>,
    /// The length of the journal each save made durable, in order.
    pub journal_lengths: Mutex<Vec<usize>>,
    /// How many times records were read (`latest`, `load`, `list` or `unfinished_or_list`).
    pub reads: Mutex<usize>,
}

impl MemoryReleases {
    pub fn kill_after(&self, saves: usize) {
        *self.kill_after.lock().unwrap() = Some(saves);
    }

    pub fn revive(&self) {
        *self.kill_after.lock().unwrap() = None;
    }
}

#[async_trait]
impl ReleaseStore for MemoryReleases {
    async fn latest(&self) -> Result<Option<ReleaseRecord>, ReleaseError> {
        *self.reads.lock().unwrap() += 1;
        Ok(self.records.lock().unwrap().values().next_back().cloned())
    }

    async fn load(&self, number: u64) -> Result<Option<ReleaseRecord>, ReleaseError> {
        *self.reads.lock().unwrap() += 1;
        Ok(self.records.lock().unwrap().get(&number).cloned())
    }

    async fn list(&self, limit: usize) -> Result<Vec<ReleaseRecord>, ReleaseError> {
        *self.reads.lock().unwrap() += 1;
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    /// One read, as the Kubernetes store makes it.
    async fn unfinished_or_list(&self, limit: usize) -> Result<Newest, ReleaseError> {
        *self.reads.lock().unwrap() += 1;
        let records = self.records.lock().unwrap();
        Ok(match records.values().next_back() {
            Some(latest) if latest.is_unfinished() => Newest::Unfinished(Box::new(latest.clone())),
            _ => Newest::Finished(records.values().rev().take(limit).cloned().collect()),
        })
    }

    async fn save(&self, record: &ReleaseRecord) -> Result<(), ReleaseError> {
        let killed = {
            let mut kill = self.kill_after.lock().unwrap();
            match kill.as_mut() {
                Some(0) => true,
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        };
        if killed {
            std::future::pending::<()>().await;
        }
        *self.saves.lock().unwrap() += 1;
        self.journal_lengths
            .lock()
            .unwrap()
            .push(record.journal.len());
        self.records
            .lock()
            .unwrap()
            .insert(record.number, record.clone());
        Ok(())
    }
}

/// An environment lock in memory: a lease and a version counter, the same algorithm as every
/// real lock (`convoy::execute::lease_store`).
#[derive(Default)]
pub struct MemoryLock {
    stored: Mutex<(Option<Lease>, u64)>,
}

#[async_trait]
impl LeaseStore for MemoryLock {
    fn environment(&self) -> &str {
        "memory"
    }

    async fn read(&self) -> Result<Slot, LockError> {
        let (lease, version) = self.stored.lock().unwrap().clone();
        Ok(Slot {
            version: lease.is_some().then(|| version.to_string()),
            lease,
        })
    }

    async fn write(&self, lease: &Lease, expected: Option<&str>) -> Result<bool, LockError> {
        let mut stored = self.stored.lock().unwrap();
        let current = stored.0.is_some().then(|| stored.1.to_string());
        if current.as_deref() != expected {
            return Ok(false);
        }
        *stored = (Some(lease.clone()), stored.1 + 1);
        Ok(true)
    }

    async fn delete(&self, version: &str) -> Result<bool, LockError> {
        let mut stored = self.stored.lock().unwrap();
        if stored.0.is_none() || stored.1.to_string() != version {
            return Ok(false);
        }
        stored.0 = None;
        Ok(true)
    }
}
