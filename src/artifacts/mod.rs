//! Artifact stores: where built artifacts and their `meta.json` live (local directory or S3).
