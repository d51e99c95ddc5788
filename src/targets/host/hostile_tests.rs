//! The host target against hostile artifacts and hostile version directories: whatever an
//! artifact holds, nothing outside the version directory changes and nothing becomes live.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::artifacts::{ArtifactMeta, ArtifactStore, LocalStore, hash_file};
use crate::execute::{SystemClock, Target};
use crate::plan::{Action, Phase, Step, StepId};
use crate::targets::host::{HostLayout, HostService, HostTarget};

const SENTINEL: &str = "untouched\n";

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/sentinel"), SENTINEL).unwrap();
        Host { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    fn sentinel(&self) -> PathBuf {
        self.dir.path().join("outside/sentinel")
    }

    fn store(&self) -> LocalStore {
        LocalStore::new(self.dir.path().join("store"))
    }

    /// Publishes a tarball made by `build` as api `version`, with an honest meta.json.
    async fn publish(&self, version: &str, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        let bytes = builder.into_inner().unwrap();
        let tarball = self.dir.path().join(format!("{version}.tar.gz"));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tarball).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        gz.finish().unwrap();
        let (sha256, size) = hash_file(&tarball).unwrap();
        let meta = ArtifactMeta {
            service: "api".into(),
            version: version.into(),
            commit: "c".into(),
            tree: "t".into(),
            key: version.into(),
            author: "a".into(),
            message: "m".into(),
            commit_time: jiff::Timestamp::UNIX_EPOCH,
            build_time: jiff::Timestamp::UNIX_EPOCH,
            build_duration_ms: 0,
            size,
            sha256,
            signature: None,
        };
        self.store().publish(&meta, &tarball, None).await.unwrap();
    }

    fn target(&self) -> HostTarget {
        let service = HostService {
            service: "api".into(),
            artifact: "v1".into(),
            values: serde_json::json!({"greeting": "hello"}),
            ..HostService::default()
        };
        HostTarget {
            layout: HostLayout::new(self.root()),
            environment: "local".into(),
            services: [("v1".to_string(), service)].into(),
            store: Some(Arc::new(self.store()) as Arc<dyn ArtifactStore>),
            clock: Arc::new(SystemClock),
            keep: 3,
            release: None,
            trust: Default::default(),
        }
    }

    fn assert_sentinel_untouched(&self) {
        assert_eq!(std::fs::read_to_string(self.sentinel()).unwrap(), SENTINEL);
    }
}

fn provision(version: &str) -> Step {
    Step {
        id: StepId(0),
        phase: Phase::Provision,
        service: "api".into(),
        action: Action::Provision {
            version: version.into(),
        },
        after: Vec::new(),
        after_all_below: None,
        timeout: crate::config::Dur::secs(60),
        not_before: None,
    }
}

fn symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_mode(0o777);
    builder.append_link(&mut header, path, target).unwrap();
}

/// `../` enough times to reach `/` from anywhere under `from`, then `path` without its `/`.
fn climb_to(from: &Path, path: &Path) -> String {
    let up = "../".repeat(from.components().count() + 16);
    format!("{up}{}", path.strip_prefix("/").unwrap().display())
}

#[tokio::test]
async fn regression_issue_18_the_values_file_is_never_written_through_an_artifact_link() {
    let host = Host::new();
    let version_dir = host.root().join("api/versions/v1");
    let target = format!(
        "./{}{}",
        "a/".repeat(16),
        climb_to(&version_dir, &host.sentinel())
    );
    host.publish("v1", |b| {
        symlink(b, "./a", ".");
        symlink(b, "./convoy-values.json", &target);
    })
    .await;
    let error = host.target().apply(&provision("v1")).await.unwrap_err();
    let text = crate::diagnostic::chain(&error);
    assert!(text.contains("unsafe entry"), "{text}");
    host.assert_sentinel_untouched();
    assert!(!version_dir.exists(), "a refused artifact is not a version");
    assert!(HostLayout::new(host.root()).live("api").is_none());
}

#[tokio::test]
async fn markers_and_values_are_never_written_through_links_in_a_version_directory() {
    let host = Host::new();
    // A version directory someone (an older Convoy, a hook) left with links at Convoy's names.
    let version_dir = host.root().join("api/versions/v1");
    std::fs::create_dir_all(&version_dir).unwrap();
    for name in [".convoy-prepared", ".convoy-last-live"] {
        std::os::unix::fs::symlink(host.sentinel(), version_dir.join(name)).unwrap();
    }
    let target = host.target();
    let error = target.apply(&provision("v1")).await.unwrap_err();
    let text = crate::diagnostic::chain(&error);
    assert!(
        text.contains("a symlink stands at `.convoy-prepared`"),
        "{text}"
    );
    assert!(
        !HostLayout::new(host.root())
            .observe(&["api".to_string()])
            .contains_key("api"),
        "a link to a file is not a prepared marker"
    );
    host.assert_sentinel_untouched();
}

#[tokio::test]
async fn an_ordinary_artifact_is_unpacked_with_its_values_beside_it() {
    let host = Host::new();
    host.publish("v1", |b| {
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o755);
        b.append_data(&mut header, "bin/run", &b"ok"[..]).unwrap();
        symlink(b, "run", "bin/run");
    })
    .await;
    host.target().apply(&provision("v1")).await.unwrap();
    let dir = host.root().join("api/versions/v1");
    assert_eq!(std::fs::read_to_string(dir.join("run")).unwrap(), "ok");
    let values: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("convoy-values.json")).unwrap()).unwrap();
    assert_eq!(values["greeting"], "hello");
    assert!(dir.join(".convoy-prepared").is_file());
}

/// A PEM-like secret with quotes, backslashes and several lines.
const PEM: &str = "-----BEGIN TEST KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\"quoted\"\\back\\slash\nSECOND+LINE/of=the$key'x'\n-----END TEST KEY-----";

#[tokio::test]
async fn a_multi_line_secret_printed_by_a_hook_or_a_health_check_is_masked() {
    let host = Host::new();
    host.publish("v1", |_| {}).await;
    let values = serde_json::json!({ "key": PEM });
    let mut target = host.target();
    let service = target.services.get_mut("v1").unwrap();
    service.env = crate::targets::host::CommandEnv {
        vars: vec![
            ("CONVOY_VALUES".into(), values.to_string()),
            ("PEM".into(), PEM.into()),
        ],
        secrets: vec![PEM.into()],
        pass: Some(Vec::new()),
    };
    // The hook prints the values as JSON (the secret JSON-escaped) and the key line by line.
    service.hooks.prepare =
        Some(r#"printf '%s\n' "$CONVOY_VALUES"; printf '%s\n' "$PEM"; exit 1"#.into());
    let error = target.apply(&provision("v1")).await.unwrap_err();
    assert_hidden(&crate::diagnostic::chain(&error));

    let service = target.services.get_mut("v1").unwrap();
    service.hooks.prepare = None;
    service.health = Some(crate::config::service::Health {
        command: Some(r#"printf '%s' "$PEM" | base64; printf '%q\n' "$PEM"; exit 1"#.into()),
        http: None,
        timeout: crate::config::Dur::secs(10),
        check: None,
    });
    let error = target.apply(&provision("v1")).await.unwrap_err();
    let text = crate::diagnostic::chain(&error);
    assert!(text.contains("********"), "{text}");
    assert_hidden(&text);
}

fn assert_hidden(text: &str) {
    for piece in [
        "MIIEvQIBADANBgkqhkiG9w0B",
        "SECOND+LINE/of=the$key",
        "back\\slash",
        "back\\\\slash",
    ] {
        assert!(!text.contains(piece), "`{piece}` shows in: {text}");
    }
}
