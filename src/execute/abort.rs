//! The signal that stops a deploy from starting steps and takes it into a rollback (Ctrl-C).

use tokio::sync::watch;

/// Ctrl-C, or any other reason to stop starting steps and roll back.
#[derive(Clone)]
pub struct Abort(watch::Receiver<bool>);

impl Abort {
    /// An abort signal and the switch that raises it.
    pub fn new() -> (watch::Sender<bool>, Abort) {
        let (sender, receiver) = watch::channel(false);
        (sender, Abort(receiver))
    }

    /// Whether the signal was already raised (e.g. Ctrl-C while building, before the run).
    pub fn is_raised(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver of its own, for one walk to wait on.
    pub(super) fn receiver(&self) -> watch::Receiver<bool> {
        self.0.clone()
    }

    pub fn never() -> Abort {
        let (sender, abort) = Abort::new();
        std::mem::forget(sender); // keeps the channel open forever: `changed()` never fires
        abort
    }
}
