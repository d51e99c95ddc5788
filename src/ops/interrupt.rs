//! Ctrl-C during a run: the first one aborts and rolls back what was switched; the second stops
//! at once, leaving the journal for `convoy deploy --resume` or `convoy rollback`.

use std::sync::Arc;

use tokio::sync::watch;

use crate::execute::{Abort, Event, Reporter};

pub struct Interrupt {
    abort: Abort,
    stop: watch::Receiver<bool>,
}

impl Interrupt {
    /// Listens for Ctrl-C from now on (inside a tokio runtime).
    pub fn on_ctrl_c(reporter: Arc<dyn Reporter>) -> Interrupt {
        let (raise, abort) = Abort::new();
        let (stop_now, stop) = watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let message =
                "interrupted: rolling back (Ctrl-C again stops at once and leaves the journal)";
            reporter.report(&Event::Note {
                message: message.to_string(),
            });
            let _ = raise.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = stop_now.send(true);
            }
        });
        Interrupt { abort, stop }
    }

    /// Raised by the first Ctrl-C.
    pub fn abort(&self) -> Abort {
        self.abort.clone()
    }

    /// Returns once a second Ctrl-C asks to stop at once.
    pub async fn stopped(&self) {
        let mut stop = self.stop.clone();
        if stop.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
