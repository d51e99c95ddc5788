//! Reading YAML with positions: typed values come from `yaml_serde`; the line and column of every
//! key, and the rejection of duplicate keys (which the serde_yaml family accepts silently), come
//! from `yaml-rust2`'s marked event parser.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use crate::config::error::ConfigError;
use crate::config::limits::InputLimits;
use crate::diagnostic::{Location, did_you_mean};

/// Where each key path of one document starts (1-based line and column of the key or item).
#[derive(Debug, Clone, Default)]
pub struct Marks {
    positions: HashMap<String, (usize, usize)>,
}

impl Marks {
    /// The location of `key`, or of its nearest ancestor that has one, in `file`.
    pub fn locate(&self, file: &Path, key: &str) -> Location {
        let mut probe = key;
        loop {
            if let Some(&(line, column)) = self.positions.get(probe) {
                return Location::new(file, line, column, key);
            }
            match parent_key(probe) {
                Some(parent) => probe = parent,
                None => return Location::new(file, 1, 1, key),
            }
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.positions.contains_key(key)
    }
}

fn parent_key(key: &str) -> Option<&str> {
    if key.is_empty() {
        return None;
    }
    let cut = key.rfind(['.', '[']).unwrap_or(0);
    Some(&key[..cut])
}

/// Joins a key path and a map key, quoting keys that contain a dot.
pub fn child_key(parent: &str, key: &str) -> String {
    let key = if key.contains('.') {
        format!("\"{key}\"")
    } else {
        key.to_string()
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// A parsed document: its text, its key positions and the file it came from.
#[derive(Debug, Clone)]
pub struct Document {
    pub file: std::path::PathBuf,
    pub text: String,
    pub marks: Marks,
}

impl Document {
    /// Parses `text` for positions, rejecting malformed YAML and duplicate keys, with the
    /// default [`InputLimits`].
    pub fn parse(file: &Path, text: String) -> Result<Self, ConfigError> {
        Self::parse_with(file, text, &InputLimits::default())
    }

    /// [`Document::parse`], refusing a text over `limits` before and while parsing it.
    pub fn parse_with(
        file: &Path,
        text: String,
        limits: &InputLimits,
    ) -> Result<Self, ConfigError> {
        let size = text.len() as u64;
        if size > limits.max_file_size.0 {
            return Err(ConfigError::TooLarge {
                location: Location::new(file, 1, 1, ""),
                size,
                limit: limits.max_file_size.0,
            });
        }
        let mut receiver = MarkReceiver {
            max_depth: limits.max_depth,
            ..MarkReceiver::default()
        };
        let mut parser = Parser::new_from_str(&text);
        let loaded = parser.load(&mut receiver, false);
        // Before the parser's own error: past its recursion limit it says only "recursion
        // limit exceeded", where ours names the setting.
        if let Some((line, column)) = receiver.too_deep {
            return Err(ConfigError::TooDeep {
                location: Location::new(file, line, column, ""),
                limit: limits.max_depth,
            });
        }
        loaded.map_err(|error| ConfigError::Syntax {
            location: Location::new(file, error.marker().line(), error.marker().col() + 1, ""),
            message: error.info().to_string(),
        })?;
        if let Some((key, first, second)) = receiver.duplicate {
            return Err(ConfigError::DuplicateKey {
                location: Location::new(file, second.0, second.1, key),
                first_line: first.0,
            });
        }
        Ok(Document {
            file: file.to_path_buf(),
            text,
            marks: Marks {
                positions: receiver.positions,
            },
        })
    }

    pub fn locate(&self, key: &str) -> Location {
        self.marks.locate(&self.file, key)
    }

    /// Deserializes the whole document into `T`, turning serde's message into a located error
    /// with a "did you mean" for unknown keys and variants.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let text = if self.text.trim().is_empty() {
            "{}"
        } else {
            &self.text
        };
        yaml_serde::from_str(text).map_err(|error| self.schema_error(&error))
    }

    fn schema_error(&self, error: &yaml_serde::Error) -> ConfigError {
        let full = error.to_string();
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        // yaml_serde writes "path: message at line L column C"; keep the path and message apart.
        let without_mark = full
            .rsplit_once(" at line ")
            .map(|(head, _)| head)
            .unwrap_or(&full);
        let (key, message) = match without_mark.split_once(": ") {
            Some((key, message)) if !key.contains(' ') && !key.is_empty() => (key, message),
            _ => ("", without_mark),
        };
        ConfigError::Schema {
            location: Location::new(&self.file, line, column, key),
            message: message.to_string(),
            suggestion: suggestion_for(message),
        }
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and variants), the closest name.
fn suggestion_for(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (word, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    did_you_mean(word, expected.iter().copied()).map(str::to_string)
}

/// Deserializes one value that was carried through untyped (e.g. an environment's inline values).
pub fn parse_str<T: DeserializeOwned>(
    file: &Path,
    text: String,
) -> Result<(T, Document), ConfigError> {
    let document = Document::parse(file, text)?;
    let value = document.typed()?;
    Ok((value, document))
}

/// 1-based line and column.
type Position = (usize, usize);

enum Frame {
    Map {
        path: String,
        pending_key: Option<String>,
        seen: HashMap<String, Position>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct MarkReceiver {
    stack: Vec<Frame>,
    positions: HashMap<String, (usize, usize)>,
    /// The first duplicate key: its path, where it was first set, where it was set again.
    duplicate: Option<(String, Position, Position)>,
    max_depth: usize,
    /// Where nesting first went deeper than `max_depth`; every event after it is ignored, so
    /// a hostile document costs no more memory than the limit allows.
    too_deep: Option<Position>,
}

impl MarkReceiver {
    /// Called for every node; returns the key path of the node if it is a value (not a map key).
    fn node(&mut self, event: &Event, mark: Marker) -> Option<String> {
        let position = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let key = format!("{path}[{next}]");
                *next += 1;
                self.positions.insert(key.clone(), position);
                Some(key)
            }
            Some(Frame::Map {
                path,
                pending_key,
                seen,
            }) => match pending_key.take() {
                Some(key) => Some(child_key(path, &key)),
                None => {
                    let name = match event {
                        Event::Scalar(value, ..) => value.clone(),
                        _ => "?".to_string(),
                    };
                    let key = child_key(path, &name);
                    if let Some(first) = seen.insert(name.clone(), position) {
                        self.duplicate.get_or_insert((key.clone(), first, position));
                    }
                    self.positions.insert(key, position);
                    *pending_key = Some(name);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for MarkReceiver {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.too_deep.is_some() {
            return;
        }
        if matches!(event, Event::MappingStart(..) | Event::SequenceStart(..))
            && self.stack.len() >= self.max_depth
        {
            self.too_deep = Some((mark.line(), mark.col() + 1));
            return;
        }
        match event {
            Event::Scalar(..) | Event::Alias(..) => {
                self.node(&event, mark);
            }
            Event::MappingStart(..) => {
                // A mapping used as a key is legal YAML but never meaningful in Convoy's files.
                let path = self.node(&event, mark).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                    seen: HashMap::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.node(&event, mark).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Document, ConfigError> {
        Document::parse(Path::new("f.yaml"), text.to_string())
    }

    #[test]
    fn records_key_positions_for_nested_maps_and_lists() {
        let doc = parse("a:\n  b: 1\n  c:\n    - x\n    - y\n").unwrap();
        assert_eq!(doc.locate("a.b").line, 2);
        assert_eq!(doc.locate("a.b").column, 3);
        assert_eq!(doc.locate("a.c[1]").line, 5);
        // Unknown keys fall back to their nearest known ancestor.
        assert_eq!(doc.locate("a.c[1].z").line, 5);
    }

    #[test]
    fn rejects_duplicate_keys_naming_both_lines() {
        let error = parse("services:\n  api: {}\n  web: {}\n  api: {}\n").unwrap_err();
        match error {
            ConfigError::DuplicateKey {
                location,
                first_line,
            } => {
                assert_eq!(location.key, "services.api");
                assert_eq!(location.line, 4);
                assert_eq!(first_line, 2);
            }
            other => panic!("expected a duplicate key error, got {other:?}"),
        }
    }

    #[test]
    fn same_key_in_different_maps_is_not_a_duplicate() {
        assert!(parse("a: {x: 1}\nb: {x: 2}\n").is_ok());
    }

    #[test]
    fn malformed_yaml_reports_its_line() {
        let error = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
    }

    #[test]
    fn suggests_the_intended_field_name() {
        let message = "unknown field `dependson`, expected one of `path`, `depends_on`, `port`";
        assert_eq!(suggestion_for(message).as_deref(), Some("depends_on"));
        assert_eq!(suggestion_for("invalid type: string"), None);
    }
}
