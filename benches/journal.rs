//! What the rollout benches share: the environment knobs, a git repository to deploy from, and
//! reading a release record's journal (steps, their dependencies, their times).

#![allow(dead_code)] // each bench uses a different part

use std::path::Path;
use std::process::Command;

use jiff::Timestamp;
use serde_json::Value;

pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=B", "-c", "user.email=b@example.com"])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

pub fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
}

pub fn steps(record: &Value) -> &Vec<Value> {
    record["plan"]["steps"].as_array().unwrap()
}

/// The steps `step` comes after: every one below its `after_all_below`, then its `after`.
pub fn after(step: &Value) -> impl Iterator<Item = usize> + '_ {
    let below = step["after_all_below"].as_u64().unwrap_or(0) as usize;
    (0..below).chain(
        step["after"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize),
    )
}

pub fn at(entry: &Value) -> Timestamp {
    entry["at"].as_str().unwrap().parse().unwrap()
}

pub fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().sum::<f64>() / values.len() as f64
}

pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}
