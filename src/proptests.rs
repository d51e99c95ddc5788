//! Property tests of every parser of hostile input — the project file, values files, `--set`,
//! durations, percents and sizes, the tar unpacker and the rollout-status classifier: on any
//! input each returns a value or a located error, and never panics, hangs or allocates without
//! bound. Case counts keep the whole suite to seconds in the normal `cargo test`; proptest keeps
//! any failing input under `proptest-regressions/`, and the inputs that once failed are pinned
//! as plain tests at the end of this file.

use std::path::Path;

use proptest::prelude::*;

use crate::artifacts::{UnpackLimits, unpack_with};
use crate::config::limits::InputLimits;
use crate::config::yaml::Document;
use crate::config::{ByteSize, ConfigError, Dur, Percent, Project};
use crate::diagnostic::Diagnose;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 200,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::SourceParallel("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// Text made of YAML's punctuation, a few words of Convoy's schema and odd characters: far more
/// likely than uniform noise to reach the parsers' corners.
fn yamlish() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("project: p\n".to_string()),
        Just("services:\n".to_string()),
        Just("  api: { path: a }\n".to_string()),
        Just("environments:\n".to_string()),
        Just("  local: { target: { host: { root: r } } }\n".to_string()),
        Just("rollout: { steps: [".to_string()),
        Just("limits: { max_depth: ".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("<<: *a\n".to_string()),
        Just("!!binary ".to_string()),
        Just("? ".to_string()),
        Just("'".to_string()),
        Just("\"\\u".to_string()),
        Just("|\n  ".to_string()),
        "[\\[\\]{}:,\\-&*!|>#%@` \n\t0-9a-z]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(pieces, 0..40).prop_map(|p| p.concat())
}

/// Every problem of a refused project file says where it is.
fn assert_located(errors: &[ConfigError], text: &str) {
    for error in errors {
        assert!(
            error.location().is_some(),
            "unlocated error {error:?} for {text:?}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_parse_or_explain(text in "\\PC{0,24}") {
        if let Err(message) = Dur::parse(&text) {
            prop_assert!(message.contains("duration"));
        }
    }

    #[test]
    fn sizes_parse_or_explain(text in "[0-9]{0,25}[ KMGTiB]{0,4}") {
        if let Err(message) = ByteSize::parse(&text) {
            prop_assert!(message.contains("size"));
        }
    }

    #[test]
    fn percents_are_1_to_100_or_refused(text in "[-0-9%. a-z'\"]{0,24}") {
        if let Ok(percent) = yaml_serde::from_str::<Percent>(&text) {
            prop_assert!((1..=100).contains(&percent.0));
        }
    }

    #[test]
    fn set_arguments_parse_or_name_themselves(argument in "[a-z.=\\[\\]{}:,&*!| \"']{0,30}") {
        match crate::config::values::parse_set(&argument) {
            Ok(value) => prop_assert!(value.is_mapping()),
            Err(ConfigError::BadSet { argument: named, .. }) => prop_assert_eq!(named, argument),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn project_files_load_or_say_where(text in yamlish()) {
        if let Err(errors) = Project::from_text(Path::new("convoy.yaml"), text.clone()) {
            assert_located(&errors.0, &text);
        }
    }

    #[test]
    fn values_files_parse_or_say_where(text in yamlish()) {
        let limits = InputLimits::default();
        match Document::parse_with(Path::new("values/common.yaml"), text.clone(), &limits) {
            Ok(document) => {
                if let Err(error) = document.typed::<yaml_serde::Value>() {
                    prop_assert!(error.location().is_some(), "{error:?}");
                }
            }
            Err(error) => prop_assert!(error.location().is_some(), "{error:?}"),
        }
    }

    #[test]
    fn garbled_archives_are_refused_without_escaping(
        flips in proptest::collection::vec((0usize..4096, any::<u8>()), 0..12),
        cut in 0usize..4096,
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sentinel"), "untouched").unwrap();
        let mut bytes = sample_tar();
        for (at, byte) in flips {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(512));
        let archive = dir.path().join("a.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&archive).unwrap(),
            flate2::Compression::fast(),
        );
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        gz.finish().unwrap();
        let limits = UnpackLimits { max_size: 1 << 20, max_entries: 64 };
        let _ = unpack_with(&archive, &dir.path().join("v/out"), &limits);
        prop_assert_eq!(std::fs::read_to_string(dir.path().join("sentinel")).unwrap(), "untouched");
        let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        prop_assert_eq!(outside.len(), 3, "{:?}", outside);
    }

    #[test]
    fn the_rollout_classifier_takes_any_numbers(
        numbers in proptest::collection::vec(prop_oneof![any::<i32>(), -3i32..5], 8),
        generation in any::<i64>(),
        reason in "[A-Za-z]{0,24}",
        seconds in any::<i32>(),
    ) {
        classify(&numbers, generation, &reason, i64::from(seconds));
    }
}

/// A small archive of each entry kind, as `convoy build` writes them: what the flips garble.
fn sample_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(5);
    header.set_mode(0o755);
    builder
        .append_data(&mut header, "bin/run", &b"hello"[..])
        .unwrap();
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "run", "bin/run").unwrap();
    let mut long = tar::Header::new_gnu();
    long.set_size(2);
    builder
        .append_data(&mut long, format!("{}/f", "d".repeat(150)), &b"ok"[..])
        .unwrap();
    builder.into_inner().unwrap()
}

fn classify(numbers: &[i32], generation: i64, reason: &str, seconds: i64) {
    use crate::targets::kubernetes::{Graces, rollout_status_of};
    let deployment = serde_json::json!({
        "metadata": {"name": "api-v1", "generation": generation},
        "spec": {"replicas": numbers[0], "selector": {}, "template": {}},
        "status": {
            "observedGeneration": generation.wrapping_add(i64::from(numbers[1] % 2)),
            "replicas": numbers[2],
            "updatedReplicas": numbers[3],
            "readyReplicas": numbers[4],
            "availableReplicas": numbers[5],
            "unavailableReplicas": numbers[6],
            "conditions": [{
                "type": "Progressing",
                "status": "False",
                "reason": reason,
                "lastUpdateTime": "2026-11-22T10:00:00Z",
            }],
        },
    });
    let pod = serde_json::json!({
        "metadata": {"name": "api-v1-x", "creationTimestamp": "2026-11-22T10:00:00Z"},
        "status": {
            "containerStatuses": [{
                "name": "c", "image": "i", "imageID": "", "ready": false,
                "restartCount": numbers[7],
                "state": {"waiting": {"reason": reason}},
            }],
        },
    });
    let Ok(deployment) = serde_json::from_value(deployment) else {
        return;
    };
    let pods = serde_json::from_value(pod)
        .map(|p| vec![p])
        .unwrap_or_default();
    let applied: jiff::Timestamp = "2026-11-22T10:00:00Z".parse().unwrap();
    let now = applied
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap_or(applied);
    let _ = rollout_status_of(&deployment, &[], &pods, applied, now, &Graces::default());
}

#[test]
fn regression_a_yaml_alias_bomb_is_refused_with_a_location() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = (b'a' + level - 1) as char;
        let name = (b'a' + level) as char;
        let refs = vec![format!("*{previous}"); 9].join(", ");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let document = Document::parse(Path::new("values/common.yaml"), text).unwrap();
    let error = document.typed::<yaml_serde::Value>().unwrap_err();
    assert!(error.location().is_some(), "{error:?}");
}

#[test]
fn regression_deep_nesting_is_refused_where_it_goes_too_deep() {
    // Block maps: refused at the 65th level, naming the limit.
    let text: String = (0..200)
        .map(|depth| format!("{}k:\n", "  ".repeat(depth)))
        .collect();
    let error = Document::parse(Path::new("values/common.yaml"), text).unwrap_err();
    let ConfigError::TooDeep { location, limit } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((location.line, *limit), (65, 64));
    // 100 000 `[`: the YAML scanner's own recursion limit comes first; located all the same,
    // and refused in linear time (it once looked like the parser might recurse without bound).
    let text = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let error = Document::parse(Path::new("values/common.yaml"), text).unwrap_err();
    assert!(error.location().is_some(), "{error:?}");
}

#[test]
fn regression_an_oversized_values_file_is_refused_before_parsing() {
    let text = "a: 1\n".repeat(300_000);
    let error = Document::parse(Path::new("values/common.yaml"), text).unwrap_err();
    assert!(matches!(error, ConfigError::TooLarge { .. }), "{error:?}");
    assert!(error.help().unwrap().contains("limits.max_file_size"));
}

#[test]
fn regression_replica_counts_far_apart_do_not_overflow_the_classifier() {
    // Found by `the_rollout_classifier_takes_any_numbers`: `replicas - updated` panicked with
    // i32::MAX old replicas and a negative updated count from a misbehaving API server.
    classify(
        &[-952544969, 0, 1194938679, -952544969, 0, 0, 0, 0],
        0,
        "",
        0,
    );
    classify(
        &[i32::MIN, 0, 0, i32::MAX, i32::MAX, i32::MAX, 0, 0],
        1,
        "",
        0,
    );
}
