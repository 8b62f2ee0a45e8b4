//! The in-process test harness: a real upstream HTTP server, a real gateway started from
//! YAML on free loopback ports, real TLS with certificates made by rcgen, and clients that
//! speak raw bytes, HTTP/1.1 or HTTP/2.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use portcullis_gateway::RunningGateway;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        portcullis_gateway::tls::install_default_provider();
        let _ = tracing_subscriber_init();
    });
}

fn tracing_subscriber_init() -> Option<()> {
    None
}

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A real HTTP/1.1 upstream on a free loopback port. Paths:
/// - `/status/{code}`: that status, with a stack trace body and fingerprinting headers
/// - `/bytes/{n}`: n bytes with Content-Length; `/stream/{n}`: n bytes chunked, no length
/// - `/slow/{ms}`: answers after ms milliseconds
/// - anything else: 200 JSON echo of method, path, headers and body length
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = tcp.accept().await else {
                    continue;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| upstream_handler(log.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream { addr, seen }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

type UpBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn upstream_handler(
    log: Arc<Mutex<Vec<Seen>>>,
    req: Request<Incoming>,
) -> Result<Response<UpBody>, Infallible> {
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Ok(Response::new(Full::new(Bytes::new()).boxed())),
    };
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        path_and_query: path_and_query.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let path = path_and_query.split('?').next().unwrap_or("").to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let resp = match parts.as_slice() {
        ["status", code] => {
            let code: u16 = code.parse().unwrap_or(500);
            let mut r = Response::new(
                Full::new(Bytes::from_static(
                    b"Traceback (most recent call last):\n  File \"/srv/app.py\", line 1\nSecretError: db password=hunter2",
                ))
                .boxed(),
            );
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            r.headers_mut()
                .insert("server", "Apache/2.4.1 (Unix)".parse().unwrap());
            r.headers_mut()
                .insert("x-powered-by", "PHP/5.6.40".parse().unwrap());
            r.headers_mut()
                .insert("x-aspnet-version", "4.0.30319".parse().unwrap());
            r.headers_mut()
                .insert("x-runtime", "0.0123".parse().unwrap());
            r.headers_mut()
                .insert("via", "1.1 internal-cache".parse().unwrap());
            r.headers_mut()
                .insert("access-control-allow-origin", "*".parse().unwrap());
            r
        }
        ["bytes", n] => {
            let n: usize = n.parse().unwrap_or(0);
            Response::new(Full::new(Bytes::from(vec![b'x'; n])).boxed())
        }
        ["stream", n] => {
            let n: usize = n.parse().unwrap_or(0);
            Response::new(BodyExt::boxed(Chunks { remaining: n }))
        }
        ["slow", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(100))).await;
            Response::new(Full::new(Bytes::from_static(b"{\"slow\":true}")).boxed())
        }
        _ => {
            let echo = serde_json::json!({
                "method": method,
                "path": path_and_query,
                "headers": headers.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                "body_len": body.len(),
            });
            let mut r = Response::new(Full::new(Bytes::from(echo.to_string())).boxed());
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r.headers_mut()
                .insert("server", "gunicorn/19.9.0".parse().unwrap());
            r
        }
    };
    Ok(resp)
}

/// A body of `remaining` bytes in 1 KiB frames with no declared length (sent chunked).
struct Chunks {
    remaining: usize,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.remaining.min(1024);
        self.remaining -= n;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'y'; n])))))
    }
}

/// A gateway started from YAML; `{upstream}` in the YAML is replaced by the upstream URL and
/// `{dir}` by the gateway's temporary directory. Every listener should use port 0.
pub struct TestGateway {
    pub running: Option<RunningGateway>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub events_path: PathBuf,
}

