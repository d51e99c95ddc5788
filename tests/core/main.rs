//! The core (executor, session) driven through its public API against the in-memory fakes of
//! `convoy_test_support::memory`: the fakes link convoy's library, so these tests live outside it.

mod executor;
mod session;
