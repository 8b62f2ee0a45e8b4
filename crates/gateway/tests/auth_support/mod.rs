//! Identity test support shared by the authentication, authorization and JWT-attack suites:
//! ES256 keys generated with aws-lc-rs and tokens signed with jsonwebtoken, a real in-process
//! HTTP server (JWKS endpoint, RFC 7662 introspection endpoint, or an attacker's server that
//! must never be contacted) whose requests are counted, and a test CA made with rcgen that
//! issues client certificates for mTLS.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "orders-api";
/// The gateway's client credentials at the introspection endpoint.
pub const CLIENT_ID: &str = "portcullis";
pub const CLIENT_SECRET: &str = "introspection-client-secret";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Valid claims for the test issuer and audience (subject `alice`), with `extra` merged over
/// them; a `null` in `extra` removes the claim.
pub fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": now() + 600,
        "iat": now(),
        "jti": "jti-alice-1",
        "scope": "orders:read",
    });
    if let (Some(base), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// An ES256 signing key (P-256, generated with aws-lc-rs) and its public forms.
pub struct EcKey {
    pub encoding: jsonwebtoken::EncodingKey,
    /// Public JWK without `kid`.
    jwk: Value,
    pub public_pem: String,
}

impl EcKey {
    pub fn generate() -> EcKey {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = kp.to_pkcs8v1().unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let spki = kp.public_key().as_der().unwrap();
        EcKey {
            encoding: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "use": "sig", "crv": "P-256",
                        "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
        }
    }

    /// The public JWK with this `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!("ES256");
        jwk
    }

    /// The public JWK with no `kid` (an attacker embeds this in a token header).
    pub fn bare_jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// A token with header `{"alg":"ES256","kid":kid,"typ":"JWT"}`.
    pub fn token(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
        self.sign_json(&header, claims)
    }

    pub fn sign_json(&self, header: &Value, claims: &Value) -> String {
        sign_with(
            &self.encoding,
            Algorithm::ES256,
            &header.to_string(),
            &claims.to_string(),
        )
    }
}

/// Sign header and payload JSON text with any key and algorithm (also used to forge tokens).
pub fn sign_with(
    key: &jsonwebtoken::EncodingKey,
    alg: Algorithm,
    header: &str,
    payload: &str,
) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// An unsigned token with the given header (for `alg: none` variants).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
}

/// What a [`MockServer`] answers: status and JSON body for (path, headers, body).
type Handler = Arc<dyn Fn(&str, &http::HeaderMap, &[u8]) -> (u16, Value) + Send + Sync>;

/// A real HTTP/1.1 server on a loopback port that counts every request it receives.
pub struct MockServer {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl MockServer {
    pub async fn start(handler: Handler) -> MockServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let accept = tokio::spawn(async move {
            // Connections live in this set: aborting the accept task closes them too.
            let mut conns = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let counter = counter.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let path = req.uri().path().to_string();
                            let (parts, body) = req.into_parts();
                            let body = body.collect().await.map(|b| b.to_bytes());
                            let body = body.unwrap_or_default();
                            let (status, json) = handler(&path, &parts.headers, &body);
                            let resp = Response::builder()
                                .status(StatusCode::from_u16(status).unwrap())
                                .header("content-type", "application/json")
                                .header("cache-control", "no-store")
                                .body(Full::new(Bytes::from(json.to_string())))
                                .unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        MockServer { addr, hits, accept }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A JWKS endpoint serving `keys` (as `{"keys": [...]}`) at any path.
pub async fn jwks_server(keys: Vec<Value>) -> MockServer {
    let doc = json!({ "keys": keys });
    MockServer::start(Arc::new(move |_, _, _| (200, doc.clone()))).await
}

/// An RFC 7662 endpoint at `/introspect`: the gateway must authenticate with
/// `client_secret_basic`; `tokens` maps a token to its answer, anything else is inactive.
pub async fn introspection_server(tokens: HashMap<String, Value>) -> MockServer {
    let tokens = Arc::new(Mutex::new(tokens));
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    MockServer::start(Arc::new(move |path, headers, body| {
        if path != "/introspect" {
            return (404, json!({"error": "not_found"}));
        }
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&expected) {
            return (401, json!({"error": "invalid_client"}));
        }
        let form = String::from_utf8_lossy(body);
        let token = form
            .split('&')
            .find_map(|p| p.strip_prefix("token="))
            .map(form_decode)
            .unwrap_or_default();
        let answer = tokens
            .lock()
            .unwrap()
            .get(&token)
            .cloned()
            .unwrap_or_else(|| json!({"active": false}));
        (200, answer)
    }))
    .await
}

fn form_decode(s: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let v = std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or(b'?');
                out.push(v);
            }
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// mTLS: a CA that issues client certificates, and TLS clients presenting them.

/// A certificate authority made with rcgen.
pub struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
}

/// A client certificate chain (leaf only) and its key.
pub struct ClientCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            params,
            key,
        }
    }

    /// Write the CA certificate as PEM and return its path.
    pub fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A client certificate whose first (URI) SAN is `uri`; `expired` puts its validity
    /// entirely in the past.
    pub fn issue_client(&self, uri: &str, expired: bool) -> ClientCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test client");
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from(uri.to_string()).unwrap(),
        )];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        ClientCert {
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }
}

/// A rustls client trusting `server_root`, offering HTTP/1.1, presenting `cert` if given.
pub fn mtls_client(
    server_root: &CertificateDer<'static>,
    cert: Option<&ClientCert>,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_root.clone()).unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let mut cfg = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => builder
            .with_client_auth_cert(
                c.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone())),
            )
            .unwrap(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// How a TLS exchange of one `GET path` ended.
#[derive(Debug)]
pub enum TlsOutcome {
    /// A response arrived: its raw text.
    Response(String),
    /// The handshake (or the first read, where TLS 1.3 reports client-certificate refusals)
    /// failed: the error.
    Refused(String),
}

/// Connect with TLS to `addr` as `localhost`, send one `GET path` with `extra` headers and
/// read the answer until the server closes or 3 s pass.
pub async fn tls_get(
    addr: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    path: &str,
    extra: &str,
) -> TlsOutcome {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = match tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) => return TlsOutcome::Refused(format!("handshake: {e}")),
    };
    let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n{extra}\r\n");
    if let Err(e) = tls.write_all(req.as_bytes()).await {
        return TlsOutcome::Refused(format!("write: {e}"));
    }
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out)).await;
    match read {
        Ok(Err(e)) if out.is_empty() => TlsOutcome::Refused(format!("read: {e}")),
        _ if out.is_empty() => TlsOutcome::Refused("closed without a response".into()),
        _ => TlsOutcome::Response(String::from_utf8_lossy(&out).into_owned()),
    }
}
