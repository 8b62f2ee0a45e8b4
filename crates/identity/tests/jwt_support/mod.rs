//! Test support for the JWT attack suite: keys generated with aws-lc-rs, hand-built tokens
//! signed with jsonwebtoken's `EncodingKey`, and an in-process JWKS server (real HTTP over
//! loopback) whose key set, failure mode and request count the tests control.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use portcullis_identity::jwt::{Algorithm, JwtProviderConfig, JwtVerifier, KeySource};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "portcullis-api";

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for the test issuer and audience, with `extra` merged over them.
pub fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": now() + 600,
        "iat": now(),
        "jti": "token-1",
        "scope": "read write",
    });
    if let (Some(base), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    c
}

fn pem(label: &str, der: &[u8]) -> String {
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

/// A signing key with its public JWK (without `kid`) and, where it applies, its public key
/// as SPKI DER and PEM.
pub struct TestKey {
    pub alg: Algorithm,
    pub encoding: jsonwebtoken::EncodingKey,
    pub jwk: Value,
    pub public_der: Vec<u8>,
    pub public_pem: String,
}

impl TestKey {
    pub fn rsa(alg: Algorithm) -> Self {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8: Pkcs8V1Der = kp.as_der().unwrap();
        // jsonwebtoken's RSA signer wants PKCS#1; its PEM reader extracts that from PKCS#8.
        let encoding =
            jsonwebtoken::EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
                .unwrap();
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        TestKey {
            alg,
            encoding,
            jwk: json!({"kty": "RSA", "use": "sig", "n": b64(&components.n), "e": b64(&components.e)}),
            public_der: spki.as_ref().to_vec(),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
        }
    }

    pub fn ec(alg: Algorithm) -> Self {
        let (signing, crv, size) = match alg {
            Algorithm::ES256 => (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", 32),
            Algorithm::ES384 => (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", 48),
            other => panic!("not an EC algorithm: {other:?}"),
        };
        let kp = EcdsaKeyPair::generate(signing).unwrap();
        let pkcs8 = kp.to_pkcs8v1().unwrap();
        let point = kp.public_key().as_ref().to_vec();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        TestKey {
            alg,
            encoding: jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "use": "sig", "crv": crv,
                        "x": b64(&point[1..1 + size]), "y": b64(&point[1 + size..])}),
            public_der: spki.as_ref().to_vec(),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
        }
    }

    pub fn ed25519() -> Self {
        let kp = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = kp.to_pkcs8().unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        TestKey {
            alg: Algorithm::EdDSA,
            encoding: jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({"kty": "OKP", "use": "sig", "crv": "Ed25519", "x": b64(kp.public_key().as_ref())}),
            public_der: spki.as_ref().to_vec(),
            public_pem: pem("PUBLIC KEY", spki.as_ref()),
        }
    }

    pub fn hmac(secret: &[u8], alg: Algorithm) -> Self {
        TestKey {
            alg,
            encoding: jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
            jwk: Value::Null,
            public_der: Vec::new(),
            public_pem: String::new(),
        }
    }

    /// The public JWK with this `kid` and the key's `alg`.
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(alg_name(self.alg));
        jwk
    }

    /// A token with header `{"alg", "kid", "typ"}`.
    pub fn token(&self, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": alg_name(self.alg), "kid": kid, "typ": "JWT"});
        self.sign_json(&header, claims)
    }

    pub fn sign_json(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    /// Sign hand-written header and payload JSON text with this key's algorithm.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        sign_with(&self.encoding, self.alg, header, payload)
    }
}

/// Sign arbitrary JSON text with any key and algorithm (also used to forge tokens).
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

pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// RSA generation is the slow part of the suite: each of these is made once per test binary.
pub fn rsa_a() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::rsa(Algorithm::RS256))
}

pub fn rsa_b() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::rsa(Algorithm::RS256))
}

pub fn rsa_attacker() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::rsa(Algorithm::RS256))
}

/// How the JWKS server answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Serve,
    Status(u16),
    /// Accept the request and never answer.
    Hang,
    /// Redirect to this URL.
    Redirect(String),
    /// Answer 200 with this many bytes of padding inside a valid JWKS.
    Oversized(usize),
}

struct ServerState {
    keys: Mutex<Vec<Value>>,
    mode: Mutex<Mode>,
    hits: AtomicUsize,
}

/// An in-process JWKS endpoint on 127.0.0.1.
pub struct JwksServer {
    pub addr: SocketAddr,
    state: Arc<ServerState>,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl JwksServer {
    pub async fn start(keys: Vec<Value>) -> Self {
        Self::start_with_tls(keys, None).await
    }

    /// With `tls`, the server speaks HTTPS (see [`JwksServer::url_https`]).
    pub async fn start_with_tls(keys: Vec<Value>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState {
            keys: Mutex::new(keys),
            mode: Mutex::new(Mode::Serve),
            hits: AtomicUsize::new(0),
        });
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (st, conns) = (Arc::clone(&state), Arc::clone(&connections));
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = Arc::clone(&st);
                let service = hyper::service::service_fn(move |req| respond(Arc::clone(&st), req));
                let tls = tls.clone();
                let task = tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (client distrusts our certificate) just ends
                            // the connection, as it would on a real server.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
                conns.lock().unwrap().push(task);
            }
        });
        JwksServer {
            addr,
            state,
            accept,
            connections,
        }
    }

    /// The HTTPS URL, by the name the test certificate is issued for.
    pub fn url_https(&self) -> String {
        format!(
            "https://localhost:{}/.well-known/jwks.json",
            self.addr.port()
        )
    }

    pub fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub fn add_key(&self, key: Value) {
        self.state.keys.lock().unwrap().push(key);
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Stop listening and drop every open connection: later fetches get "connection refused".
    pub fn stop(&self) {
        self.accept.abort();
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn respond(
    state: Arc<ServerState>,
    _req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let mode = state.mode.lock().unwrap().clone();
    let response = match mode {
        Mode::Serve => {
            let body = json!({"keys": *state.keys.lock().unwrap()}).to_string();
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
        }
        Mode::Status(code) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap())
            .body(Full::new(Bytes::new())),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::builder().body(Full::new(Bytes::new()))
        }
        Mode::Redirect(to) => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", to)
            .body(Full::new(Bytes::new())),
        Mode::Oversized(padding) => {
            let body = json!({"keys": *state.keys.lock().unwrap(), "padding": "x".repeat(padding)})
                .to_string();
            Response::builder().body(Full::new(Bytes::from(body)))
        }
    };
    Ok(response.unwrap())
}

/// A provider config for the test issuer.
pub fn config(algorithms: Vec<Algorithm>, keys: KeySource) -> JwtProviderConfig {
    JwtProviderConfig::new(ISSUER, vec![AUDIENCE.to_owned()], algorithms, keys)
}

/// A config reading keys from `server`.
pub fn jwks_config(server: &JwksServer, algorithms: Vec<Algorithm>) -> JwtProviderConfig {
    config(
        algorithms,
        KeySource::JwksUrl {
            url: server.url(),
            ca_pem: None,
        },
    )
}

pub fn verifier(config: JwtProviderConfig) -> JwtVerifier {
    JwtVerifier::new(config).unwrap()
}

/// The refusal reason of a verification (panics if the token was accepted).
pub async fn reason(verifier: &JwtVerifier, token: &str) -> &'static str {
    match verifier.verify(token).await {
        Ok(identity) => panic!("token accepted as {identity:?}"),
        Err(e) => e.reason(),
    }
}
