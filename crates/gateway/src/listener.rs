//! Listeners: accept, enforce the connection limit, complete TLS, choose HTTP/1.1 or HTTP/2,
//! wrap HTTP/1 in the strict framing reader, and watch each connection for header and idle
//! timeouts. Shutdown stops accepting and lets in-flight requests finish.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use portcullis_events::TlsInfo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;
use crate::context::{ConnActivity, ConnInfo};
use crate::framing::{FramingLimits, FramingSignal, StrictH1};
use crate::server::Gateway;

/// Everything a listener's connections share.
pub struct ListenerState {
    gw: Arc<Gateway>,
    name: Arc<str>,
    tls: Option<TlsAcceptor>,
    hsts: Option<http::HeaderValue>,
    redirect_https_port: Option<u16>,
    /// One permit per open connection; also tells shutdown when the last one has closed.
    permits: Arc<Semaphore>,
    max_connections: usize,
    per_ip: Arc<crate::protect::PerIpConnections>,
}

impl ListenerState {
    pub fn new(
        gw: Arc<Gateway>,
        cfg: &ListenerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Arc<Self> {
        let max_connections = gw.snapshot().config.limits.max_connections;
        Arc::new(ListenerState {
            gw,
            name: cfg.name.as_str().into(),
            tls: tls.map(TlsAcceptor::from),
            hsts: cfg
                .tls
                .as_ref()
                .and_then(|t| t.hsts.as_deref())
                .and_then(|h| http::HeaderValue::from_str(h).ok()),
            redirect_https_port: cfg.redirect_https_port,
            permits: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            per_ip: Arc::default(),
        })
    }
}

/// Accept connections until shutdown, then wait for open ones to finish (bounded by the
/// configured grace period; the caller aborts stragglers).
pub async fn serve(
    tcp: TcpListener,
    state: Arc<ListenerState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = state.permits.clone().try_acquire_owned() else {
            state.gw.metrics.connection_refused();
            drop(stream);
            continue;
        };
        // Per-client limits at accept: the static deny list and the per-IP connection cap
        // cost nothing but a lookup, so a refused client never reaches TLS or HTTP.
        let snap = state.gw.snapshot();
        let peer_ip = peer.ip();
        if !snap.protection.ip_allowed(peer_ip) {
            state.gw.metrics.connection_refused();
            continue;
        }
        // A trusted proxy (a load balancer) carries many clients on its connections: the
        // per-IP cap applies to real clients only.
        let ip_permit = if crate::forwarding::is_trusted(peer_ip, &snap.config.trusted_proxies) {
            None
        } else {
            match state
                .per_ip
                .try_acquire(peer_ip, snap.config.limits.max_connections_per_ip)
            {
                Some(p) => Some(p),
                None => {
                    state.gw.metrics.connection_refused();
                    continue;
                }
            }
        };
        drop(snap);
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ip_permit = ip_permit;
            let _permit = permit;
            // A connection's task stays this small until something can be read: the block
            // check, TLS, hyper and the pipeline are boxed afterwards. (A future's size is
            // that of its largest await, so awaiting them inline here would make every idle
            // connection carry their full state.)
            let close_blocked = state.gw.snapshot().protection.close_blocked_ips();
            if close_blocked && Box::pin(ip_blocked(&state, peer_ip)).await {
                state.gw.metrics.connection_refused();
                return;
            }
            state.gw.metrics.connection_opened();
            let idle = state.gw.snapshot().config.limits.idle_timeout;
            // `peek`, not `readable`: a freshly accepted socket can report read readiness
            // with nothing to read, which built the whole HTTP state for clients that had
            // sent nothing (bench/idle_conns.sh, connect mode).
            let first_byte = tokio::time::timeout(idle, stream.peek(&mut [0u8; 1])).await;
            let served = match first_byte {
                Ok(Ok(_)) => Box::pin(serve_connection(stream, peer, &state, shutdown)).await,
                _ => Ok(()),
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            state.gw.metrics.connection_closed();
        });
    }
    drop(tcp);
    let grace = state.gw.snapshot().config.limits.shutdown_grace;
    let all = u32::try_from(state.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(grace, state.permits.acquire_many(all)).await;
}

