//! How big an artifact may be when it is unpacked: a hostile or broken tarball is refused with a
//! clear error instead of filling the disk, the memory or the inode table of a host.

use serde::{Deserialize, Serialize};

/// Limits on one artifact's unpacked contents; `artifacts.limits` in `convoy.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnpackLimits {
    /// Sum of the sizes of the files in the archive, in bytes.
    pub max_size: u64,
    /// Files, directories and symlinks in the archive.
    pub max_entries: u64,
}

/// 4 GiB: far above any service bundle, far below a full disk.
pub const DEFAULT_MAX_SIZE: u64 = 4 << 30;
/// Large enough for a bundled `node_modules`, small enough to bound the work of one unpack.
pub const DEFAULT_MAX_ENTRIES: u64 = 250_000;
/// Longest entry name or link target accepted (Linux's PATH_MAX).
pub const MAX_NAME_BYTES: u64 = 4096;

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_size: DEFAULT_MAX_SIZE,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}
