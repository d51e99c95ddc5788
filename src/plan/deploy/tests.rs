use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::*;
use crate::config::{Dur, Percent, Provision, RolloutPolicy, Strategy};
use crate::plan::{Phase, rollback_plan};

const NOW: &str = "2026-11-22T10:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn graph(edges: &[(&str, &[&str])]) -> ServiceGraph {
    let owned: Vec<(String, Vec<String>)> = edges
        .iter()
        .map(|(s, d)| (s.to_string(), d.iter().map(|x| x.to_string()).collect()))
        .collect();
    ServiceGraph::new(owned.iter().map(|(s, d)| (s.as_str(), d.as_slice())))
}

fn ticketshop() -> ServiceGraph {
    graph(&[
        ("payments", &[]),
        ("api", &["payments"]),
        ("web", &["api"]),
        ("worker", &["api"]),
    ])
}

fn canary() -> RolloutPolicy {
    RolloutPolicy {
        strategy: Strategy::Canary,
        steps: vec![Percent(10), Percent(50), Percent(100)],
        bake: Dur::secs(120),
        keep_warm: Dur::secs(900),
        ..RolloutPolicy::default()
    }
}

fn live(pairs: &[(&str, &str)]) -> BTreeMap<String, ServiceState> {
    pairs
        .iter()
        .map(|(s, v)| {
            let state = ServiceState {
                live: Some(v.to_string()),
                warm: vec![v.to_string()],
            };
            (s.to_string(), state)
        })
        .collect()
}

fn desired(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(s, v)| (s.to_string(), v.to_string()))
        .collect()
}

fn run(
    graph: &ServiceGraph,
    policy: &RolloutPolicy,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, ServiceState>,
) -> Plan {
    let input = PlanInput {
        environment: "production",
        policy,
        graph,
        desired: want,
        observed: have,
        weighted_traffic: true,
        tasks: &BTreeMap::new(),
    };
    plan(&input, now())
}

#[test]
fn ticketshop_canary_plan() {
    let g = ticketshop();
    let want = desired(&[
        ("payments", "p2"),
        ("api", "a2"),
        ("web", "w1"),
        ("worker", "k2"),
    ]);
    let have = live(&[
        ("payments", "p1"),
        ("api", "a1"),
        ("web", "w1"),
        ("worker", "k1"),
    ]);
    let plan = run(&g, &canary(), &want, &have);
    insta::assert_snapshot!(plan.to_string());
}

#[test]
fn unchanged_services_are_skipped_and_new_ones_created() {
    let g = ticketshop();
    let want = desired(&[("payments", "p1"), ("api", "a2")]);
    let have = live(&[("payments", "p1")]);
    let plan = run(&g, &RolloutPolicy::default(), &want, &have);
    assert_eq!(plan.unchanged.len(), 1);
    assert!(plan.steps.iter().all(|s| s.service == "api"));
    // A first release has nothing to retire.
    assert_eq!(plan.phase(Phase::Cleanup).count(), 0);
    assert_eq!(plan.changes[0].from, None);
}

#[test]
fn warm_versions_need_no_provision() {
    let g = ticketshop();
    let want = desired(&[("api", "a1")]);
    let mut have = live(&[("api", "a2")]);
    have.get_mut("api").unwrap().warm.push("a1".into());
    let plan = run(&g, &RolloutPolicy::default(), &want, &have);
    assert_eq!(plan.phase(Phase::Provision).count(), 0);
    assert_eq!(plan.phase(Phase::Switch).count(), 1);
}

#[test]
fn targets_without_weighted_traffic_switch_once() {
    let g = ticketshop();
    let want = desired(&[("api", "a2")]);
    let have = live(&[("api", "a1")]);
    let policy = canary();
    let input = PlanInput {
        environment: "local",
        policy: &policy,
        graph: &g,
        desired: &want,
        observed: &have,
        weighted_traffic: false,
        tasks: &BTreeMap::new(),
    };
    let plan = plan(&input, now());
    assert_eq!(plan.phase(Phase::Switch).count(), 1);
}

