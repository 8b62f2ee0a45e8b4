//! The JWKS source: fetching the IdP's key set over HTTPS, keeping the last good one, and
//! deciding when to fetch again.
//!
//! Fetching is the one thing a token can make the gateway do towards the IdP, so it is
//! fenced in:
//! - every fetch, whatever asked for it (first use, stale set, unknown `kid`), is at least
//!   `jwks_refresh_min_interval` after the previous attempt, successful or not — 50 tokens
//!   with random `kid`s cause at most one fetch;
//! - fetches are single-flight: concurrent callers wait for the fetch in progress instead of
//!   starting their own, and a caller that waited does not fetch again;
//! - a fetch is bounded: 2 s for the whole exchange, 256 KiB of body, no redirects (the
//!   legacy client never follows them, and a non-200 status is a failure), HTTPS with the
//!   system roots or the configured CA only (plain HTTP only to loopback, for tests and
//!   sidecars);
//! - a failed fetch (unreachable, timeout, 500, unparsable, no usable key) keeps the last good
//!   key set: an IdP outage does not log everybody out.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::config::JwtConfigError;
use super::keys::{KeySet, parse_jwks};

/// Whole-exchange bound on one JWKS fetch (connect, TLS, request, body).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest JWKS body read; real ones are a few KiB.
pub(crate) const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a JWKS fetch failed (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("unexpected status {0}")]
    Status(http::StatusCode),
    #[error("body larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("body read failed: {0}")]
    Body(String),
    #[error("invalid JWKS: {0}")]
    Invalid(String),
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

#[derive(Debug)]
struct Loaded {
    keys: Arc<KeySet>,
    fetched_at: Instant,
}

/// Sentinel for "never attempted" in `last_attempt_ms`.
const NEVER: u64 = u64::MAX;

