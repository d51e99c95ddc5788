//! At most [`IN_FLIGHT`] requests of a client in flight at once, a request counting until its
//! answer is read to the end (dropped): a tower layer in front of the client's HTTP stack.
//!
//! kube's client speaks HTTP/1.1, one request per connection at a time, so every request in
//! flight is a connection of its own — with its buffers here and a TLS session on the server. A
//! release of a thousand services that sent every request the moment it could (the QPS limit
//! allowing) held a thousand connections open and parsed a thousand answers at once: most of its
//! peak memory. Bounded, the same work goes through a few dozen reused connections. Watches do
//! not count: each is one long request the release keeps open, and holding a slot for it would
//! let a few watches starve the rest.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight at once, per client. Far above what the QPS limit lets through at the
/// latency of a real API server (a write takes milliseconds), so it bounds connections without
/// slowing a release.
pub const IN_FLIGHT: usize = 32;

/// The layer: one count shared by every request of the client.
#[derive(Clone)]
pub struct InFlightLayer {
    slots: Arc<Semaphore>,
}

impl InFlightLayer {
    pub fn new(limit: usize) -> Self {
        InFlightLayer {
            slots: Arc::new(Semaphore::new(limit)),
        }
    }
}

impl<S> tower::Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> InFlight<S> {
        InFlight {
            inner,
            slots: self.slots.clone(),
            waiting: None,
            slot: None,
        }
    }
}

type Wait = Pin<Box<dyn Future<Output = OwnedSemaphorePermit> + Send>>;

/// Ready once a slot is free (and the inner service is ready); the slot travels with the answer.
pub struct InFlight<S> {
    inner: S,
    slots: Arc<Semaphore>,
    waiting: Option<Wait>,
    /// The slot taken for the next `call`.
    slot: Option<OwnedSemaphorePermit>,
}

impl<S, B, ReqBody> tower::Service<Request<ReqBody>> for InFlight<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<Counted<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.slot.is_none() {
            let slots = self.slots.clone();
            let waiting = self.waiting.get_or_insert_with(|| {
                // The semaphore is never closed.
                Box::pin(async move { slots.acquire_owned().await.expect("open semaphore") })
            });
            match waiting.as_mut().poll(cx) {
                Poll::Ready(slot) => {
                    self.waiting = None;
                    self.slot = Some(slot);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let slot = self.slot.take();
        let slot = slot.filter(|_| !is_watch(&request));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| Counted { body, _slot: slot }))
        })
    }
}

/// A watch: `watch=true` (or `1`) in the query, as kube sends it.
fn is_watch<B>(request: &Request<B>) -> bool {
    let query = request.uri().query().unwrap_or_default();
    query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1")
}

pin_project_lite::pin_project! {
    /// An answer's body, holding its request's slot until it is dropped.
    pub struct Counted<B> {
        #[pin]
        body: B,
        _slot: Option<OwnedSemaphorePermit>,
    }
}

impl<B: http_body::Body> http_body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    /// Answers every request at once with an empty body.
    #[derive(Clone)]
    struct Answer;

    impl Service<Request<()>> for Answer {
        type Response = Response<http_body_util::Empty<bytes::Bytes>>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(http_body_util::Empty::new())))
        }
    }

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[tokio::test]
    async fn a_request_holds_its_slot_until_its_answer_is_dropped_and_watches_hold_none() {
        let mut service = InFlightLayer::new(2).layer(Answer);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let first = service
            .ready()
            .await
            .unwrap()
            .call(get("/a"))
            .await
            .unwrap();
        let watch = service
            .ready()
            .await
            .unwrap()
            .call(get(
                "/api/v1/pods?labelSelector=x&watch=true&resourceVersion=1",
            ))
            .await
            .unwrap();
        let second = service
            .ready()
            .await
            .unwrap()
            .call(get("/b"))
            .await
            .unwrap();
        // Two answers unread: no third request goes out, whatever the watch.
        assert!(service.poll_ready(&mut cx).is_pending());
        drop(watch);
        assert!(service.poll_ready(&mut cx).is_pending());
        drop(first);
        assert!(service.poll_ready(&mut cx).is_ready());
        drop(second);
    }
}