#[test]
fn cleanup_waits_for_keep_warm() {
    let g = ticketshop();
    let plan = run(
        &g,
        &canary(),
        &desired(&[("api", "a2")]),
        &live(&[("api", "a1")]),
    );
    let retire = plan.phase(Phase::Cleanup).next().unwrap();
    assert_eq!(
        retire.not_before,
        Some(
            now()
                .checked_add(jiff::SignedDuration::from_secs(900))
                .unwrap()
        )
    );
}

/// A small deterministic generator of random DAGs (services only depend on earlier ones).
fn random_case(
    seed: u64,
) -> (
    ServiceGraph,
    BTreeMap<String, String>,
    BTreeMap<String, ServiceState>,
) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    let count = 2 + next(10) as usize;
    let names: Vec<String> = (0..count).map(|i| format!("s{i}")).collect();
    let mut edges: Vec<(String, Vec<String>)> = Vec::new();
    let mut want = BTreeMap::new();
    let mut have = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let deps = (0..i)
            .filter(|_| next(3) == 0)
            .map(|j| names[j].clone())
            .collect();
        edges.push((name.clone(), deps));
        want.insert(name.clone(), "new".to_string());
        match next(3) {
            0 => {} // never deployed
            1 => {
                have.insert(
                    name.clone(),
                    ServiceState {
                        live: Some("new".into()),
                        warm: vec![],
                    },
                );
            }
            _ => {
                have.insert(
                    name.clone(),
                    ServiceState {
                        live: Some("old".into()),
                        warm: vec![],
                    },
                );
            }
        }
    }
    let graph = ServiceGraph::new(edges.iter().map(|(s, d)| (s.as_str(), d.as_slice())));
    (graph, want, have)
}

#[test]
fn invariants_hold_for_random_graphs() {
    for seed in 0..300 {
        let (g, want, have) = random_case(seed);
        let plan = run(&g, &canary(), &want, &have);
        let position: BTreeMap<StepId, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id, i))
            .collect();
        let transitive = |svc: &str| {
            let mut out = BTreeSet::new();
            let mut stack: Vec<String> = g.dependencies(svc).map(str::to_string).collect();
            while let Some(d) = stack.pop() {
                if out.insert(d.clone()) {
                    stack.extend(g.dependencies(&d).map(str::to_string));
                }
            }
            out
        };
        // Every changed service is in the plan; no unchanged one is.
        for change in &plan.changes {
            assert!(
                plan.steps.iter().any(|s| s.service == change.service),
                "seed {seed}: {} skipped",
                change.service
            );
        }
        for unchanged in &plan.unchanged {
            assert!(
                plan.steps.iter().all(|s| s.service != unchanged.service),
                "seed {seed}"
            );
        }
        // No step without its dependencies, and dependencies come earlier in the plan.
        for step in &plan.steps {
            for dep in step.needs() {
                assert!(
                    position[&dep] < position[&step.id],
                    "seed {seed}: {} before its dependency",
                    step.id
                );
            }
        }
        // Reachability through `after` (the executor's only ordering).
        let reaches = |from: StepId, to: StepId| {
            let mut stack = vec![from];
            let mut seen = BTreeSet::new();
            while let Some(s) = stack.pop() {
                if s == to {
                    return true;
                }
                if seen.insert(s) {
                    stack.extend(plan.step(s).unwrap().needs());
                }
            }
            false
        };
        for a in &plan.steps {
            for b in &plan.steps {
                let b_depends_on_a = transitive(&b.service).contains(&a.service);
                // Every provider is switched before its clients start switching.
                if a.phase == Phase::Switch && b.phase == Phase::Switch && b_depends_on_a {
                    assert!(
                        reaches(b.id, a.id),
                        "seed {seed}: {} switches before provider {}",
                        b.service,
                        a.service
                    );
                }
                // Every switch waits for every provision; cleanup waits for every switch.
                if a.phase == Phase::Provision && b.phase == Phase::Switch {
                    assert!(
                        reaches(b.id, a.id),
                        "seed {seed}: switch before a provision finished"
                    );
                }
                if a.phase == Phase::Switch && b.phase == Phase::Cleanup {
                    assert!(
                        reaches(b.id, a.id),
                        "seed {seed}: cleanup before a switch finished"
                    );
                }
                // Cleanup runs clients first.
                if a.phase == Phase::Cleanup && b.phase == Phase::Cleanup && b_depends_on_a {
                    assert!(
                        reaches(a.id, b.id),
                        "seed {seed}: provider retired before its client"
                    );
                }
            }
        }
    }
}

