//! Targets, one per kind of place versions run: `host` (directories and a `live` symlink),
//! `kubernetes`, `aws`. Each implements the executor's traits in its own module.

pub mod host;
