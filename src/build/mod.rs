//! Building immutable artifacts from git: refs, per-service trees, clean export, recipes, reproducible tarballs.