#[test]
fn rollback_switches_back_only_what_took_traffic_clients_first() {
    let g = ticketshop();
    let want = desired(&[("payments", "p2"), ("api", "a2"), ("web", "w2")]);
    let have = live(&[("payments", "p1"), ("api", "a1"), ("web", "w1")]);
    let policy = RolloutPolicy::default();
    let plan = run(&g, &policy, &want, &have);
    // Everything provisioned; payments and api switched; web's switch failed before starting.
    let started: BTreeSet<StepId> = plan
        .steps
        .iter()
        .filter(|s| s.phase == Phase::Provision || (s.phase == Phase::Switch && s.service != "web"))
        .map(|s| s.id)
        .collect();
    let back = rollback_plan(&plan, &started, Dur::secs(60), now());
    let summary: Vec<String> = back
        .steps
        .iter()
        .map(|s| format!("{} {}", s.service, s.action))
        .collect();
    assert_eq!(
        summary,
        vec![
            "api switch 100% a2 → a1",
            "payments switch 100% p2 → p1",
            "web remove w2",
            "api remove a2",
            "payments remove p2",
        ]
    );
    // Removal waits until all traffic is back.
    let last_switch = back.steps[1].id;
    assert!(back.steps[2..].iter().all(|s| s.needs_step(last_switch)));
}

#[test]
fn rollback_switches_a_layer_back_together_and_its_providers_after_all_of_it() {
    // web and worker both depend on api, which depends on payments; all four switched (canary
    // steps included) before something failed.
    let g = ticketshop();
    let want = desired(&[
        ("payments", "p2"),
        ("api", "a2"),
        ("web", "w2"),
        ("worker", "k2"),
    ]);
    let have = live(&[
        ("payments", "p1"),
        ("api", "a1"),
        ("web", "w1"),
        ("worker", "k1"),
    ]);
    let plan = run(&g, &canary(), &want, &have);
    let started: BTreeSet<StepId> = plan
        .steps
        .iter()
        .filter(|s| s.phase != Phase::Cleanup)
        .map(|s| s.id)
        .collect();
    let back = rollback_plan(&plan, &started, Dur::secs(60), now());
    let switch_of = |service: &str| {
        back.steps
            .iter()
            .find(|s| s.service == service && matches!(s.action, Action::Switch { .. }))
            .unwrap()
    };
    let (web, worker) = (switch_of("web"), switch_of("worker"));
    let (api, payments) = (switch_of("api"), switch_of("payments"));
    // The clients of one layer go back together, neither waiting for the other.
    assert!(web.needs().next().is_none(), "{web:?}");
    assert!(worker.needs().next().is_none(), "{worker:?}");
    // A provider goes back once every client of it has, and only then.
    let mut clients: Vec<StepId> = api.needs().collect();
    clients.sort();
    let mut expected = vec![web.id, worker.id];
    expected.sort();
    assert_eq!(clients, expected);
    assert!(payments.needs_step(api.id), "{payments:?}");
}

#[test]
fn rollback_of_a_failed_provision_moves_no_traffic() {
    let g = ticketshop();
    let plan = run(
        &g,
        &RolloutPolicy::default(),
        &desired(&[("api", "a2")]),
        &live(&[("api", "a1")]),
    );
    let started: BTreeSet<StepId> = plan.phase(Phase::Provision).map(|s| s.id).collect();
    let back = rollback_plan(&plan, &started, Dur::secs(60), now());
    assert_eq!(back.steps.len(), 1);
    assert_eq!(
        back.steps[0].action,
        Action::Remove {
            version: "a2".into()
        }
    );
}

