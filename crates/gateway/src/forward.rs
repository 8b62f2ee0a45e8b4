//! The forward stage: send the request to a target of the route's pool and return its
//! response head, with the body streaming in both directions.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, Version, request::Parts};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{Body, BodyFailure, RequestBody, empty, full};
use crate::context::RequestContext;
use crate::contract::ForwardBody;
use crate::forwarding::{ForwardedFor, is_trusted, set_forwarding_headers, strip_hop_by_hop};
use crate::metrics::Metrics;
use crate::problem::Rejection;
use crate::snapshot::Route;

/// Settings the forward stage needs beyond the route.
pub struct ForwardSettings<'a> {
    pub trusted_proxies: &'a [ipnet::IpNet],
    pub body_timeout: Duration,
    pub min_body_rate: u64,
    pub host: &'a str,
    pub identity: &'a crate::authn::IdentityRuntime,
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

pub async fn forward(
    route: &Route,
    ctx: &mut RequestContext,
    parts: Parts,
    body: ForwardBody,
    settings: &ForwardSettings<'_>,
    metrics: &Metrics,
) -> Result<Response<Incoming>, Rejection> {
    let pool = &route.pool;
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    crate::authn::upstream_identity_headers(
        &mut headers,
        settings.identity,
        &route.config.auth,
        ctx.identity.as_deref(),
    );
    let peer = ctx.conn.peer.ip();
    set_forwarding_headers(
        &mut headers,
        &ForwardedFor {
            peer,
            peer_trusted: is_trusted(peer, settings.trusted_proxies),
            proto: if ctx.conn.is_tls() { "https" } else { "http" },
            host: settings.host,
            request_id: &ctx.request_id,
        },
    );
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_string();
    // A body already read by the gateway can be sent again; a streamed one cannot.
    let (mut next_body, retry_body): (Option<Body>, Option<Bytes>) = match body {
        ForwardBody::Buffered(bytes) => (Some(full(bytes.clone())), Some(bytes)),
        ForwardBody::Stream(body) if body.is_end_stream() => (Some(empty()), Some(Bytes::new())),
        ForwardBody::Stream(body) => (
            Some(
                RequestBody::new(
                    body,
                    route.config.request.max_body,
                    settings.body_timeout,
                    settings.min_body_rate,
                    ctx.body.clone(),
                )
                .boxed_unsync(),
            ),
            None,
        ),
    };
    let retryable = idempotent(&parts.method) && retry_body.is_some();
    let mut exclude = None;

    loop {
        let Some(idx) = pool.pick(exclude) else {
            return Err(Rejection::bad_gateway("upstream_unavailable"));
        };
        let target = &pool.targets[idx].url;
        let uri: Uri = format!(
            "{}://{}{}",
            target.scheme(),
            target.authority,
            path_and_query
        )
        .parse()
        .map_err(|_| Rejection::bad_request("invalid_target", "the request target is invalid"))?;
        let mut req = Request::new(next_body.take().unwrap_or_else(empty));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        // Only a retry needs the headers again: move them into the first attempt otherwise.
        *req.headers_mut() = if retryable && exclude.is_none() && pool.targets.len() > 1 {
            headers.clone()
        } else {
            std::mem::take(&mut headers)
        };
        let host = if pool.config.preserve_host {
            settings.host
        } else {
            target.authority.as_str()
        };
        if let Ok(v) = http::HeaderValue::from_str(host) {
            req.headers_mut().insert(http::header::HOST, v);
        }
        ctx.upstream = Some(target.authority.clone());

        let result =
            tokio::time::timeout(pool.config.response_timeout, pool.client.request(req)).await;
        match result {
            Ok(Ok(resp)) => {
                // An upstream may answer before it has read the whole body. If the client's
                // body turned out to be invalid, that answer belongs to a request that was
                // never validly made: refuse it instead of relaying it.
                if let Some(rej) = body_rejection(ctx) {
                    return Err(rej);
                }
                return Ok(resp);
            }
            Err(_) => {
                metrics.upstream_error(&pool.name, "timeout");
                return Err(Rejection::gateway_timeout());
            }
            Ok(Err(err)) => {
                if let Some(rej) = body_rejection(ctx) {
                    return Err(rej);
                }
                if err.is_connect() {
                    metrics.upstream_error(&pool.name, "connect");
                    pool.mark_unhealthy(idx);
                    if retryable && exclude.is_none() && pool.targets.len() > 1 {
                        exclude = Some(idx);
                        next_body = retry_body.clone().map(full);
                        continue;
                    }
                } else {
                    metrics.upstream_error(&pool.name, "protocol");
                    tracing::debug!(upstream = %pool.name, error = %err, "upstream request failed");
                }
                return Err(Rejection::bad_gateway("upstream_unavailable"));
            }
        }
    }
}

/// When forwarding failed because of the client's body, say so instead of blaming the upstream.
/// Only this request's own body counts: the connection's framing signal may also hold a
/// verdict about a later, pipelined request, which is not this request's fault.
pub(crate) fn body_rejection(ctx: &RequestContext) -> Option<Rejection> {
    // A chunked-body violation can surface to hyper as an early end of the body rather than
    // as an error, so the reader's verdict is checked too — but only verdicts about a body:
    // a head verdict belongs to a later, pipelined request.
    if ctx.body.failure().is_none()
        && let Some(v) = ctx.conn.framing.body_violation()
    {
        return Some(Rejection::bad_request(
            "invalid_framing",
            format!("the request body is malformed ({})", v.reason()),
        ));
    }
    match ctx.body.failure()? {
        BodyFailure::TooLarge => Some(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "Content Too Large",
        )),
        BodyFailure::Timeout => Some(Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "Request Timeout",
        )),
        BodyFailure::Broken => Some(match ctx.conn.framing.peek() {
            Some(v) => Rejection::bad_request(
                "invalid_framing",
                format!("the request body is malformed ({})", v.reason()),
            ),
            None => {
                Rejection::bad_request("body_incomplete", "the request body ended unexpectedly")
            }
        }),
    }
}
