//! An in-process HTTP/1.1 receiver (hyper server on its own thread and
//! runtime) that records every request and answers from a script, standing
//! in for Splunk HEC or an Elasticsearch `_bulk` endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::TestResult;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer: status and body, given the request and how many came before it.
pub type Script = dyn Fn(&Captured, usize) -> (u16, String) + Send + Sync;

/// A running receiver; it stops when dropped. With a `delay` it waits that
/// long before each answer, like a slow SIEM.
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Captured>>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    pub fn start(script: Box<Script>, delay: Option<Duration>) -> TestResult<Receiver> {
        Receiver::start_with(script, delay, None)
    }

    /// An `https://` receiver presenting `cert` (PEM chain) with `key`.
    pub fn start_tls(script: Box<Script>, cert: &Path, key: &Path) -> TestResult<Receiver> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(key)?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Receiver::start_with(script, None, Some(Arc::new(config)))
    }

    fn start_with(
        script: Box<Script>,
        delay: Option<Duration>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> TestResult<Receiver> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (shutdown_tx, mut shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let seen = Arc::clone(&requests);
        let script: Arc<Script> = Arc::from(script);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let stream = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                        _ = &mut shutdown_rx => return,
                    };
                    let seen = Arc::clone(&seen);
                    let script = Arc::clone(&script);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let seen = Arc::clone(&seen);
                            let script = Arc::clone(&script);
                            async move {
                                let (parts, body) = req.into_parts();
                                let body = body
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let captured = Captured {
                                    method: parts.method.to_string(),
                                    path: parts.uri.path().to_owned(),
                                    headers: parts
                                        .headers
                                        .iter()
                                        .map(|(n, v)| {
                                            (n.to_string(), v.to_str().unwrap_or("").to_owned())
                                        })
                                        .collect(),
                                    body: body.to_vec(),
                                };
                                let (status, reply) = {
                                    let mut all = seen.lock().unwrap();
                                    let answer = script(&captured, all.len());
                                    all.push(captured);
                                    answer
                                };
                                if let Some(delay) = delay {
                                    tokio::time::sleep(delay).await;
                                }
                                let mut response = Response::new(Full::new(Bytes::from(reply)));
                                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                                Ok::<_, Infallible>(response)
                            }
                        });
                        match tls {
                            None => {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                            Some(config) => {
                                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                                // A client that refuses the certificate ends the handshake.
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = http1::Builder::new()
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                        }
                    });
                }
            });
        });
        Ok(Receiver {
            addr,
            requests,
            _shutdown: shutdown_tx,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `https://` URL under the name the test certificate carries.
    pub fn https_url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}
