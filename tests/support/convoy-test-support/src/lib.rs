//! Convoy's test support: the harnesses its tests and benches share, kept out of the product (the
//! pattern of cargo's `cargo-test-support`). A dev-dependency of `convoy`, never a dependency.
//!
//! | module       | what it is                                                                 |
//! |--------------|----------------------------------------------------------------------------|
//! | [`kube_api`] | the in-process test Kubernetes API server (TESTING.md), with its own tests  |
//! | [`cluster`]  | a cluster for a test: that server, or a real one named by `CONVOY_TEST_KUBECONFIG` |

pub mod cluster;
pub mod kube_api;
