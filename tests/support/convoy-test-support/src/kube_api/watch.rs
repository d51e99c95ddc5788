//! Watch streams: newline-delimited `{"type": ..., "object": ...}` events from the store's change
//! history, filtered by namespace and selectors, with bookmarks, `timeoutSeconds`, and an ERROR
//! event carrying a 410 `Expired` Status when the requested version has left the history (so
//! kube-runtime's watcher re-lists).

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::Shared;
use super::call::Call;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Change, EventType, Store, meta_str};

/// How often a watch that allows bookmarks gets one (the real server: about a minute).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);
/// The stream length when the client gives no `timeoutSeconds` (the real server: 30–60 min).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta_str(obj, "namespace") == ns)
            && self.labels.matches(obj)
            && self.fields.matches(obj)
    }

    /// The event a change becomes for this watch, if any.
    fn event(&self, change: &Change) -> Option<(&'static str, Value)> {
        let now = self.matches(&change.object);
        let before = change.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match (change.kind, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Deleted, _, true) => EventType::Deleted,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            _ => return None,
        };
        Some((kind.as_str(), change.object.clone()))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Starts a watch; the returned receiver yields the stream's lines.
pub fn start(
    shared: &Arc<Shared>,
    call: Call,
    limit: Option<usize>,
) -> Result<mpsc::Receiver<Bytes>, ApiError> {
    let filter = Filter {
        namespace: call.namespace.clone(),
        labels: call.labels()?,
        fields: call.fields()?,
    };
    let from = match call.param("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
        ),
    };
    let timeout = call
        .param("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let (tx, rx) = mpsc::channel(256);
    let stream = Stream {
        shared: Arc::downgrade(shared),
        call,
        filter,
        tx,
        limit,
        sent: 0,
    };
    tokio::spawn(stream.run(from, Instant::now() + timeout));
    Ok(rx)
}

struct Stream {
    shared: Weak<Shared>,
    call: Call,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    limit: Option<usize>,
    sent: usize,
}

impl Stream {
    fn bookmark(&self, rv: u64) -> Value {
        json!({
            "kind": self.call.res.kind,
            "apiVersion": self.call.res.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
        })
    }

    /// Sends one event; false once the stream should end.
    async fn send(&mut self, kind: &str, object: &Value) -> bool {
        if self.limit.is_some_and(|l| self.sent >= l) {
            return false;
        }
        self.sent += 1;
        self.tx.send(line(kind, object)).await.is_ok() && self.limit.is_none_or(|l| self.sent < l)
    }

    /// Events since `from` (or the current objects as ADDED). A stream `going` has sent every
    /// change of its kind up to `from`, so only a forgotten change of its kind ends it; a new
    /// watch from a version the history no longer reaches gets 410 Gone.
    fn collect(
        &self,
        store: &Store,
        from: Option<u64>,
        going: bool,
    ) -> Result<Vec<(&'static str, Value)>, u64> {
        let res = self.call.res;
        match from {
            Some(rv) if going => Ok(store
                .resource_changes_since(rv, res)?
                .filter_map(|c| self.filter.event(c))
                .collect()),
            None => Ok(store
                .list_where(res, self.filter.namespace.as_deref(), |o| {
                    self.filter.matches(o)
                })
                .into_iter()
                .map(|o| ("ADDED", o))
                .collect()),
            Some(rv) => Ok(store
                .history_since(rv)?
                .filter(|c| std::ptr::eq(c.resource, res))
                .filter_map(|c| self.filter.event(c))
                .collect()),
        }
    }

    async fn run(mut self, from: Option<u64>, deadline: Instant) {
        if self.limit == Some(0) {
            return;
        }
        let Some((mut changes, mut cursor, first)) = self.snapshot(from, false) else {
            return;
        };
        if !self.deliver(first, from.unwrap_or(0)).await {
            return;
        }
        // Streaming lists: the initial objects end with a bookmark that says so.
        if from.is_none() && self.call.flag("sendInitialEvents") {
            let mut mark = self.bookmark(cursor);
            mark["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            if self.tx.send(line("BOOKMARK", &mark)).await.is_err() {
                return;
            }
        }
        let bookmarks = self.call.flag("allowWatchBookmarks");
        let mut next_bookmark = Instant::now() + BOOKMARK_INTERVAL;
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let Some((_, reached, batch)) = self.snapshot(Some(cursor), true) else {
                        return;
                    };
                    if !self.deliver(batch, cursor).await {
                        return;
                    }
                    cursor = reached;
                }
                _ = sleep_until(next_bookmark), if bookmarks => {
                    // This stream wakes only for changes of its kind: catch up to the current
                    // version (sending what is pending first) so the bookmark carries it.
                    let Some((_, reached, batch)) = self.snapshot(Some(cursor), true) else {
                        return;
                    };
                    if !self.deliver(batch, cursor).await {
                        return;
                    }
                    cursor = reached;
                    let mark = self.bookmark(cursor);
                    if self.tx.send(line("BOOKMARK", &mark)).await.is_err() {
                        return;
                    }
                    next_bookmark += BOOKMARK_INTERVAL;
                }
                _ = sleep_until(deadline) => return,
                _ = self.tx.closed() => return,
            }
        }
    }

    #[allow(clippy::type_complexity)] // a one-off tuple read under the store lock
    fn snapshot(
        &self,
        from: Option<u64>,
        going: bool,
    ) -> Option<(
        tokio::sync::watch::Receiver<u64>,
        u64,
        Result<Vec<(&'static str, Value)>, u64>,
    )> {
        let shared = self.shared.upgrade()?;
        let store = super::lock(&shared.store);
        Some((
            store.subscribe_to(self.call.res),
            store.resource_version(),
            self.collect(&store, from, going),
        ))
    }

    /// Sends a batch, or the 410 ERROR event when the history no longer reaches `from`.
    async fn deliver(&mut self, batch: Result<Vec<(&'static str, Value)>, u64>, from: u64) -> bool {
        match batch {
            Err(oldest) => {
                let status = ApiError::expired(from, oldest).body();
                let _ = self.tx.send(line("ERROR", &status)).await;
                false
            }
            Ok(events) => {
                for (kind, object) in events {
                    if !self.send(kind, &object).await {
                        return false;
                    }
                }
                true
            }
        }
    }
}
