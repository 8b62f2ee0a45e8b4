//! Body types and the wrappers that meter them.
//!
//! [`RequestBody`] streams the client's body to the upstream while counting bytes, enforcing
//! the route's size limit and the body deadline — without ever buffering it. [`ResponseBody`]
//! streams the upstream's answer back, counts it, cuts it at the route's limit, and carries
//! the request's [`EventGuard`](crate::context::EventGuard) so the event is emitted exactly once,
//! when the last byte has gone out or the client has gone away.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::context::EventGuard;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every response body the gateway sends.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// A complete in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// Why a request body stopped early. Shared with the pipeline so it can answer 413/408/400
/// when forwarding fails because of the body rather than the upstream.
#[derive(Debug, Default)]
pub struct BodyState {
    pub bytes: AtomicU64,
    failure: AtomicU8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFailure {
    TooLarge,
    Timeout,
    /// The client's framing was invalid or the connection broke mid-body.
    Broken,
}

impl BodyState {
    pub fn failure(&self) -> Option<BodyFailure> {
        match self.failure.load(Ordering::Acquire) {
            1 => Some(BodyFailure::TooLarge),
            2 => Some(BodyFailure::Timeout),
            3 => Some(BodyFailure::Broken),
            _ => None,
        }
    }
    fn fail(&self, f: BodyFailure) {
        let code = match f {
            BodyFailure::TooLarge => 1,
            BodyFailure::Timeout => 2,
            BodyFailure::Broken => 3,
        };
        self.failure.store(code, Ordering::Release);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("request body refused: {0:?}")]
pub struct RequestBodyError(pub BodyFailure);

pin_project_lite::pin_project! {
    /// The client's body on its way upstream.
    pub struct RequestBody {
        #[pin]
        inner: Incoming,
        #[pin]
        deadline: Sleep,
        limit: u64,
        state: Arc<BodyState>,
        started: std::time::Instant,
        min_rate: u64,
    }
}

/// A body gets this long before its average rate is judged.
const MIN_RATE_GRACE: Duration = Duration::from_secs(5);

impl RequestBody {
    pub fn new(
        inner: Incoming,
        limit: u64,
        timeout: Duration,
        min_rate: u64,
        state: Arc<BodyState>,
    ) -> Self {
        RequestBody {
            inner,
            deadline: tokio::time::sleep(timeout),
            limit,
            state,
            started: std::time::Instant::now(),
            min_rate,
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if this.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        if this.deadline.poll(cx).is_ready() {
            this.state.fail(BodyFailure::Timeout);
            return Poll::Ready(Some(Err(RequestBodyError(BodyFailure::Timeout).into())));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = this
                        .state
                        .bytes
                        .fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > *this.limit {
                        this.state.fail(BodyFailure::TooLarge);
                        return Poll::Ready(Some(Err(
                            RequestBodyError(BodyFailure::TooLarge).into()
                        )));
                    } // A body trickled byte by byte ties up a connection and an upstream
                    // request for the whole body timeout; after a grace period its average
                    // rate must keep up.
                    let elapsed = this.started.elapsed();
                    if *this.min_rate > 0
                        && elapsed > MIN_RATE_GRACE
                        && (total as f64) < (*this.min_rate as f64) * elapsed.as_secs_f64()
                    {
                        this.state.fail(BodyFailure::Timeout);
                        return Poll::Ready(Some(Err(
                            RequestBodyError(BodyFailure::Timeout).into()
                        )));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.state.fail(BodyFailure::Broken);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("response body exceeded the route's limit")]
pub struct ResponseTooLarge;

pin_project_lite::pin_project! {
    /// A response on its way to the client; owns the request's event.
    pub struct ResponseBody {
        #[pin]
        inner: Body,
        limit: u64,
        sent: u64,
        guard: EventGuard,
    }
}

impl ResponseBody {
    pub fn new(inner: Body, limit: u64, guard: EventGuard) -> Self {
        ResponseBody {
            inner,
            limit,
            sent: 0,
            guard,
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                    if *this.sent > *this.limit {
                        // Headers are gone already; the only honest thing left is to cut the
                        // stream so the client sees an incomplete body, and to record it.
                        this.guard.response_cut("response_too_large");
                        return Poll::Ready(Some(Err(ResponseTooLarge.into())));
                    }
                    this.guard.add_bytes_out(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.guard.response_cut("upstream_body_error");
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.guard.finish();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