pub(crate) struct JwksSource {
    url: Uri,
    client: HttpsClient,
    min_interval: Duration,
    ttl: Duration,
    loaded: RwLock<Option<Loaded>>,
    /// Held for the duration of a fetch: the single-flight gate.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Fetch attempts so far: lets a caller that waited on `fetch_lock` see that a fetch
    /// happened meanwhile.
    attempts: AtomicU64,
    failures: AtomicU64,
    /// Milliseconds since `epoch` of the last attempt (`NEVER` before the first): a lock-free
    /// rate-limit check on the hot path.
    last_attempt_ms: AtomicU64,
    epoch: Instant,
    /// A background refresh task is running.
    background: AtomicBool,
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl JwksSource {
    pub(crate) fn new(
        url: &str,
        ca_pem: Option<&Path>,
        min_interval: Duration,
        ttl: Duration,
    ) -> Result<Self, JwtConfigError> {
        let uri = check_url(url)?;
        let tls = client_tls_config(ca_pem)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            // JWKS fetches are minutes apart: a pooled connection would only go stale (and
            // keep a socket to the IdP open for nothing).
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(Self {
            url: uri,
            client,
            min_interval,
            ttl,
            loaded: RwLock::new(None),
            fetch_lock: tokio::sync::Mutex::new(()),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_attempt_ms: AtomicU64::new(NEVER),
            epoch: Instant::now(),
            background: AtomicBool::new(false),
        })
    }

    pub(crate) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Acquire)
    }

    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The current key set, if any fetch ever succeeded, and whether it is past its TTL.
    pub(crate) fn current(&self) -> Option<(Arc<KeySet>, bool)> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        loaded
            .as_ref()
            .map(|l| (Arc::clone(&l.keys), l.fetched_at.elapsed() >= self.ttl))
    }

    /// Whether the rate limit allows a fetch now.
    fn may_attempt(&self) -> bool {
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        if last == NEVER {
            return true;
        }
        let now_ms = duration_ms(self.epoch.elapsed());
        now_ms.saturating_sub(last) >= duration_ms(self.min_interval)
    }

    /// Fetch the key set unless someone else fetched since the caller observed
    /// `seen_attempts`, or the rate limit forbids it. Returns when the set is as fresh as it
    /// will get for now.
    pub(crate) async fn refresh(&self, seen_attempts: u64) {
        // Always take the lock, even when the rate limit will refuse: a fetch in flight holds
        // it, and a caller that finds no key set must wait for that fetch's result rather
        // than fail at once. Uncontended, the lock costs next to nothing.
        let _guard = self.fetch_lock.lock().await;
        if self.attempts() != seen_attempts || !self.may_attempt() {
            return;
        }
        self.last_attempt_ms
            .store(duration_ms(self.epoch.elapsed()), Ordering::Release);
        let result = self.fetch().await;
        match result {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS loaded");
                let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
                *loaded = Some(Loaded {
                    keys: Arc::new(keys),
                    fetched_at: Instant::now(),
                });
            }
            Err(error) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let keeping = self.current().is_some();
                tracing::warn!(url = %self.url, %error, keeping_last_good_set = keeping, "JWKS fetch failed");
            }
        }
        // Bumped last, under the lock: a waiter that sees the new count also sees the new set.
        self.attempts.fetch_add(1, Ordering::AcqRel);
    }

    /// Refresh a stale set without making the current request wait for it.
    pub(crate) fn refresh_in_background(self: &Arc<Self>) {
        if !self.may_attempt() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let source = Arc::clone(self);
        let seen = source.attempts();
        handle.spawn(async move {
            source.refresh(seen).await;
            source.background.store(false, Ordering::Release);
        });
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let exchange = async {
            let request = http::Request::get(self.url.clone())
                .header(
                    http::header::ACCEPT,
                    "application/jwk-set+json, application/json",
                )
                .header(http::header::USER_AGENT, "portcullis-jwks")
                .body(Empty::<Bytes>::new())
                .map_err(|e| FetchError::Request(e.to_string()))?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Request(e.to_string()))?;
            // Redirects are failures: following one would let whoever controls the redirect
            // target choose our keys.
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status()));
            }
            let declared = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > MAX_JWKS_BYTES as u64) {
                return Err(FetchError::TooLarge);
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Body(e.to_string())
                    }
                })?
                .to_bytes();
            parse_jwks(&body).map_err(FetchError::Invalid)
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .map_err(|_| FetchError::Timeout(FETCH_TIMEOUT))?
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX - 1)
}

/// HTTPS anywhere; plain HTTP only to a loopback host, where there is no network to tamper
/// with the keys in transit.
fn check_url(url: &str) -> Result<Uri, JwtConfigError> {
    let err = |reason: &str| JwtConfigError::JwksUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = url.parse().map_err(|_| err("not a valid URL"))?;
    let host = uri.host().ok_or_else(|| err("no host"))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(err(
            "plain http is only allowed to a loopback address; use https",
        )),
        _ => Err(err("scheme must be https")),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// rustls with the aws-lc-rs provider, TLS 1.2+, trusting the configured CA bundle only, or
/// else the system roots.
fn client_tls_config(ca_pem: Option<&Path>) -> Result<rustls::ClientConfig, JwtConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(path) => {
            let err = |reason: String| JwtConfigError::JwksCa {
                path: path.display().to_string(),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| err(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| err(e.to_string()))?;
            if certs.is_empty() {
                return Err(err("no certificate found".to_owned()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| err(e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One unparsable system certificate must not disable JWT auth; it is just not
                // trusted.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                tracing::warn!("no system CA certificates found: HTTPS JWKS fetches will fail");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| JwtConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url("https://idp.example/jwks").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("http://[::1]:8080/jwks").is_ok());
        assert!(check_url("http://localhost/jwks").is_ok());
        assert!(check_url("http://idp.example/jwks").is_err());
        assert!(check_url("http://10.0.0.1/jwks").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
        assert!(check_url("/jwks").is_err());
    }
}
