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
