//! The fault rules and request log of the test API server in front of another cluster (a real
//! one): a `kube::Client` whose requests go through [`Fault`] rules before they reach the
//! cluster, so tests of faults a real server cannot be made to show (429/5xx, a forbidden watch,
//! dropped watches, 410 Expired) still run against its real semantics.
//!
//! ```ignore
//! let proxy = FaultProxy::new(real_client);
//! let client = proxy.client("my-namespace");          // for Convoy's target
//! proxy.fault(Fault::status(503).verb("apply").resource("deployments").times(2));
//! assert_eq!(proxy.requests().iter().filter(|r| r.status == 503).count(), 2);
//! ```

use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;

use super::{Fault, Request, faults, lock, router};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// Fault rules and a request log in front of `upstream`; clones share them.
#[derive(Clone)]
pub struct FaultProxy {
    upstream: kube::Client,
    faults: Arc<Mutex<Vec<Fault>>>,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FaultProxy {
    pub fn new(upstream: kube::Client) -> Self {
        FaultProxy {
            upstream,
            faults: Arc::default(),
            log: Arc::default(),
        }
    }

    /// A client whose requests go through the rules (default namespace `namespace`).
    pub fn client(&self, namespace: &str) -> kube::Client {
        let proxy = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let proxy = proxy.clone();
            async move { proxy.handle(request).await }
        });
        kube::Client::new(service, namespace)
    }

    /// Adds a fault rule; rules apply in the order added.
    pub fn fault(&self, rule: Fault) {
        lock(&self.faults).push(rule);
    }

    /// Every request to a known kind so far, faulted ones included.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.log).clone()
    }

    async fn handle(
        &self,
        request: http::Request<kube::client::Body>,
    ) -> Result<http::Response<ProxyBody>, kube::Error> {
        let (parts, body) = request.into_parts();
        let Some(mut logged) = router::logged(&parts) else {
            return self.forward(parts, body, None).await;
        };
        let outcome = {
            let mut rules = lock(&self.faults);
            faults::check(
                &mut rules,
                &logged.verb,
                &logged.resource,
                logged.name.as_deref(),
            )
        };
        if !outcome.delay.is_zero() {
            tokio::time::sleep(outcome.delay).await;
        }
        let watch = logged.verb == "watch";
        let response = match (outcome.fail, outcome.drop_watch_after) {
            (Some(error), _) => boxed(router::error_response(&error)),
            (None, _) if outcome.expired && watch => boxed(router::expired_response()),
            // The server ends the stream before its first event.
            (None, Some(0)) if watch => {
                http::Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync())
            }
            (None, limit) => self.forward(parts, body, limit.filter(|_| watch)).await?,
        };
        logged.status = response.status().as_u16();
        logged.answered = std::time::Instant::now();
        lock(&self.log).push(logged);
        Ok(response)
    }

    /// Sends the request to the cluster; a watch's stream ends after `events` lines if given.
    async fn forward(
        &self,
        parts: http::request::Parts,
        body: kube::client::Body,
        events: Option<usize>,
    ) -> Result<http::Response<ProxyBody>, kube::Error> {
        let response = self
            .upstream
            .send(http::Request::from_parts(parts, body))
            .await?;
        let response = response.map(|b| b.map_err(BoxError::from).boxed_unsync());
        Ok(match events {
            Some(n) => response.map(|b| first_lines(b, n)),
            None => response,
        })
    }
}

fn boxed(response: http::Response<router::Body>) -> http::Response<ProxyBody> {
    response.map(|b| b.map_err(|never| match never {}).boxed_unsync())
}

/// The body up to and including its `n`th newline: a watch stream cut after `n` events.
fn first_lines(body: ProxyBody, n: usize) -> ProxyBody {
    let frames = futures::stream::unfold(Some((body, n)), |state| async move {
        let (mut body, left) = state?;
        if left == 0 {
            return None;
        }
        let data = match body.frame().await? {
            Ok(frame) => frame.into_data(),
            Err(error) => return Some((Err(error), None)),
        };
        // Trailers: nothing to count.
        let Ok(mut data) = data else {
            return Some((Ok(Frame::data(Bytes::new())), Some((body, left))));
        };
        let mut seen = 0;
        let mut cut = data.len();
        for (i, byte) in data.iter().enumerate() {
            if *byte == b'\n' {
                seen += 1;
                if seen == left {
                    cut = i + 1;
                    break;
                }
            }
        }
        let chunk = data.copy_to_bytes(cut);
        let left = left.saturating_sub(seen);
        Some((Ok::<_, BoxError>(Frame::data(chunk)), Some((body, left))))
    });
    StreamBody::new(frames).boxed_unsync()
}
