//! Signed artifacts end to end on the `local` host environment: `convoy build` signs meta.json
//! with `artifacts.signing_key`, and `convoy deploy` with `artifacts.verify_keys` refuses an
//! unsigned artifact, one signed by another key and one whose meta.json changed after signing —
//! before anything goes live (exit 1, as for a corrupted one).

use std::path::{Path, PathBuf};

use convoy::artifacts::ArtifactSigner;
use convoy_test_support::cli::{Test, commit_all, example_repo};

const SEED: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER: &str = "2222222222222222222222222222222222222222222222222222222222222222";

/// The example with `verify_keys` listing SEED's public key, signing with `CONVOY_SIGNING_KEY`.
fn signed_repo(sign: bool) -> tempfile::TempDir {
    let dir = example_repo();
    let public = ArtifactSigner::parse(SEED).unwrap().public_hex();
    let file = dir.path().join("convoy.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let signing = if sign {
        "\n  signing_key: { env: CONVOY_SIGNING_KEY }"
    } else {
        ""
    };
    let artifacts = format!(
        "artifacts:\n  store: file://.convoy/artifacts{signing}\n  verify_keys: [\"{public}\"]"
    );
    let text = text.replace("artifacts: { store: file://.convoy/artifacts }", &artifacts);
    std::fs::write(&file, text).unwrap();
    commit_all(dir.path(), "signed artifacts");
    dir
}

fn live(dir: &Path, service: &str) -> Option<PathBuf> {
    std::fs::read_link(dir.join(".convoy/srv").join(service).join("live")).ok()
}

/// The meta.json of api's only artifact in the store.
fn api_meta(dir: &Path) -> PathBuf {
    let store = dir.join(".convoy/artifacts/api");
    let version = std::fs::read_dir(store).unwrap().next().unwrap().unwrap();
    version.path().join("meta.json")
}

#[test]
fn a_signed_build_deploys_and_the_key_never_shows() {
    let ran = Test::in_dir(signed_repo(true))
        .env("CONVOY_SIGNING_KEY", SEED)
        .args(["deploy", "--env", "local"])
        .stdout_has("release 1 of local succeeded")
        .run();
    assert!(!ran.stdout.contains(SEED) && !ran.stderr.contains(SEED));
    let meta = std::fs::read_to_string(api_meta(ran.dir.path())).unwrap();
    assert!(meta.contains("\"signature\""), "{meta}");
    assert!(live(ran.dir.path(), "api").is_some());
}

#[test]
fn unsigned_foreign_and_tampered_artifacts_are_refused_before_anything_goes_live() {
    // Unsigned: built with no signing key at all.
    let unsigned = Test::in_dir(signed_repo(false))
        .args(["deploy", "--env", "local"])
        .status(1)
        .stderr_has("is not trusted: it is not signed")
        .run();
    assert!(live(unsigned.dir.path(), "api").is_none());

    // Signed by a key `verify_keys` does not list.
    let foreign = Test::in_dir(signed_repo(true))
        .env("CONVOY_SIGNING_KEY", OTHER)
        .args(["deploy", "--env", "local"])
        .status(1)
        .stderr_has("which is not among `artifacts.verify_keys`")
        .run();
    assert!(live(foreign.dir.path(), "api").is_none());

    // Signed by the right key, then meta.json changed in the store.
    let built = Test::in_dir(signed_repo(true))
        .env("CONVOY_SIGNING_KEY", SEED)
        .args(["build"])
        .run();
    let meta = api_meta(built.dir.path());
    let text = std::fs::read_to_string(&meta).unwrap();
    let tampered = text.replacen("\"author\": \"", "\"author\": \"Mallory ", 1);
    assert_ne!(text, tampered, "meta.json names an author");
    std::fs::write(&meta, tampered).unwrap();
    let refused = Test::in_dir(built.dir)
        .env("CONVOY_SIGNING_KEY", SEED)
        .args(["deploy", "--env", "local", "--no-build"])
        .status(1)
        .stderr_has("meta.json was changed after signing")
        .run();
    assert!(live(refused.dir.path(), "api").is_none());
}
