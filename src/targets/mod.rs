//! Targets, one per kind of place versions run: `host`, `kubernetes`, `aws`.
