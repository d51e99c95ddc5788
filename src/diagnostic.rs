//! What every user-facing error can say besides its message: where, and what to do next.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a file: 1-based line and column, and the key path inside the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path such as `services.api.depends_on[0]`; empty for the document itself.
    pub key: String,
}

impl Location {
    pub fn new(file: &Path, line: usize, column: usize, key: impl Into<String>) -> Self {
        Location {
            file: file.to_path_buf(),
            line,
            column,
            key: key.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, " ({})", self.key)?;
        }
        Ok(())
    }
}

/// Implemented by module error types so the edge can print a headline, a location and a `help:`.
pub trait Diagnose: std::error::Error {
    fn location(&self) -> Option<&Location> {
        None
    }
    fn help(&self) -> Option<String> {
        None
    }
}

/// The closest candidate to `word`, if one is close enough to be a plausible typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    candidates
        .into_iter()
        .map(|candidate| (strsim::jaro_winkler(word, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// An error and its sources on one line: `outer: inner: root`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_plausible_name() {
        let names = ["path", "build", "output", "depends_on", "port"];
        assert_eq!(did_you_mean("dependson", names), Some("depends_on"));
        assert_eq!(did_you_mean("buld", names), Some("build"));
        assert_eq!(did_you_mean("zzzz", names), None);
    }

    #[test]
    fn location_prints_file_line_column_and_key() {
        let location = Location::new(Path::new("convoy.yaml"), 3, 7, "services.api");
        assert_eq!(location.to_string(), "convoy.yaml:3:7 (services.api)");
    }
}
