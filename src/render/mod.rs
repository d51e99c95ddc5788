//! Rendering per-environment manifests with tera, typed validation and lints. No I/O of its own.