#[test]
fn rollback_keeps_dependency_order_and_warm_versions_when_some_services_skipped_provision() {
    // payments' target version is warm (no provision step); api's is new.
    let g = ticketshop();
    let want = desired(&[("payments", "p1"), ("api", "a2")]);
    let mut have = live(&[("payments", "p2"), ("api", "a1")]);
    have.get_mut("payments").unwrap().warm.push("p1".into());
    let plan = run(&g, &RolloutPolicy::default(), &want, &have);
    let started: BTreeSet<StepId> = plan
        .steps
        .iter()
        .filter(|s| s.phase != Phase::Cleanup)
        .map(|s| s.id)
        .collect();
    let back = rollback_plan(&plan, &started, Dur::secs(60), now());
    let summary: Vec<String> = back
        .steps
        .iter()
        .map(|s| format!("{} {}", s.service, s.action))
        .collect();
    assert_eq!(
        summary,
        vec![
            "api switch 100% a2 → a1",
            "payments switch 100% p1 → p2",
            "api remove a2"
        ],
        "clients first, and the warm p1 is not removed"
    );
}

/// api runs a4 with a3, a2 and a1 still warm (most recently live first); a5 replaces it.
fn three_warm() -> (BTreeMap<String, String>, BTreeMap<String, ServiceState>) {
    let want = desired(&[("api", "a5")]);
    let mut have = live(&[("api", "a4")]);
    let warm = &mut have.get_mut("api").unwrap().warm;
    warm.extend(["a3", "a2", "a1"].map(String::from));
    (want, have)
}

fn retires(plan: &Plan) -> Vec<(String, bool)> {
    plan.phase(Phase::Cleanup)
        .map(|s| match &s.action {
            Action::Retire { version } => (version.clone(), s.not_before.is_some()),
            other => panic!("cleanup does {other:?}"),
        })
        .collect()
}

#[test]
fn by_default_only_the_revision_just_replaced_stays_warm_and_older_ones_retire_at_the_switch() {
    let (want, have) = three_warm();
    let plan = run(&ticketshop(), &canary(), &want, &have);
    let expected = [("a4", true), ("a3", false), ("a2", false), ("a1", false)];
    assert_eq!(retires(&plan), expected.map(|(v, d)| (v.to_string(), d)));
    let switches: BTreeSet<StepId> = plan.phase(Phase::Switch).map(|s| s.id).collect();
    for step in plan.phase(Phase::Cleanup) {
        assert!(step.needs().any(|a| switches.contains(&a)), "{step:?}");
    }
}

#[test]
fn keep_warm_versions_keeps_that_many_of_the_most_recent() {
    let (want, have) = three_warm();
    let policy = RolloutPolicy {
        keep_warm_versions: 2,
        ..canary()
    };
    let plan = run(&ticketshop(), &policy, &want, &have);
    let expected = [("a4", true), ("a2", false), ("a1", false)];
    assert_eq!(retires(&plan), expected.map(|(v, d)| (v.to_string(), d)));

    let none = RolloutPolicy {
        keep_warm_versions: 0,
        ..canary()
    };
    let plan = run(&ticketshop(), &none, &want, &have);
    assert!(retires(&plan).iter().all(|(_, deferred)| !deferred));
    assert_eq!(retires(&plan).len(), 4);
}

#[test]
fn older_warm_revisions_retire_clients_first() {
    let g = ticketshop();
    let want = desired(&[("payments", "p3"), ("api", "a3")]);
    let mut have = live(&[("payments", "p2"), ("api", "a2")]);
    have.get_mut("payments").unwrap().warm.push("p1".into());
    have.get_mut("api").unwrap().warm.push("a1".into());
    let plan = run(&g, &canary(), &want, &have);
    let p1 = plan
        .phase(Phase::Cleanup)
        .find(|s| matches!(&s.action, Action::Retire { version } if version == "p1"))
        .unwrap();
    let a1 = plan
        .phase(Phase::Cleanup)
        .find(|s| matches!(&s.action, Action::Retire { version } if version == "a1"))
        .unwrap();
    assert!(p1.needs_step(a1.id), "{p1:?}");
}

