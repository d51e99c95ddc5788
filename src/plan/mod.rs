//! The pure planner: deploy and rollback plans, prewarm schedules. No tokio, kube, aws, fs or clock.