impl TestGateway {
    pub async fn start(yaml: &str, upstream: &Upstream) -> TestGateway {
        init();
        let dir = tempfile::tempdir().unwrap();
        let text = render(yaml, upstream, dir.path());
        let config_path = dir.path().join("portcullis.yaml");
        std::fs::write(&config_path, text).unwrap();
        let cfg = portcullis_gateway::config::load(&config_path)
            .unwrap_or_else(|e| panic!("test config invalid:\n{e}"));
        let events_path = cfg
            .events
            .file
            .clone()
            .unwrap_or_else(|| dir.path().join("none.jsonl"));
        let running = RunningGateway::start(cfg, Some(config_path.clone()))
            .await
            .unwrap();
        TestGateway {
            running: Some(running),
            dir,
            config_path,
            events_path,
        }
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.running.as_ref().unwrap().listeners[i]
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(0), path)
    }

    pub fn admin(&self) -> SocketAddr {
        self.running.as_ref().unwrap().admin.unwrap()
    }

    pub fn gateway(&self) -> &Arc<portcullis_gateway::Gateway> {
        &self.running.as_ref().unwrap().gateway
    }

    /// Rewrite the config file (for reload tests).
    pub fn write_config(&self, yaml: &str, upstream: &Upstream) {
        std::fs::write(&self.config_path, render(yaml, upstream, self.dir.path())).unwrap();
    }

    /// Stop the gateway (flushing the event queue) and return every event written.
    pub async fn stop(&mut self) -> Vec<Value> {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        read_events(&self.events_path)
    }

    /// Events written so far (the writer flushes whenever its queue is empty).
    pub async fn events_now(&self) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        read_events(&self.events_path)
    }
}

pub fn render(yaml: &str, upstream: &Upstream, dir: &Path) -> String {
    yaml.replace("{upstream}", &upstream.url())
        .replace("{dir}", &dir.display().to_string())
}

pub fn read_events(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["class_uid"] == 4002)
        .collect()
}

/// A plain-HTTP gateway with one route to the upstream and events in the temp dir.
pub const BASIC: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;

