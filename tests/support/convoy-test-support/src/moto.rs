//! moto's server on a free 127.0.0.1 port, stopped on drop (also when a test panics).
//!
//! Shared by convoy's unit tests and the CLI tests, so it uses nothing of convoy's: its types
//! would not be convoy's own `crate::` types in the unit tests. moto is started through
//! `tests/support/moto_server.py`, which patches two of moto's gaps (user data in launch templates, DeleteLaunchTemplateVersions);
//! its log goes to a file whose tail is shown when the server fails to start.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Moto {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("a directory for moto's log");
        let log = dir.path().join("moto.log");
        let out = std::fs::File::create(&log).expect("moto's log file");
        let err = out.try_clone().expect("moto's log file");
        let script = crate::repository_root().join("tests/support/moto_server.py");
        let child = Command::new("python3")
            .arg(&script)
            .args(["127.0.0.1", &port.to_string()])
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start moto ({error}); install it with `pip install 'moto[server]'`")
            });
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            let exited = moto.child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() >= deadline {
                panic!(
                    "moto did not answer on port {port}; its log:\n{}",
                    moto.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// What moto printed so far (its tracebacks explain the SDK's "no root element" errors).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An SDK configuration for this server: dummy credentials, the given region.
    pub fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "test"),
            ))
            .endpoint_url(&self.endpoint)
            .build()
    }

    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk_config("us-east-1"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

/// What the stand-in agent does with an instance of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Prepared and healthy: CONTINUE.
    Pass,
    /// Failed with this reason: ABANDON.
    Abandon(String),
    /// Not yet (still preparing): asked again at the next look.
    Wait,
}

/// A stand-in for the agent that user data starts on each instance, since moto runs no user
/// data: every instance of a group created with Convoy's launch hook is reported once, through
/// convoy's own [`LaunchGate`](convoy::targets::host::lifecycle::LaunchGate) (its `convoy:health`
/// tag and CompleteLifecycleAction, against moto) — as `verdict` says for its group. Like the
/// stand-in kubelet, it polls; stopped on drop.
#[must_use = "the stand-in agent stops when dropped, and no instance passes the gate after"]
pub struct StandInAgent {
    task: tokio::task::JoinHandle<()>,
    /// `(group, instance, reason)` of every report made, in order; `None` for passed.
    pub reported: Reports,
    /// The calls its reports made (what the instance role must allow).
    pub calls: convoy::targets::aws::calls::CallCounter,
}

type Verdicts = dyn Fn(&str) -> Report + Send + Sync;

/// `(group, instance, reason)` of every report made, in order; `None` for passed.
pub type Reports = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Option<String>)>>>;

impl StandInAgent {
    pub fn start(
        moto: &Moto,
        region: &str,
        verdict: impl Fn(&str) -> Report + Send + Sync + 'static,
    ) -> StandInAgent {
        use convoy::targets::aws::calls::CallCounter;
        use convoy::targets::aws::connection::Clients;
        let calls = CallCounter::default();
        let counting = aws_sdk_s3::config::SharedInterceptor::new(calls.clone());
        // Finding the instances is the stand-in's own business; only the reports are the agent's.
        let finding = Clients::new(&moto.sdk_config(region), &[]);
        let reporting = Clients::new(&moto.sdk_config(region), &[counting]);
        let reported = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let verdict: std::sync::Arc<Verdicts> = std::sync::Arc::new(verdict);
        let task = tokio::spawn(Self::run((finding, reporting), verdict, reported.clone()));
        StandInAgent {
            task,
            reported,
            calls,
        }
    }

    async fn run(
        (clients, reporting): (
            convoy::targets::aws::connection::Clients,
            convoy::targets::aws::connection::Clients,
        ),
        verdict: std::sync::Arc<Verdicts>,
        reported: Reports,
    ) {
        use convoy::targets::aws::names::{LAUNCH_HOOK, TAG_GATE};
        use convoy::targets::host::lifecycle::{LaunchGate, Verdict};
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let groups = clients
                .autoscaling
                .describe_auto_scaling_groups()
                .send()
                .await;
            for group in groups
                .map(|g| g.auto_scaling_groups.unwrap_or_default())
                .unwrap_or_default()
            {
                let gated = group.tags().iter().any(|t| t.key() == Some(TAG_GATE));
                let name = group
                    .auto_scaling_group_name()
                    .unwrap_or_default()
                    .to_string();
                for instance in group.instances() {
                    let id = instance.instance_id().unwrap_or_default().to_string();
                    if !gated || seen.contains(&id) {
                        continue;
                    }
                    let reason = match verdict(&name) {
                        Report::Wait => continue,
                        Report::Pass => None,
                        Report::Abandon(reason) => Some(reason),
                    };
                    seen.insert(id.clone());
                    let gate = LaunchGate {
                        clients: reporting.clone(),
                        group: name.clone(),
                        hook: LAUNCH_HOOK.to_string(),
                        instance: id.clone(),
                    };
                    let found = match &reason {
                        None => Verdict::Passed,
                        Some(reason) => Verdict::Failed(reason.clone()),
                    };
                    // A group deleted meanwhile refuses the completion: nothing to report to.
                    let _ = gate.report(&found).await;
                    reported.lock().unwrap().push((name.clone(), id, reason));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for StandInAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}
