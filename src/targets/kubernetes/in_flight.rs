//! At most [`IN_FLIGHT`] requests of a client in flight at once, a request counting until its
//! answer is read to the end: a tower layer in front of the client's HTTP stack.
//!
//! kube's client speaks HTTP/1.1, one request per connection at a time, so every request in
//! flight is a connection of its own — with its buffers here and a TLS session on the server. A
//! release of a thousand services that sent every request the moment it could (the QPS limit
//! allowing) held a thousand connections open and parsed a thousand answers at once: most of its
//! peak memory. Bounded, the same work goes through a few dozen reused connections.
//!
//! Each request runs on a task of its own that reads the whole answer and then frees its slot:
//! a slot must not wait for its caller to be polled, or a caller that awaits one request while
//! others it started sit unpolled (the executor writing the journal while its steps' requests
//! are out) would wait for slots it holds itself. Watches do not count: each is one long
//! request the release keeps open, its answer streamed as it comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Either, Full};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

/// Ready once a slot is free (and the inner service is ready).
pub struct InFlight<S> {
    inner: S,
    slots: Arc<Semaphore>,
    waiting: Option<Wait>,
    /// The slot taken for the next `call`.
    slot: Option<OwnedSemaphorePermit>,
}

/// An answer: a watch's body as it streams, any other read whole.
pub type Answer<B> = Either<B, Full<Bytes>>;

impl<S, B, ReqBody> tower::Service<Request<ReqBody>> for InFlight<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<Answer<B>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

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
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let slot = self.slot.take();
        let watch = is_watch(&request);
        let answer = self.inner.call(request);
        if watch {
            drop(slot);
            return Box::pin(async move {
                let response = answer.await.map_err(Into::into)?;
                Ok(response.map(Either::Left))
            });
        }
        let read = tokio::spawn(async move {
            let response = answer.await.map_err(Into::into)?;
            let (parts, body) = response.into_parts();
            let read = body.collect().await.map_err(Into::into)?.to_bytes();
            // Copied out: a chunk of an answer shares its connection's whole read buffer (grown to
            // hundreds of KB by list pages), which the answer would keep alive until parsed and
            // the connection would then allocate again.
            let bytes = Bytes::copy_from_slice(&read);
            drop((read, slot));
            Ok(Response::from_parts(parts, Either::Right(Full::new(bytes))))
        });
        Box::pin(async move { read.await.map_err(|e| Box::new(e) as BoxError)? })
    }
}

/// A watch: `watch=true` (or `1`) in the query, as kube sends it.
fn is_watch<B>(request: &Request<B>) -> bool {
    let query = request.uri().query().unwrap_or_default();
    query
        .split('&')
        .any(|pair| pair == "watch=true" || pair == "watch=1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    /// Answers each request with a body that ends only once `true` is sent (an answer still
    /// arriving), or at once for `/done`.
    #[derive(Clone)]
    struct Server(tokio::sync::watch::Receiver<bool>);

    type Slow = http_body_util::StreamBody<
        futures::stream::BoxStream<'static, Result<http_body::Frame<Bytes>, BoxError>>,
    >;

    impl Service<Request<()>> for Server {
        type Response = Response<Slow>;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            let mut finish = self.0.clone();
            let done = request.uri().path() == "/done";
            let body = futures::stream::once(async move {
                if !done {
                    let _ = finish.wait_for(|f| *f).await;
                }
                Ok(http_body::Frame::data(Bytes::from_static(b"{}")))
            });
            std::future::ready(Ok(Response::new(http_body_util::StreamBody::new(
                futures::StreamExt::boxed(body),
            ))))
        }
    }

    fn get(uri: &str) -> Request<()> {
        Request::get(uri).body(()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_holds_its_slot_until_its_answer_is_read_whoever_polls_it() {
        let (finish, answers) = tokio::sync::watch::channel(false);
        let mut service = InFlightLayer::new(2).layer(Server(answers));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        // Two answers still arriving, their callers not polling them; a watch besides.
        let first = service.ready().await.unwrap().call(get("/slow"));
        let watch = service
            .ready()
            .await
            .unwrap()
            .call(get("/w?watch=true&x=1"));
        let second = service.ready().await.unwrap().call(get("/slow"));
        tokio::task::yield_now().await;
        assert!(service.poll_ready(&mut cx).is_pending(), "two slots taken");
        // The answers end: the slots come free though nobody polled `first` or `second`.
        finish.send(true).unwrap();
        // (Paused time: were the slots stuck, the timeout would end the wait at once.)
        let ready = tokio::time::timeout(std::time::Duration::from_secs(60), service.ready());
        let third = ready
            .await
            .expect("a slot comes free")
            .unwrap()
            .call(get("/done"));
        let answer = third.await.unwrap().into_body().collect().await.unwrap();
        assert_eq!(answer.to_bytes(), Bytes::from_static(b"{}"));
        drop((first, second, watch));
    }
}
