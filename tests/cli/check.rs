//! `convoy check`: a valid project passes; each kind of broken project file exits 2 with the
//! file, line and column and a message that says what is wrong.

use convoy_test_support::cli::{Test, example_dir};
use convoy_test_support::convoy_snapshot;

const VALID_SERVICES: &str = "\
project: shop
services:
  payments: { path: services/payments }
  api: { path: services/api, depends_on: [payments] }
environments:
  local: { target: { host: { root: srv } } }
";

#[test]
fn example_project_passes() {
    Test::new()
        .args(["check", "--project", example_dir().to_str().unwrap()])
        .stdout_has("production-ec2  aws")
        .stdout_has("ok")
        .run();
}

#[test]
fn finds_the_project_from_a_subdirectory() {
    Test::new()
        .file("convoy.yaml", VALID_SERVICES)
        .file("services/api/main.txt", "x")
        .current_dir("services/api")
        .args(["check"])
        .stdout_has("local        host")
        .run();
}

#[test]
fn outside_a_project_says_how_to_point_at_one() {
    Test::new()
        .args(["check"])
        .status(2)
        .stderr_has("no convoy.yaml in")
        .stderr_has("help: run convoy inside a project, or pass `--project PATH`")
        .run();
}

#[test]
fn json_output_is_one_event_per_environment() {
    let ran = Test::new()
        .file("convoy.yaml", VALID_SERVICES)
        .args(["--output", "json", "check"])
        .run();
    let events: Vec<serde_json::Value> = ran
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["environment"], "local");
    assert_eq!(events[0]["problems"], 0);
}

/// One broken project file: what to write, and what the error must say.
struct Broken {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    expected: &'static [&'static str],
}

const BROKEN: &[Broken] = &[
    Broken {
        name: "aws environment without an instance profile, and an io2 volume without iops",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    target:\n      aws:\n        region: eu-west-1\n        block_devices: [{ device: /dev/sdf, volume_type: io2, size_gib: 8 }]\n",
        )],
        expected: &[
            "invalid `target.aws.iam_instance_profile` of environment `prod`: it is required",
            "help: name the instance profile whose role has the `instance` policy of manifests/aws-iam.json",
            "invalid `target.aws.block_devices[0].iops` of environment `prod`: io2 volumes need `iops`",
        ],
    },
    Broken {
        name: "dependency cycle",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a, depends_on: [web] }\n  web: { path: w, depends_on: [api] }\n",
        )],
        expected: &["dependency cycle: api → web → api", "convoy.yaml:3:"],
    },
    Broken {
        name: "unknown dependency",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  payments: { path: p }\n  api: { path: a, depends_on: [paymnts] }\n",
        )],
        expected: &[
            "service `api` depends on `paymnts`, which is not a service",
            "convoy.yaml:4:32 (services.api.depends_on[0])",
            "help: did you mean `payments`?",
        ],
    },
    Broken {
        name: "bad service name",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  Payments_API: { path: p }\n",
        )],
        expected: &[
            "invalid service name `Payments_API`",
            "convoy.yaml:3:3 (services.Payments_API)",
            "help: use lowercase",
        ],
    },
    Broken {
        name: "unknown key with a typo",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api:\n    path: a\n    dependson: [x]\n",
        )],
        expected: &[
            "unknown field `dependson`",
            "convoy.yaml:5:5",
            "help: did you mean `depends_on`?",
        ],
    },
    Broken {
        name: "target kind with a typo",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    target: { kubernets: { namespace: x } }\n",
        )],
        expected: &[
            "unknown field `kubernets`",
            "convoy.yaml:6:",
            "did you mean `kubernetes`?",
        ],
    },
    Broken {
        name: "environment without a target",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    rollout: { strategy: canary, steps: [10, 100] }\n",
        )],
        expected: &[
            "environment `prod` has no target",
            "convoy.yaml:5:3 (environments.prod)",
        ],
    },
    Broken {
        name: "steps that do not end at 100",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    target: { host: { root: r } }\n    rollout: { strategy: canary, steps: [10, 50] }\n",
        )],
        expected: &[
            "`steps` must end at 100",
            "convoy.yaml:7:",
            "(environments.prod.rollout.steps)",
        ],
    },
    Broken {
        name: "duration that does not parse",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\nenvironments:\n  prod:\n    target: { host: { root: r } }\n    rollout: { bake: two minutes }\n",
        )],
        expected: &[
            "invalid duration `two minutes`",
            "convoy.yaml:7:",
            "such as 90s, 2m or 1h30m",
        ],
    },
    Broken {
        name: "duplicate key",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a }\n  web: { path: w }\n  api: { path: b }\n",
        )],
        expected: &[
            "duplicate key `api` (first set on line 3)",
            "convoy.yaml:5:3 (services.api)",
        ],
    },
    Broken {
        name: "malformed YAML",
        files: &[(
            "convoy.yaml",
            "project: shop\nservices:\n  api: { path: a\n  web: { path: w }\n",
        )],
        expected: &["malformed YAML", "convoy.yaml:"],
    },
    Broken {
        name: "type change across layers",
        files: &[
            ("convoy.yaml", VALID_SERVICES),
            ("values/common.yaml", "database:\n  port: 5432\n"),
            ("values/local.yaml", "database:\n  port: [5432]\n"),
        ],
        expected: &[
            "value `database.port` changes type from number to list",
            "values/local.yaml:2:3 (database.port)",
            "the earlier one is at",
            "values/common.yaml:2:3",
        ],
    },
    Broken {
        name: "missing required value",
        files: &[
            ("convoy.yaml", VALID_SERVICES),
            (
                "values/common.yaml",
                "database:\n  host: { required: the PostgreSQL host }\n",
            ),
        ],
        expected: &[
            "required value `database.host` is not set for service `api` in environment `local`",
            "values/common.yaml:2:3 (database.host)",
            "set `database.host` (the PostgreSQL host) in values/local.yaml",
        ],
    },
    Broken {
        name: "malformed values file",
        files: &[
            ("convoy.yaml", VALID_SERVICES),
            ("values/api.yaml", "a: b: c\n"),
        ],
        expected: &["malformed YAML", "values/api.yaml:1:"],
    },
];

