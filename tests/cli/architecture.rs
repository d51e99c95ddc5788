//! Rules about the code's shape that the compiler cannot enforce.

use std::path::Path;

/// The planner is pure: plans are data computed from inputs and `now`. If `src/plan/` reaches for
/// the runtime, a cloud SDK, the file system or the clock, this fails.
#[test]
fn plan_module_stays_pure() {
    let forbidden = [
        "tokio",
        "kube",
        "aws_",
        "k8s_openapi",
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "SystemTime",
        "Instant",
        "Utc::now",
        "Zoned::now",
        "Timestamp::now",
        "git2",
        "reqwest",
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/plan");
    let mut offences = Vec::new();
    for path in rust_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in forbidden {
                if code.contains(word) {
                    offences.push(format!("{}:{}: uses `{word}`", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "src/plan must stay pure:\n{}",
        offences.join("\n")
    );
}

fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