/// HTTP/1.1 client over plain TCP with keep-alive.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A response with its body collected.
pub struct Got {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn send(req: Request<Full<Bytes>>) -> Got {
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str) -> Got {
    send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

/// Write raw bytes, half-close nothing, and read until the server closes or `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Certificates for TLS tests: a self-signed certificate per name set, as PEM files.
pub struct TestCert {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub der: rustls::pki_types::CertificateDer<'static>,
}

pub fn make_cert(dir: &Path, stem: &str, names: &[&str]) -> TestCert {
    let generated =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, generated.cert.pem()).unwrap();
    std::fs::write(&key_path, generated.signing_key.serialize_pem()).unwrap();
    TestCert {
        cert_path,
        key_path,
        der: generated.cert.der().clone(),
    }
}

/// A rustls client trusting exactly `roots`, offering `alpn`.
pub fn tls_client_config(
    roots: &[&rustls::pki_types::CertificateDer<'static>],
    alpn: &[&[u8]],
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder()
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// Connect with TLS to `addr` presenting `sni`.
pub async fn tls_connect(
    addr: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
}

/// One HTTP/1.1 request over an established (TLS) stream.
pub async fn h1_over<S>(io: S, req: Request<Full<Bytes>>) -> Got
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// One HTTP/2 request over an established TLS stream that negotiated h2.
pub async fn h2_over<S>(io: S, req: Request<Full<Bytes>>) -> Got
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// Every record in the events file, whatever its class (HTTP Activity and lifecycle).
pub fn read_all_records(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Lifecycle records (`start`, `reload`, `reload_failed`, `stop`) written so far, by kind.
pub fn lifecycle_kinds(path: &Path) -> Vec<String> {
    read_all_records(path)
        .into_iter()
        .filter(|v| v["class_uid"] != 4002)
        .filter_map(|v| v["unmapped"]["kind"].as_str().map(str::to_string))
        .collect()
}

/// A request to the admin API, with `Authorization: Bearer TOKEN` when a token is given.
pub async fn admin_request(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> Got {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(req.body(Full::new(Bytes::new())).unwrap()).await
}

// ---------------------------------------------------------------------------------------------
// Helpers for the security suites (request_restrictions, response_filters, cors,
// upstream_pools): raw exchanges that stop at the end of one response, problem+json
// assertions, and event look-ups.

/// One HTTP/1.1 response read off a raw socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Everything read, head and body, as text (for "never contains" checks).
    pub text: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Read one response from `s`: the head, then a Content-Length body (or everything until the
/// peer closes). Returns None when no complete head arrived within `wait`.
pub async fn read_one_response(s: &mut TcpStream, wait: Duration) -> Option<RawResponse> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut head_end = None;
    let mut want: Option<usize> = None;
    loop {
        if head_end.is_none()
            && let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            head_end = Some(i + 4);
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            want = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok());
        }
        if let (Some(h), Some(n)) = (head_end, want)
            && buf.len() >= h + n
        {
            break;
        }
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let h = head_end?;
    let head = String::from_utf8_lossy(&buf[..h]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let end = want.map_or(buf.len(), |n| (h + n).min(buf.len()));
    Some(RawResponse {
        status,
        headers,
        body: buf[h..end].to_vec(),
        text: String::from_utf8_lossy(&buf).into_owned(),
    })
}

/// Connect, write `bytes`, and read exactly one response (see [`read_one_response`]).
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    read_one_response(&mut s, wait)
        .await
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(bytes)))
}

/// Assert `got` is a gateway-made RFC 9457 document: the status, `application/problem+json`,
/// `type` = `urn:portcullis:problem:{reason}`, `title`, `status`, and a `request_id` equal to
/// the `x-request-id` response header. Returns the document.
pub fn assert_problem(got: &Got, status: u16, reason: &str) -> Value {
    assert_problem_parts(got.status.as_u16(), &got.headers, &got.body, status, reason)
}

pub fn assert_raw_problem(got: &RawResponse, status: u16, reason: &str) -> Value {
    let mut headers = http::HeaderMap::new();
    for (k, v) in &got.headers {
        headers.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    assert_problem_parts(got.status, &headers, &got.body, status, reason)
}

fn assert_problem_parts(
    got_status: u16,
    headers: &http::HeaderMap,
    body: &[u8],
    status: u16,
    reason: &str,
) -> Value {
    let text = String::from_utf8_lossy(body);
    assert_eq!(got_status, status, "status; body: {text}");
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "content type; body: {text}"
    );
    let doc: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("problem body is not JSON ({e}): {text}"));
    assert_eq!(
        doc["type"],
        format!("urn:portcullis:problem:{reason}"),
        "{doc}"
    );
    assert_eq!(doc["status"], status, "{doc}");
    let expected_title = StatusCode::from_u16(status)
        .unwrap()
        .canonical_reason()
        .unwrap();
    // RFC 9110 renamed 413; the gateway uses the current name.
    let expected_title = if status == 413 {
        "Content Too Large"
    } else {
        expected_title
    };
    assert_eq!(doc["title"], expected_title, "{doc}");
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no x-request-id header on a problem response"));
    assert!(!rid.is_empty());
    assert_eq!(doc["request_id"], rid, "{doc}");
    doc
}

/// The request event with request id `id`.
pub fn event_by_id<'a>(events: &'a [Value], id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["metadata"]["uid"] == id)
        .unwrap_or_else(|| panic!("no event for request {id} in {events:#?}"))
}

/// `(id, location)` of each finding in an event.
pub fn findings(ev: &Value) -> Vec<(String, Option<String>)> {
    ev["unmapped"]["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["id"].as_str().unwrap_or_default().to_string(),
                        f["location"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A request body fed from a channel, with no declared length: HTTP/1.1 sends it chunked,
/// HTTP/2 without `content-length`.
pub struct ChannelBody {
    pub rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}
