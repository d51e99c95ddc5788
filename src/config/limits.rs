//! Bounds on configuration input: a file too large or nested too deeply is refused with an
//! error naming the file and the limit, before it can cost unbounded time or memory.
//!
//! The project file itself is read up to [`PROJECT_MAX_BYTES`] and parsed with the default
//! depth (its own `limits:` cannot apply before it is read); values files obey `limits:`.

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::byte_size::ByteSize;

/// Largest project file read at all.
pub const PROJECT_MAX_BYTES: u64 = 4 << 20;
/// Default largest values file.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 20;
/// Default deepest nesting of maps and lists in one file.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// `limits:` in `convoy.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputLimits {
    /// Largest values file (`values/*.yaml`), in bytes (`1048576`, or `"1MiB"`).
    pub max_file_size: ByteSize,
    /// Deepest nesting of maps and lists in a project or values file.
    pub max_depth: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_file_size: ByteSize(DEFAULT_MAX_FILE_SIZE),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl InputLimits {
    /// The limits the project file is parsed with.
    pub fn project_file() -> Self {
        InputLimits {
            max_file_size: ByteSize(PROJECT_MAX_BYTES),
            ..InputLimits::default()
        }
    }
}

/// Reads `path` as text, at most [`PROJECT_MAX_BYTES`] + 1 bytes of it: enough to tell that a
/// file is over any limit Convoy applies without reading all of a huge one.
pub fn read_bounded(path: &Path) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(PROJECT_MAX_BYTES.max(DEFAULT_MAX_FILE_SIZE) + 1)
        .read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|error| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (byte {})",
                error.utf8_error().valid_up_to()
            ),
        )
    })
}
