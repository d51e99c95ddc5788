//! The environment's flags in an SSM parameter against moto: compare-and-swap on its version,
//! history in the bucket, a dead writer's lock taken over, and the agent's copy to a file.

use super::*;
use crate::execute::flags::{FlagAuthor, FlagEdit, FlagError, FlagStore};
use crate::targets::aws::flag_parameter::{SsmFlags, sync_to_file};
use crate::targets::aws::state::Condition;

fn author() -> FlagAuthor {
    FlagAuthor {
        who: "alice@laptop".to_string(),
        at: jiff::Timestamp::now(),
        release: None,
    }
}

fn set(key: &str, value: &str) -> FlagEdit {
    FlagEdit::Set {
        key: key.to_string(),
        value: value.to_string(),
    }
}

async fn parameter(world: &World, name: &str) -> (String, i64) {
    let got = world.clients.ssm.get_parameter().name(name).send().await;
    let found = world.ok(got).parameter.expect("the parameter");
    (found.value.unwrap_or_default(), found.version)
}

#[tokio::test]
async fn flags_live_in_an_ssm_parameter_with_compare_and_swap_and_history() {
    let world = World::new().await;
    let name = names::flags_parameter("shop", "production");
    let store = SsmFlags::new(world.clients.ssm.clone(), name.clone(), world.location());
    assert_eq!(world.ok(store.read().await).revision, 0);
    let written = world.ok(store.write(0, &[set("checkout", "new")], &author()).await);
    assert_eq!(written.revision, 1);
    let (value, version) = parameter(&world, &name).await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&value).unwrap(),
        serde_json::json!({"checkout": "new"})
    );
    assert_eq!(version, 1);

    let lost = store.write(0, &[set("checkout", "old")], &author()).await;
    assert!(
        matches!(
            lost,
            Err(FlagError::Stale {
                expected: 0,
                found: 1
            })
        ),
        "{lost:?}"
    );
    assert_eq!(parameter(&world, &name).await.1, 1, "a lost update wrote");

    // A writer that died holding the lock: once it expired, the next write takes it over.
    let lock = format!("{}/flags.lock", world.location().root);
    let dead = serde_json::json!({"who": "ci-41", "expires": "2026-01-01T00:00:00Z"});
    let location = world.location();
    let put = location.put(&lock, dead.to_string().into_bytes(), Condition::Always);
    world.ok(put.await);
    let unset = FlagEdit::Unset {
        key: "checkout".to_string(),
    };
    assert_eq!(
        world.ok(store.write(1, &[unset], &author()).await).revision,
        2
    );
    assert!(
        world.ok(world.location().get(&lock).await).is_none(),
        "the lock stayed"
    );

    let history = world.ok(store.history(10).await);
    let seen: Vec<_> = history
        .iter()
        .map(|c| (c.revision, c.old.as_deref(), c.new.as_deref()))
        .collect();
    assert_eq!(seen, [(1, None, Some("new")), (2, Some("new"), None)]);
    assert!(history.iter().all(|c| c.who == "alice@laptop"));
}

#[tokio::test]
async fn the_agent_copies_the_flags_to_a_file_atomically_when_they_change() {
    let world = World::new().await;
    let name = names::flags_parameter("shop", "production");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.json");
    // No parameter yet: an empty object, so services always find the file.
    assert!(world.ok(sync_to_file(&world.clients.ssm, &name, &file).await));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{}");
    let store = SsmFlags::new(world.clients.ssm.clone(), name.clone(), world.location());
    world.ok(store.write(0, &[set("checkout", "new")], &author()).await);
    assert!(world.ok(sync_to_file(&world.clients.ssm, &name, &file).await));
    let read: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(read, serde_json::json!({"checkout": "new"}));
    assert!(
        !world.ok(sync_to_file(&world.clients.ssm, &name, &file).await),
        "an unchanged copy was rewritten"
    );
    // Replaced by a rename: nothing else is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["flags.json"]);
}