/// Whether the dynamic block list holds this address (for `ip_block_action: close`).
async fn ip_blocked(state: &ListenerState, ip: std::net::IpAddr) -> bool {
    let snap = state.gw.snapshot();
    snap.protection.ip_block(ip).await.is_some()
}

async fn serve_connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    state: &ListenerState,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let local = stream.local_addr()?;
    let limits = state.gw.snapshot().config.limits.clone();
    let activity = Arc::new(ConnActivity::default());
    let counted = CountingIo {
        inner: stream,
        activity: activity.clone(),
    };
    let framing = FramingSignal::default();
    let mut info = ConnInfo {
        peer,
        local,
        tls: None,
        client_cert_principal: None,
        hsts: None,
        listener: state.name.clone(),
        redirect_https_port: state.redirect_https_port,
        framing: framing.clone(),
        activity: activity.clone(),
    };
    let framing_limits = FramingLimits {
        max_header_bytes: limits.max_header_bytes,
        max_headers: limits.max_headers,
        max_url_len: limits.max_url_length,
    };

    match &state.tls {
        None => {
            let io = StrictH1::new(counted, framing_limits, framing);
            Box::pin(serve_http1(io, Arc::new(info), state, &limits, shutdown)).await
        }
        Some(acceptor) => {
            // Boxed, like the protocol branches below: a future is as large as its largest
            // await, and this one lives as long as the connection.
            let handshake =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(counted));
            let tls = Box::pin(handshake).await.map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
            let (_, session) = tls.get_ref();
            info.tls = Some(TlsInfo {
                version: session
                    .protocol_version()
                    .map_or_else(String::new, |v| tls_version_name(v).to_string()),
                cipher: session
                    .negotiated_cipher_suite()
                    .map_or_else(String::new, |c| format!("{:?}", c.suite())),
            });
            info.hsts = state.hsts.clone();
            info.client_cert_principal = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(crate::tls::client_principal);
            let h2 = session.alpn_protocol() == Some(b"h2");
            if h2 {
                Box::pin(serve_http2(tls, Arc::new(info), state, &limits, shutdown)).await
            } else {
                let io = StrictH1::new(tls, framing_limits, framing);
                Box::pin(serve_http1(io, Arc::new(info), state, &limits, shutdown)).await
            }
        }
    }
}

fn tls_version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => "unknown",
    }
}