#[test]
fn older_warm_revisions_retire_at_once_even_when_a_client_keeps_its_old_one_warm() {
    let g = ticketshop();
    let want = desired(&[("api", "a3"), ("web", "w2")]);
    let mut have = live(&[("api", "a2"), ("web", "w1")]);
    have.get_mut("api").unwrap().warm.push("a1".into());
    let plan = run(&g, &canary(), &want, &have);
    let a1 = plan
        .phase(Phase::Cleanup)
        .find(|s| matches!(&s.action, Action::Retire { version } if version == "a1"))
        .unwrap();
    let deferred: BTreeSet<StepId> = plan
        .phase(Phase::Cleanup)
        .filter(|s| s.not_before.is_some())
        .map(|s| s.id)
        .collect();
    assert!(a1.not_before.is_none());
    assert!(a1.needs().all(|a| !deferred.contains(&a)), "{a1:?}");
}

fn four_layers() -> (
    ServiceGraph,
    BTreeMap<String, String>,
    BTreeMap<String, ServiceState>,
) {
    let g = graph(&[
        ("db", &[]),
        ("auth", &["db"]),
        ("api", &["auth"]),
        ("web", &["api"]),
    ]);
    let want = desired(&[("db", "d2"), ("auth", "u2"), ("api", "a2"), ("web", "w2")]);
    let have = live(&[("db", "d1"), ("auth", "u1"), ("api", "a1"), ("web", "w1")]);
    (g, want, have)
}

#[test]
fn ordered_provisioning_starts_each_new_revision_after_its_providers() {
    let (g, want, have) = four_layers();
    let policy = RolloutPolicy {
        provision: Provision::Ordered,
        ..RolloutPolicy::default()
    };
    let plan = run(&g, &policy, &want, &have);
    let provisions: Vec<&Step> = plan.phase(Phase::Provision).collect();
    let services: Vec<&str> = provisions.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["db", "auth", "api", "web"]);
    assert!(provisions[0].needs().next().is_none());
    for pair in provisions.windows(2) {
        assert!(pair[1].needs_step(pair[0].id), "{:?}", pair[1]);
    }
}

#[test]
fn parallel_provisioning_starts_every_new_revision_at_once_and_switches_in_order() {
    let (g, want, have) = four_layers();
    let policy = RolloutPolicy::default();
    assert_eq!(policy.provision, Provision::Parallel, "the default");
    let plan = run(&g, &policy, &want, &have);
    let provisions: Vec<StepId> = plan.phase(Phase::Provision).map(|s| s.id).collect();
    assert_eq!(provisions.len(), 4);
    assert!(
        plan.phase(Phase::Provision)
            .all(|s| s.needs().next().is_none())
    );
    // Switches still wait for every provision, and each for its provider's switch.
    let switches: Vec<&Step> = plan.phase(Phase::Switch).collect();
    let services: Vec<&str> = switches.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(services, ["db", "auth", "api", "web"]);
    assert_eq!(switches[0].needs().collect::<Vec<_>>(), provisions);
    for pair in switches.windows(2) {
        assert!(pair[1].needs_step(pair[0].id), "{:?}", pair[1]);
    }
}

#[test]
fn the_provision_setting_reads_ordered_or_parallel_and_nothing_else() {
    let read = |text: &str| yaml_serde::from_str::<RolloutPolicy>(text);
    assert_eq!(
        read("provision: ordered").unwrap().provision,
        Provision::Ordered
    );
    assert_eq!(
        read("provision: parallel").unwrap().provision,
        Provision::Parallel
    );
    assert!(read("provision: eager").is_err());
}
