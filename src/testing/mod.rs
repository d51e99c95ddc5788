//! Test infrastructure shared by the unit tests (and, by path, the CLI tests): not product.

pub mod moto;
