//! The executor: walks a plan concurrently, gates on health, journals every step into the release
//! record before moving on, and aborts into a rollback plan. Targets, release stores, locks, the
//! clock and the reporter are traits, so all of it runs against in-memory fakes in tests.

mod abort;
mod clock;
mod executor;
pub mod flags;
pub mod lease_store;
pub mod lock;
mod maintenance;
mod pinned_releases;
mod release;
mod reporter;
mod returning_to;
mod session;
mod target;
mod walk_state;

pub use abort::Abort;
pub use clock::{Clock, SystemClock, TokioClock};
pub use executor::{Executor, Failure, StepFailure};
pub use flags::{FlagAuthor, FlagChange, FlagEdit, FlagError, FlagSet, FlagStore};
pub use lease_store::{LeaseStore, Slot};
pub use lock::{EnvLock, Holder, Lease, LockError};
pub use pinned_releases::PinnedReleases;
#[cfg(test)]
pub(crate) use release::record_with_steps;
pub use release::{
    JournalEntry, Newest, Outcome, ReleaseError, ReleaseKind, ReleaseRecord, ReleaseStore,
    StepEvent,
};
pub use reporter::{Event, RecordingReporter, Reporter};
pub use returning_to::{returning_to, rollback_target};
pub use session::{Finished, LEASE_TTL, Request, Session, SessionError, recorded};
pub use target::{Target, TargetError};
