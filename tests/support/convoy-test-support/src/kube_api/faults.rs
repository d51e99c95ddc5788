//! Faults on demand: rules matched on verb, resource and name that fail a request with a status
//! code (and the matching `Status` body), delay it, cut a watch stream short or expire it. The
//! in-process server applies them, and so does the [`super::FaultProxy`] in front of a real one.

use std::time::Duration;

use super::status::ApiError;

#[derive(Debug, Clone)]
enum Effect {
    Status(u16, Option<String>),
    Delay(Duration),
    DropWatch(usize),
    Expired,
}

/// A fault rule, built fluently:
///
/// ```ignore
/// server.fault(Fault::status(503).verb("patch").resource("deployments").times(1));
/// server.fault(Fault::too_many_requests().verb("list"));
/// server.fault(Fault::delay(Duration::from_secs(2)).resource("pods"));
/// server.fault(Fault::drop_watch_after(3).resource("deployments"));
/// ```
///
/// Verbs are those of the request log: get, list, watch, create, update, patch, apply, delete.
/// Resources are plurals (`deployments`); a rule on a resource also matches its
/// subresources. Without `times`, a rule applies to every matching request until cleared.
#[derive(Debug, Clone)]
pub struct Fault {
    verb: Option<String>,
    resource: Option<String>,
    name: Option<String>,
    remaining: Option<usize>,
    effect: Effect,
}

impl Fault {
    fn with(effect: Effect) -> Self {
        Fault {
            verb: None,
            resource: None,
            name: None,
            remaining: None,
            effect,
        }
    }

    /// Fails with `code` and a `Status` body carrying the reason the real server uses for it
    /// (500 InternalError, 503 ServiceUnavailable, 409 Conflict, 429 TooManyRequests, ...).
    pub fn status(code: u16) -> Self {
        Self::with(Effect::Status(code, None))
    }

    /// 429 TooManyRequests with `Retry-After: 1`, as the server's priority-and-fairness sends.
    pub fn too_many_requests() -> Self {
        Self::status(429)
    }

    /// 409 Conflict with the optimistic-concurrency message, as after a concurrent write.
    pub fn conflict() -> Self {
        Self::status(409)
    }

    /// Holds the request for `d` (tokio time), then serves it normally.
    pub fn delay(d: Duration) -> Self {
        Self::with(Effect::Delay(d))
    }

    /// Ends a watch stream at once (the client sees a clean end of stream). Watch-dropping
    /// rules match watch requests only.
    pub fn drop_watch() -> Self {
        Self::drop_watch_after(0)
    }

    /// Ends a watch stream after `n` events.
    pub fn drop_watch_after(n: usize) -> Self {
        Self::with(Effect::DropWatch(n))
    }

    /// Answers a watch with one `ERROR` event, `410 Expired`, as a server does when the
    /// requested resourceVersion was compacted away: the client must list again. Matches watch
    /// requests only.
    pub fn expired() -> Self {
        Self::with(Effect::Expired)
    }

    pub fn verb(mut self, verb: &str) -> Self {
        self.verb = Some(verb.to_string());
        self
    }

    pub fn resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_string());
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Applies to the next `n` matching requests only.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Replaces the message of a status fault.
    pub fn message(mut self, message: &str) -> Self {
        if let Effect::Status(code, _) = self.effect {
            self.effect = Effect::Status(code, Some(message.to_string()));
        }
        self
    }

    fn matches(&self, verb: &str, resource: &str, name: Option<&str>) -> bool {
        let watch_only = matches!(self.effect, Effect::DropWatch(_) | Effect::Expired);
        self.remaining != Some(0)
            && (!watch_only || verb == "watch")
            && self.verb.as_deref().is_none_or(|v| v == verb)
            && self.resource.as_deref().is_none_or(|r| r == resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == name)
    }
}

/// What the matching rules do to one request.
#[derive(Debug, Default)]
pub struct Outcome {
    pub delay: Duration,
    pub fail: Option<ApiError>,
    pub drop_watch_after: Option<usize>,
    /// Answer the watch with a `410 Expired` event.
    pub expired: bool,
}

/// Consumes one use of every rule matching the request and combines their effects.
pub fn check(rules: &mut [Fault], verb: &str, resource: &str, name: Option<&str>) -> Outcome {
    let mut outcome = Outcome::default();
    for rule in rules.iter_mut().filter(|r| r.matches(verb, resource, name)) {
        if let Some(n) = &mut rule.remaining {
            *n -= 1;
        }
        match &rule.effect {
            Effect::Status(code, message) => {
                if outcome.fail.is_none() {
                    let mut error = ApiError::from_code(*code, message.clone());
                    if *code == 409 && message.is_none() {
                        error.message = format!(
                            "Operation cannot be fulfilled on {resource} \"{}\": the object has been \
                             modified; please apply your changes to the latest version and try again",
                            name.unwrap_or("")
                        );
                    }
                    outcome.fail = Some(error);
                }
            }
            Effect::Delay(d) => outcome.delay += *d,
            Effect::DropWatch(n) => outcome.drop_watch_after = Some(*n),
            Effect::Expired => outcome.expired = true,
        }
    }
    outcome
}
