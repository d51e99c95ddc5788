//! Convoy's test support: the harnesses its tests and benches share, kept out of the product (the
//! pattern of cargo's `cargo-test-support`). A dev-dependency of `convoy`, never a dependency.
//!
//! | module       | what it is                                                                 |
//! |--------------|----------------------------------------------------------------------------|
//! | [`kube_api`] | the in-process test Kubernetes API server (TESTING.md), with its own tests, and its fault rules as a proxy in front of any cluster |
//! | [`cluster`]  | a cluster for a test: a real one named by `CONVOY_TEST_KUBECONFIG` (CI's), or that server |
//! | [`moto`]     | moto's server on a free loopback port, for the AWS SDK                      |
//! | [`memory`]   | in-memory fakes of the executor's traits: target, release store, lock       |
//! | [`cli`]      | the fluent builder that drives the built `convoy` binary, and `convoy_snapshot!` |

use std::path::Path;

pub mod cli;
pub mod cluster;
pub mod kube_api;
pub mod memory;
pub mod moto;

// For `convoy_snapshot!`, which expands in the test that calls it.
pub use insta;

/// The repository's top level (this crate lives in `tests/support/convoy-test-support`).
pub fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(3)
        .expect("the crate lives three levels below the repository's top level")
}
