//! The executor: walks a plan concurrently, gates on health, journals every step, aborts into a rollback.
