//! One behaviour suite for every [`ArtifactStore`]: the local store and S3 (against moto's
//! server on 127.0.0.1) must pass the same tests.

use std::collections::HashSet;
use std::path::Path;

use super::*;

pub(crate) fn meta(
    service: &str,
    version: &str,
    key: &str,
    tarball: &Path,
    day: i64,
) -> ArtifactMeta {
    let (sha256, size) = hash_file(tarball).unwrap();
    let time = jiff::Timestamp::from_second(1_700_000_000 + day * 86_400).unwrap();
    ArtifactMeta {
        service: service.into(),
        version: version.into(),
        commit: format!("{version}00"),
        tree: "t".into(),
        key: key.into(),
        author: "A <a@example.com>".into(),
        message: "m".into(),
        commit_time: time,
        build_time: time,
        build_duration_ms: 1,
        size,
        sha256,
        signature: None,
    }
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Publishes, reads, lists, races, conflicts, deletes and collects garbage.
pub(crate) async fn store_suite(store: &dyn ArtifactStore) {
    let dir = tempfile::tempdir().unwrap();
    let one = file(dir.path(), "one.tgz", b"one");
    let two = file(dir.path(), "two.tgz", b"two");
    let log = file(dir.path(), "build.log", b"log");

    assert_eq!(store.meta("api", "v1").await.unwrap(), None);
    let v1 = meta("api", "v1", "k1", &one, 1);
    assert_eq!(
        store.publish(&v1, &one, Some(&log)).await.unwrap(),
        Published::Stored(v1.clone())
    );
    assert_eq!(store.meta("api", "v1").await.unwrap(), Some(v1.clone()));
    let fetched = dir.path().join("fetched.tgz");
    assert_eq!(store.fetch("api", "v1", &fetched).await.unwrap(), v1);
    assert_eq!(std::fs::read(&fetched).unwrap(), b"one");

    // Same key again, even with other bytes: the first stays, nothing is mixed up.
    let v1_again = meta("api", "v1", "k1", &two, 1);
    let again = store.publish(&v1_again, &two, None).await.unwrap();
    assert_eq!(again, Published::AlreadyPresent(v1.clone()));
    store.fetch("api", "v1", &fetched).await.unwrap();
    assert_eq!(std::fs::read(&fetched).unwrap(), b"one");

    // Same version, another key: refused.
    let conflict = meta("api", "v1", "other", &two, 1);
    let error = store.publish(&conflict, &two, None).await.unwrap_err();
    assert!(
        matches!(error, ArtifactError::KeyConflict { .. }),
        "{error}"
    );

    // Concurrent publishers of one new version: exactly one wins, and the winner's bytes stay.
    let a = meta("api", "v2", "k2", &one, 2);
    let b = meta("api", "v2", "k2", &two, 2);
    let (ra, rb) = futures::join!(store.publish(&a, &one, None), store.publish(&b, &two, None));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let stored: Vec<&Published> = [&ra, &rb]
        .into_iter()
        .filter(|p| matches!(p, Published::Stored(_)))
        .collect();
    assert_eq!(stored.len(), 1, "{ra:?} {rb:?}");
    let winner = stored[0].meta().clone();
    assert_eq!(store.fetch("api", "v2", &fetched).await.unwrap(), winner);

    let web = meta("web", "w1", "kw", &one, 3);
    store.publish(&web, &one, None).await.unwrap();
    let v3 = meta("api", "v3", "k3", &two, 4);
    store.publish(&v3, &two, None).await.unwrap();

    let versions = |list: Vec<ArtifactMeta>| {
        list.into_iter()
            .map(|m| format!("{} {}", m.service, m.version))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(store.list(None).await.unwrap()),
        ["api v1", "api v2", "api v3", "web w1"]
    );
    assert_eq!(versions(store.list(Some("web")).await.unwrap()), ["web w1"]);
    assert_eq!(
        versions(store.list(Some("nope")).await.unwrap()),
        Vec::<String>::new()
    );

    // gc keeps the newest one per service plus the protected v1.
    let protected: HashSet<(String, String)> = [("api".to_string(), "v1".to_string())].into();
    let report = gc(store, 1, &protected).await.unwrap();
    assert_eq!(versions(report.deleted), ["api v2"]);
    assert_eq!(
        versions(store.list(None).await.unwrap()),
        ["api v1", "api v3", "web w1"]
    );

    store.delete("web", "w1").await.unwrap();
    assert_eq!(store.meta("web", "w1").await.unwrap(), None);
    let error = store.fetch("web", "w1", &fetched).await.unwrap_err();
    assert!(matches!(error, ArtifactError::NotFound { .. }), "{error}");
}

/// Publishes one artifact and returns its meta, for corruption tests.
pub(crate) async fn publish_one(store: &dyn ArtifactStore, dir: &Path) -> ArtifactMeta {
    let tarball = file(dir, "c.tgz", b"good bytes");
    let meta = meta("api", "c1", "kc", &tarball, 1);
    store.publish(&meta, &tarball, None).await.unwrap();
    meta
}

pub(crate) fn assert_corrupted(error: ArtifactError, meta: &ArtifactMeta, file: &str) {
    let text = error.to_string();
    assert!(matches!(error, ArtifactError::Corrupted { .. }), "{text}");
    assert!(text.contains(&meta.sha256) && text.contains(file), "{text}");
}

mod local {
    use super::*;

    #[tokio::test]
    async fn local_store_passes_the_suite() {
        let dir = tempfile::tempdir().unwrap();
        store_suite(&LocalStore::new(dir.path().join("store"))).await;
    }

    #[tokio::test]
    async fn local_store_detects_a_corrupted_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        let meta = publish_one(&store, dir.path()).await;
        let path = dir.path().join("store/api/c1").join(meta.tarball_name());
        std::fs::write(&path, b"evil bytes").unwrap();
        let error = store
            .fetch("api", "c1", &dir.path().join("out.tgz"))
            .await
            .unwrap_err();
        assert_corrupted(error, &meta, &path.display().to_string());
        assert!(!dir.path().join("out.tgz").exists());
    }
    /// Regression: publishing read back the `meta.json` that refused its rename with
    /// `expect("meta.json exists")`, which panicked when a concurrent gc had deleted it.
    #[tokio::test]
    async fn a_meta_json_gone_between_the_refused_rename_and_the_read_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        let version_dir = dir.path().join("store/api/v9");
        std::fs::create_dir_all(&version_dir).unwrap();
        // A dangling link refuses the no-clobber rename, yet reads as absent: exactly what a
        // gc deleting meta.json between the two does.
        std::os::unix::fs::symlink(dir.path().join("gone"), version_dir.join("meta.json")).unwrap();
        let tarball = file(dir.path(), "one.tgz", b"one");
        let error = store
            .publish(&meta("api", "v9", "k9", &tarball, 1), &tarball, None)
            .await
            .unwrap_err();
        assert!(matches!(error, ArtifactError::Vanished { .. }), "{error}");
    }
}

mod s3 {
    use super::*;
    use crate::artifacts::s3::tests::{Moto, MotoStores};

    #[tokio::test]
    async fn s3_store_passes_the_suite() {
        let moto = Moto::start().await;
        store_suite(&moto.store("suite", "some/prefix").await).await;
        store_suite(&moto.store("bare", "").await).await;
    }

    #[tokio::test]
    async fn s3_store_detects_a_corrupted_tarball() {
        let moto = Moto::start().await;
        let store = moto.store("corrupt", "p").await;
        let dir = tempfile::tempdir().unwrap();
        let meta = publish_one(&store, dir.path()).await;
        let key = format!("p/api/c1/{}", meta.tarball_name());
        moto.put("corrupt", &key, b"evil bytes").await;
        let error = store
            .fetch("api", "c1", &dir.path().join("out.tgz"))
            .await
            .unwrap_err();
        assert_corrupted(error, &meta, &format!("s3://corrupt/{key}"));
    }
}
