//! Names that end up inside Kubernetes and AWS object names: DNS-1123 labels, short enough for
//! `<project>-<service>-<version>` and the suffixes Kubernetes adds.

/// Longest service, environment or project name. A version is at most 12 characters and a
/// revision adds `-` + 6 hex of its configuration digest, and `<service>-<revision>` plus a
/// ReplicaSet hash (`-` + 10) and a pod suffix (`-` + 5) must stay within the 63 characters of a
/// label.
pub const MAX_NAME_LEN: usize = 63 - 1 - 12 - 7 - 11 - 6;

/// Why `name` is not usable, if it is not.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "it is {} characters long; the limit is {MAX_NAME_LEN} so that versioned object names fit in 63",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!("`{bad}` is not allowed"));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Some("it must start with a lowercase letter".to_string());
    }
    if name.ends_with('-') {
        return Some("it must not end with `-`".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        assert_eq!(problem("payments"), None);
        assert_eq!(problem("web-2"), None);
    }

    #[test]
    fn rejects_what_kubernetes_would() {
        assert!(problem("Payments").unwrap().contains('P'));
        assert!(problem("my_service").unwrap().contains('_'));
        assert!(problem("2fast").unwrap().contains("start"));
        assert!(problem("web-").unwrap().contains("end"));
        assert!(
            problem(&"a".repeat(MAX_NAME_LEN + 1))
                .unwrap()
                .contains("limit")
        );
        assert!(problem("").is_some());
    }
}
