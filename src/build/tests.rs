//! Builds on temporary git repositories made here with git2 (never this repository's history).

use std::path::PathBuf;

use git2::{IndexAddOption, Repository, Signature, Time};

use super::*;
use crate::artifacts::{ArtifactStore, LocalStore};

const PROJECT: &str = "\
project: shop
services:
  api: { path: services/api, build: ['mkdir -p dist && cp -r src/. dist/ && echo $CONVOY_SERVICE > dist/name'], output: dist }
  web: { path: services/web, build: ['mkdir -p dist && cp -r src/. dist/'], output: dist }
";

struct Repo {
    dir: tempfile::TempDir,
    repo: Repository,
    time: i64,
}

impl Repo {
    /// A repository whose project lives in `sub/` (as examples/ticketshop does in Convoy's).
    fn new(project: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let mut repo = Repo {
            dir,
            repo,
            time: 1_700_000_000,
        };
        repo.write(".gitignore", ".convoy/\n");
        repo.write("sub/convoy.yaml", project);
        repo.write("sub/services/api/src/main", "api 1\n");
        repo.write("sub/services/web/src/index", "web 1\n");
        repo.commit("first");
        repo
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("sub")
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn commit(&mut self, message: &str) -> String {
        self.time += 60;
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = Signature::new("Dev", "dev@example.com", &Time::new(self.time, 0)).unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap();
        id.to_string()
    }

    fn project(&self) -> Project {
        Project::load(&self.root().join("convoy.yaml")).unwrap()
    }
}

fn request(services: &[&str]) -> BuildRequest {
    BuildRequest {
        rev: "HEAD".into(),
        services: services.iter().map(|s| s.to_string()).collect(),
    }
}

fn statuses(outcomes: &[BuildOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| format!("{} {}", o.service(), o.status()))
        .collect()
}

async fn build_all(repo: &Repo, store: &dyn ArtifactStore) -> Vec<BuildOutcome> {
    build(&repo.project(), &request(&[]), store, &NoProgress)
        .await
        .unwrap()
}

#[tokio::test]
async fn second_build_is_cached_and_a_change_rebuilds_only_that_service() {
    let mut repo = Repo::new(PROJECT);
    let store = LocalStore::new(repo.dir.path().join("store"));
    assert_eq!(
        statuses(&build_all(&repo, &store).await),
        ["api built", "web built"]
    );
    assert_eq!(
        statuses(&build_all(&repo, &store).await),
        ["api cached", "web cached"]
    );
    let before = resolve_versions(&repo.project(), "HEAD").unwrap();
    repo.write("sub/services/api/src/main", "api 2\n");
    let second = repo.commit("change api");
    let after = resolve_versions(&repo.project(), "HEAD").unwrap();
    assert_eq!(
        statuses(&build_all(&repo, &store).await),
        ["api built", "web cached"]
    );
    // Version stability: web keeps the version of the first commit, api takes the new one.
    assert_eq!(after.services[1].version, before.services[1].version);
    assert_eq!(after.services[0].version, second[..VERSION_LEN]);
    assert_ne!(after.services[0].key, before.services[0].key);
    assert!(!after.dirty);
}

#[tokio::test]
async fn two_clean_builds_into_two_stores_are_byte_identical() {
    let repo = Repo::new(PROJECT);
    let one = LocalStore::new(repo.dir.path().join("one"));
    let two = LocalStore::new(repo.dir.path().join("two"));
    let a = build_all(&repo, &one).await;
    let b = build_all(&repo, &two).await;
    let sha = |o: &[BuildOutcome]| -> Vec<String> {
        o.iter()
            .map(|o| match o {
                BuildOutcome::Built { meta, .. } => meta.sha256.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(sha(&a), sha(&b));
    // And the content is what the recipe made, with the environment it was given.
    let dest = repo.dir.path().join("api.tgz");
    let version = a[0].version().to_string();
    one.fetch("api", &version, &dest).await.unwrap();
    let out = repo.dir.path().join("out");
    crate::artifacts::unpack(&dest, &out).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("name")).unwrap(), "api\n");
    assert_eq!(
        std::fs::read_to_string(out.join("main")).unwrap(),
        "api 1\n"
    );
}

#[tokio::test]
async fn a_failing_recipe_is_reported_with_command_exit_code_and_log_tail() {
    let project = PROJECT.replace(
        "mkdir -p dist && cp -r src/. dist/'",
        "echo compiling web; exit 7'",
    );
    let repo = Repo::new(&project);
    let store = LocalStore::new(repo.dir.path().join("store"));
    let outcomes = build_all(&repo, &store).await;
    assert_eq!(statuses(&outcomes), ["api built", "web failed"]);
    let BuildOutcome::Failed { error, .. } = &outcomes[1] else {
        unreachable!()
    };
    let text = error.to_string();
    assert!(
        text.contains("echo compiling web; exit 7") && text.contains("exit code 7"),
        "{text}"
    );
    assert!(text.contains("compiling web"), "{text}");
}

#[tokio::test]
async fn outputs_leaving_the_service_are_refused_before_anything_runs() {
    for output in ["/etc", "../web"] {
        let project = PROJECT.replacen("output: dist", &format!("output: '{output}'"), 1);
        let repo = Repo::new(&project);
        let store = LocalStore::new(repo.dir.path().join("store"));
        let error = build(&repo.project(), &request(&[]), &store, &NoProgress)
            .await
            .unwrap_err();
        assert!(matches!(error, BuildError::BadOutput { .. }), "{error}");
        assert!(store.list(None).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_dirty_tree_is_noticed_but_not_built() {
    let repo = Repo::new(PROJECT);
    repo.write("sub/services/api/src/main", "uncommitted\n");
    let resolved = resolve_versions(&repo.project(), "HEAD").unwrap();
    assert!(resolved.dirty);
    let store = LocalStore::new(repo.dir.path().join("store"));
    let outcomes = build(&repo.project(), &request(&["api"]), &store, &NoProgress)
        .await
        .unwrap();
    let dest = repo.dir.path().join("api.tgz");
    store
        .fetch("api", outcomes[0].version(), &dest)
        .await
        .unwrap();
    let out = repo.dir.path().join("out");
    crate::artifacts::unpack(&dest, &out).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("main")).unwrap(),
        "api 1\n"
    );
}

#[test]
fn unknown_refs_and_services_are_usage_errors() {
    let repo = Repo::new(PROJECT);
    let error = resolve_versions(&repo.project(), "no-such-branch").unwrap_err();
    assert!(matches!(error, BuildError::BadRevision { .. }), "{error}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = LocalStore::new(repo.dir.path().join("store"));
    let error = runtime
        .block_on(build(
            &repo.project(),
            &request(&["apj"]),
            &store,
            &NoProgress,
        ))
        .unwrap_err();
    assert!(
        matches!(error, BuildError::UnknownService { .. }),
        "{error}"
    );
}

#[test]
fn a_recipe_change_gives_a_new_version_and_extra_paths_count() {
    let project = PROJECT.replace(
        "output: dist }\n  web",
        "output: dist, extra_paths: [lib] }\n  web",
    );
    let mut repo = Repo::new(&project);
    let first = resolve_versions(&repo.project(), "HEAD").unwrap();
    repo.write("sub/lib/shared", "v2\n");
    repo.commit("shared lib");
    let second = resolve_versions(&repo.project(), "HEAD").unwrap();
    assert_ne!(first.services[0].version, second.services[0].version);
    assert_eq!(first.services[1].version, second.services[1].version);
    repo.write(
        "sub/convoy.yaml",
        &project.replace("cp -r src/. dist/'", "cp -r src/. dist/ && true'"),
    );
    repo.commit("web recipe");
    let third = resolve_versions(&repo.project(), "HEAD").unwrap();
    assert_ne!(second.services[1].version, third.services[1].version);
    assert_eq!(second.services[0].version, third.services[0].version);
}