#[test]
fn broken_project_files_exit_2_with_location_and_message() {
    for broken in BROKEN {
        let mut test = Test::new();
        for (path, contents) in broken.files {
            test = test.file(path, contents);
        }
        let ran = test.args(["check"]).status(2).run();
        for expected in broken.expected {
            assert!(
                ran.stderr.contains(expected),
                "{}: stderr lacks {expected:?}\n{}",
                broken.name,
                ran.stderr
            );
        }
        assert!(
            ran.stdout.is_empty() || !ran.stdout.contains("ok\n") || ran.stdout.contains("problem")
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let ran = Test::new()
        .file(
            "convoy.yaml",
            "project: shop\nservices:\n  Bad_Name: { path: a }\n  api: { path: /abs, depends_on: [nope] }\n",
        )
        .args(["check"])
        .status(2)
        .run();
    assert!(ran.stderr.contains("3 problems"), "{}", ran.stderr);
    assert!(ran.stderr.contains("invalid service name `Bad_Name`"));
    assert!(ran.stderr.contains("invalid path `/abs`"));
    assert!(ran.stderr.contains("depends on `nope`"));
}

#[test]
fn every_missing_required_value_is_listed() {
    let ran = Test::new()
        .file("convoy.yaml", VALID_SERVICES)
        .file(
            "values/common.yaml",
            "a: { required: x }\nb: { c: { required: y } }\n",
        )
        .args(["check"])
        .status(2)
        .run();
    for key in ["`a`", "`b.c`"] {
        for service in ["`api`", "`payments`"] {
            let found = ran.stderr.lines().any(|l| {
                l.contains(&format!("required value {key}"))
                    && l.contains(&format!("service {service}"))
            });
            assert!(found, "missing {key} for {service}\n{}", ran.stderr);
        }
    }
}

#[test]
fn verbose_shows_the_error_chain() {
    let ran = Test::new()
        .args(["-v", "check", "--project", "missing/convoy.yaml"])
        .status(2)
        .run();
    assert!(
        ran.stderr.contains("cannot read missing/convoy.yaml"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("caused by: No such file or directory"),
        "{}",
        ran.stderr
    );
}

#[test]
fn example_project_summary() {
    let ran = Test::example().args(["check"]).run();
    convoy_snapshot!("check_example", ran);
}

#[test]
fn strict_fails_on_the_warnings_of_a_template_without_probes_or_resources() {
    let ran = Test::example()
        .file(
            "templates/kubernetes/deployment.yaml",
            crate::render::BARE_DEPLOYMENT,
        )
        .args(["check", "--env", "production", "--strict"])
        .status(2)
        .run();
    convoy_snapshot!("check_strict_lint_warnings", ran);
}