/// Serve HTTP/1 on a connection. A keep-alive connection that stays idle for
/// [`PARK_AFTER`] is *parked*: hyper's connection (its 8 KiB read and write buffers and the
/// in-flight slot) is dropped at a point where it owes nothing, the stream waits for the
/// client's next bytes holding no buffer, and a fresh hyper connection serves them. Busy
/// connections never park, so this costs nothing per request; ten thousand idle clients
/// cost their sockets and small tasks instead of ~30 KiB each (bench/idle_conns.sh).
async fn serve_http1<S>(
    mut io: StrictH1<S>,
    info: Arc<ConnInfo>,
    state: &ListenerState,
    limits: &crate::config::Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let gw = state.gw.clone();
    let conn_info = info.clone();
    // Boxed per request: hyper keeps the service future inside the connection, so an
    // unboxed pipeline future would be carried by every idle keep-alive connection.
    let service = service_fn(move |req| {
        Box::pin(crate::pipeline::handle(gw.clone(), conn_info.clone(), req))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .half_close(false)
        .max_buf_size(limits.max_header_bytes.max(8192) * 2);
    loop {
        let conn = builder.serve_connection(TokioIo::new(io), service.clone());
        let watchdog = watchdog(info.activity.clone(), limits.clone(), false);
        let Some(parts) = Box::pin(drive_http1(conn, watchdog, &mut shutdown)).await? else {
            return Ok(());
        };
        io = parts.io.into_inner();
        io.requeue(&parts.read_buf);
        // `read_buf` shares hyper's whole read buffer: let it go before waiting.
        drop(parts.read_buf);
        if io.at_eof() {
            return Ok(());
        }
        if io.is_between_requests() {
            state.gw.metrics.connection_parked();
            let more = Box::pin(wait_for_next_request(
                &mut io,
                &info.activity,
                limits,
                &mut shutdown,
            ))
            .await;
            state.gw.metrics.connection_unparked();
            if !more {
                return Ok(());
            }
        }
        // Otherwise the client's next bytes arrived as the connection was parked (a race):
        // they are buffered in `io` (requeued from hyper or held by the strict reader), and
        // a fresh hyper connection reads them at once.
    }
}

/// How long an HTTP/1 keep-alive connection stays idle before it is parked (see
/// [`serve_http1`]). Long enough that a client sending request after request never pays
/// for a new hyper connection; short next to any idle timeout.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// Wait, with no buffers, until a parked connection's client sends its next request: true
/// when it has (the bytes are kept in `io`); false when it closed, stayed silent for the
/// idle timeout, or the gateway is shutting down.
async fn wait_for_next_request<S: AsyncRead + Unpin>(
    io: &mut StrictH1<S>,
    activity: &ConnActivity,
    limits: &crate::config::Limits,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if *shutdown.borrow() {
        return false;
    }
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let since = activity
        .now_ms()
        .saturating_sub(activity.last_done_ms.load(Ordering::Acquire));
    let left = Duration::from_millis(idle_ms.saturating_sub(since));
    tokio::select! {
        r = std::future::poll_fn(|cx| Pin::new(&mut *io).poll_wait_for_input(cx)) => {
            r.is_ok() && !io.at_eof()
        }
        _ = tokio::time::sleep(left) => false,
        _ = shutdown.changed() => false,
    }
}

async fn serve_http2<S>(
    io: S,
    info: Arc<ConnInfo>,
    state: &ListenerState,
    limits: &crate::config::Limits,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let gw = state.gw.clone();
    let conn_info = info.clone();
    let service = service_fn(move |req| {
        Box::pin(crate::pipeline::handle(gw.clone(), conn_info.clone(), req))
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // Rapid reset (CVE-2023-44487) and CONTINUATION floods: bounded resets, and header lists
    // capped at the head limit.
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    drive(
        conn,
        watchdog(info.activity.clone(), limits.clone(), true),
        shutdown,
    )
    .await
}

/// Run an HTTP/1 connection like [`drive`], and also end it when the watchdog says it has
/// been idle long enough to park: then hyper is told to stop at its idle point and the
/// stream comes back (`Some`) for [`serve_http1`] to wait on. `None`: the connection is over.
async fn drive_http1<S, Svc, B>(
    mut conn: hyper::server::conn::http1::Connection<TokioIo<StrictH1<S>>, Svc>,
    watchdog: impl std::future::Future<Output = Idle>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Http1Parts<S, Svc>>, Box<dyn std::error::Error + Send + Sync>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Svc: hyper::service::HttpService<hyper::body::Incoming, ResBody = B> + Unpin,
    Svc::Future: Unpin,
    Svc::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    enum Outcome {
        Finished,
        Idle(Idle),
        ShuttingDown,
    }
    let mut watchdog = std::pin::pin!(watchdog);
    let outcome = tokio::select! {
        r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => { r?; Outcome::Finished }
        idle = &mut watchdog => Outcome::Idle(idle),
        _ = shutdown.changed() => Outcome::ShuttingDown,
    };
    match outcome {
        Outcome::Idle(Idle::Close) => return Ok(None),
        Outcome::Idle(Idle::Park) => {
            // hyper closes an idle connection at once on a graceful shutdown; one that
            // turned busy meanwhile finishes its response first (bounded like any response).
            Pin::new(&mut conn).graceful_shutdown();
            let done = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx));
            return match tokio::time::timeout(PARK_AFTER * 5, done).await {
                Ok(r) => {
                    r?;
                    Ok(Some(conn.into_parts()))
                }
                Err(_) => Ok(None),
            };
        }
        Outcome::ShuttingDown => {
            Pin::new(&mut conn).graceful_shutdown();
            tokio::select! {
                r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => r?,
                _ = &mut watchdog => return Ok(None),
            }
        }
        Outcome::Finished => {}
    }
    // The connection is over: close our side as hyper would have.
    let mut io = conn.into_parts().io.into_inner();
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
    Ok(None)
}

type Http1Parts<S, Svc> = hyper::server::conn::http1::Parts<TokioIo<StrictH1<S>>, Svc>;

/// Run a connection until it ends, the watchdog fires (timeouts: the connection is dropped),
/// or shutdown begins — then let in-flight requests finish.
async fn drive<C>(
    conn: C,
    watchdog: impl std::future::Future<Output = Idle>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    C: hyper_util::server::graceful::GracefulConnection,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut watchdog = std::pin::pin!(watchdog);
    tokio::select! {
        r = conn.as_mut() => return r.map_err(Into::into),
        _ = &mut watchdog => return Ok(()),
        _ = shutdown.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        r = conn.as_mut() => r.map_err(Into::into),
        _ = &mut watchdog => Ok(()),
    }
}

/// What the watchdog decided about a connection with no request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idle {
    /// Close it: a head too slow to arrive, or idle past the idle timeout.
    Close,
    /// Idle for [`PARK_AFTER`] between HTTP/1 requests: drop the HTTP state, keep the socket.
    Park,
}

/// Resolves when the connection should be closed: no request in flight and either a request
/// head has been arriving for longer than the header timeout (slowloris), or nothing at all
/// has arrived for the idle timeout. For HTTP/2 only the idle rule applies: its control
/// frames are not request heads. An HTTP/1 connection idle for [`PARK_AFTER`] (and not yet
/// for the idle timeout) resolves earlier, with [`Idle::Park`].
async fn watchdog(activity: Arc<ConnActivity>, limits: crate::config::Limits, h2: bool) -> Idle {
    let header_ms = u64::try_from(limits.header_read_timeout.as_millis()).unwrap_or(u64::MAX);
    let idle_ms = u64::try_from(limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let tick = Duration::from_millis((header_ms.min(idle_ms) / 4).clamp(50, 1000));
    // Fix: the header timeout used to count from the end of the previous request, so a
    // keep-alive connection that had waited longer than `header_read_timeout` (but less than
    // `idle_timeout`) was cut as soon as its next head arrived in more than one read. It now
    // counts from the tick that first saw the partial head (never early, at most one tick
    // late), and a head in progress is not idleness.
    let mut head_seen_ms: Option<u64> = None;
    loop {
        tokio::time::sleep(tick).await;
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            head_seen_ms = None;
            continue;
        }
        let now = activity.now_ms();
        let since = now.saturating_sub(activity.last_done_ms.load(Ordering::Acquire));
        let partial = activity.bytes_read.load(Ordering::Acquire)
            > activity.bytes_read_at_done.load(Ordering::Acquire);
        if !partial {
            head_seen_ms = None;
        }
        let head_ms = if partial {
            now.saturating_sub(*head_seen_ms.get_or_insert(now))
        } else {
            0
        };
        if !h2 && partial && head_ms >= header_ms {
            tracing::debug!("closing a connection whose request head did not arrive in time");
            return Idle::Close;
        }
        if (h2 || !partial) && since >= idle_ms {
            return Idle::Close;
        }
        if !h2 && !partial && u128::from(since) >= PARK_AFTER.as_millis() {
            return Idle::Park;
        }
    }
}

pin_project_lite::pin_project! {
    /// Counts bytes read from the socket so the watchdog can tell a silent connection from
    /// one that is trickling a request head.
    struct CountingIo<S> {
        #[pin]
        inner: S,
        activity: Arc<ConnActivity>,
    }
}

impl<S: AsyncRead> AsyncRead for CountingIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let r = this.inner.poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.activity
                .bytes_read
                .fetch_add(n as u64, Ordering::AcqRel);
        }
        r
    }
}

impl<S: AsyncWrite> AsyncWrite for CountingIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
