//! JWT bearer tokens: signature verification (JWS compact form), claim validation, JWKS
//! fetching and a verification cache, turning a token into an [`Identity`].
//!
//! One [`JwtVerifier`] serves one trusted issuer ([`JwtProviderConfig`]). Keys come from a
//! JWKS URL, from static PEM/JWK keys, or from one HMAC secret ([`KeySource`]). Signatures are
//! checked by `jsonwebtoken` on the aws-lc-rs backend; this module never does crypto itself.
//! Everything else — parsing, header policy, key selection, claim checks — is done here on the
//! raw token, so that no library default decides what we accept.
//!
//! # What is refused, and why
//!
//! Checks run in this order; the first failure decides the [`AuthError`] reason (the event
//! code). Everything up to and including the header policy happens *before any key lookup*,
//! so a hostile token costs neither a signature operation nor a JWKS fetch.
//!
//! | reason | refused token | why |
//! |---|---|---|
//! | `token_too_large` | longer than `max_token_bytes` (8 KiB default) | bounds parsing work and memory per request; checked before anything else |
//! | `malformed` | not exactly 3 `.`-separated segments; empty header/payload; base64url that is padded, non-canonical or not base64url; header/payload not a UTF-8 JSON object, or with trailing bytes; `alg`/`kid` not strings | anything not strictly RFC 7515/7519 is an attack or a bug; strictness removes parser differentials |
//! | `duplicate_claim` | a duplicate member name anywhere in the header or payload JSON (after unescaping, so `"s\u0075b"` duplicates `"sub"`) | serde_json keeps the last duplicate, other parsers the first: `{"sub":"alice","sub":"admin"}` would mean different principals to different readers |
//! | `alg_not_allowed` | `alg` `none` in any case (`none`, `None`, `NONE`, `nOnE`…); an `alg` not in the provider's list (exact, case-sensitive); a `kid` naming a key whose type cannot do this `alg` | `none` disables the signature; the provider, not the token, picks algorithms. HS* is only configurable with an HMAC secret and then alone, and a key's *type* decides what it verifies (RSA: RS*/PS*; P-256: ES256; P-384: ES384; Ed25519: EdDSA; HMAC: HS*), so an RS256 provider can never be fooled into an HMAC check keyed with its public key (the RS256→HS256 confusion attack) |
//! | `embedded_key` | header `jwk`, `jku`, `x5u` or `x5c` present | a token must not choose the key that verifies it (CVE-2018-0114); `jku`/`x5u` would also make the gateway fetch attacker URLs (SSRF). They are never dereferenced |
//! | `unknown_crit` | any `crit` header | RFC 7515 §4.1.11: extensions we do not implement (we implement none, not even `b64`) must cause rejection |
//! | `unknown_kid` | no key with this `kid` (after at most one rate-limited JWKS refetch); no `kid` and not exactly one key usable for the `alg` | `kid` is an opaque map key, compared for equality and never used as a path, URL or query: `../../../../dev/null` or `' OR '1'='1` simply match nothing. At most one key is ever tried per token (trying them all would multiply the signature work an attacker can cause); the only fallback is a set with exactly one kid-less key usable for the `alg`, which also serves tokens whose `kid` names nothing (a configured key often omits the IdP's `kid`). HMAC providers ignore `kid`: there is one secret |
//! | `invalid_signature` | signature does not verify (tampered header or payload, wrong key, empty or truncated signature, ECDSA with r = 0 or s = 0 — the "psychic signature" CVE-2022-21449, which aws-lc rejects) | |
//! | `invalid_claim_type` | `exp`/`nbf`/`iat` not JSON numbers (a string `"exp":"9999999999"` is refused, never coerced); `iss`/`sub`/`jti` not strings; `aud` not a string or array of strings; `scope` not a string; `scp` not a string or array of strings | claims are read from the raw JSON, so no deserializer leniency can turn a string into a date |
//! | `missing_claim` | no `exp`, `iss`, `aud` or `sub` (or an empty `sub`); a configured required claim absent or `null` | a token that never expires, or names nobody, is not a bearer credential we accept |
//! | `expired` | `now - leeway >= exp` | RFC 7519 §4.1.4 |
//! | `not_yet_valid` | `now + leeway < nbf` | RFC 7519 §4.1.5 |
//! | `issued_in_future` | `iat > now + leeway` | a skewed or forged issuance time |
//! | `wrong_issuer` | `iss` not byte-for-byte the configured issuer | no normalisation that a look-alike issuer could exploit |
//! | `wrong_audience` | no `aud` entry equal to a configured audience | a token for another service of the same IdP is not for us; a provider must configure at least one audience |
//!
//! Signature verification happens before the claim checks, so a tampered payload is
//! `invalid_signature` whatever it claims. JWKS down with no key set ever loaded →
//! [`AuthError::Unavailable`] `jwks_unavailable` (fail closed, and not the client's fault).
//!
//! # Keys
//!
//! JWKS keys of kty `RSA` (2048–8192 bits), `EC` (P-256, P-384, point checked on the curve) and
//! `OKP` (Ed25519) are used; keys with `use` other than `sig`, `key_ops` without `verify`, an
//! unknown `alg`, or another kty are ignored; keys whose `alg` conflicts with their type, that
//! carry private parameters (`d`…), or that are symmetric (`oct`) are refused with a warning.
//! Fetch bounds, refresh and rate limiting are described in the `jwks` submodule: at most one
//! fetch per `jwks_refresh_min_interval` whatever the traffic, 2 s timeout, 256 KiB body, no
//! redirects, and the last good set survives an outage.
//!
//! # Verification cache
//!
//! A verified token is remembered (the whole token, found by a keyed hash and compared in full
//! in constant time) until its `exp`, bounded to `cache_max_entries`; a repeat skips parsing
//! and the signature check. A hit is re-checked against the clock (`exp`, `nbf`) and against
//! the current key set (a key withdrawn from the JWKS stops vouching for its cached tokens).
//! Failures are never cached. A hit shares the cached [`Identity`] (`Arc`): nothing about the
//! token is copied, parsed or hashed with SHA-256 again.

mod cache;
mod claims;
mod config;
mod jwks;
mod keys;
mod token;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use jsonwebtoken::Algorithm;

use self::cache::{Entry, VerificationCache};
use self::claims::{ClaimPolicy, Validated};
pub use self::config::{
    DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_JWKS_CACHE_TTL, DEFAULT_JWKS_REFRESH_MIN_INTERVAL,
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_BYTES, JwtConfigError, JwtProviderConfig, KeyMaterial,
    KeySource, StaticKey,
};
use self::jwks::JwksSource;
use self::keys::{KeySet, Lookup, VerifyKey};
use crate::{AuthError, Identity};

/// Why a token was refused: one variant per stable event reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("malformed token")]
    Malformed,
    #[error("token larger than the configured maximum")]
    TokenTooLarge,
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    #[error("key embedded in or referenced by the token header")]
    EmbeddedKey,
    #[error("critical header extension not understood")]
    UnknownCrit,
    #[error("no key for this kid")]
    UnknownKid,
    #[error("signature does not verify")]
    InvalidSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token issued in the future")]
    IssuedInFuture,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("required claim missing")]
    MissingClaim,
    #[error("claim of the wrong JSON type")]
    InvalidClaimType,
    #[error("duplicate member in header or payload")]
    DuplicateClaim,
    #[error("JWKS unavailable and no key set cached")]
    JwksUnavailable,
}

impl Rejection {
    fn reason(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::TokenTooLarge => "token_too_large",
            Rejection::AlgNotAllowed => "alg_not_allowed",
            Rejection::EmbeddedKey => "embedded_key",
            Rejection::UnknownCrit => "unknown_crit",
            Rejection::UnknownKid => "unknown_kid",
            Rejection::InvalidSignature => "invalid_signature",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::IssuedInFuture => "issued_in_future",
            Rejection::WrongIssuer => "wrong_issuer",
            Rejection::WrongAudience => "wrong_audience",
            Rejection::MissingClaim => "missing_claim",
            Rejection::InvalidClaimType => "invalid_claim_type",
            Rejection::DuplicateClaim => "duplicate_claim",
            Rejection::JwksUnavailable => "jwks_unavailable",
        }
    }
}

impl From<Rejection> for AuthError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::JwksUnavailable => AuthError::Unavailable { reason: r.reason() },
            _ => AuthError::Invalid { reason: r.reason() },
        }
    }
}

/// The wall clock used for `exp`/`nbf`/`iat`; replaceable for tests.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Counters for tests and diagnostics.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JwtStats {
    /// Signature checks performed (cache hits do none).
    pub signature_verifications: u64,
    /// Tokens answered from the verification cache.
    pub cache_hits: u64,
    /// JWKS fetch attempts, and how many of them failed.
    pub jwks_fetch_attempts: u64,
    pub jwks_fetch_failures: u64,
    /// Entries in the verification cache.
    pub cached_tokens: usize,
}

enum Keys {
    /// An HMAC provider's one secret: any `kid` is ignored (there is nothing to choose).
    Hmac(Arc<VerifyKey>),
    Fixed(Arc<KeySet>),
    Jwks(Arc<JwksSource>),
}

struct Inner {
    config: JwtProviderConfig,
    policy: ClaimPolicy,
    keys: Keys,
    cache: VerificationCache,
    clock: Clock,
    signature_verifications: AtomicU64,
    cache_hits: AtomicU64,
}

/// Verifies bearer tokens of one provider. Cheap to clone (shared state).
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.inner.config.issuer)
            .field("keys", &self.inner.config.keys)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// Check the config and load static keys. A JWKS is fetched on first use (or by
    /// [`JwtVerifier::refresh_keys`]), not here, so a down IdP does not stop the gateway.
    pub fn new(config: JwtProviderConfig) -> Result<Self, JwtConfigError> {
        Self::with_clock(config, Arc::new(SystemTime::now))
    }

    /// [`JwtVerifier::new`] with a custom wall clock.
    pub fn with_clock(config: JwtProviderConfig, clock: Clock) -> Result<Self, JwtConfigError> {
        config::validate(&config)?;
        ensure_crypto_provider()?;
        let keys = match &config.keys {
            KeySource::HmacSecret(secret) => {
                let key = VerifyKey::hmac(secret)
                    .map_err(|reason| JwtConfigError::StaticKey { index: 0, reason })?;
                Keys::Hmac(Arc::new(key))
            }
            KeySource::Static(list) => {
                Keys::Fixed(Arc::new(load_static(list, &config.algorithms)?))
            }
            KeySource::JwksUrl { url, ca_pem } => Keys::Jwks(Arc::new(JwksSource::new(
                url,
                ca_pem.as_deref(),
                config.jwks_refresh_min_interval,
                config.jwks_cache_ttl,
            )?)),
        };
        let policy = ClaimPolicy {
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            required: config.required_claims.clone(),
            leeway_secs: config.leeway.as_secs_f64(),
        };
        let cache = VerificationCache::new(config.cache_max_entries);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                policy,
                keys,
                cache,
                clock,
                signature_verifications: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
            }),
        })
    }

    /// The provider config this verifier runs.
    pub fn config(&self) -> &JwtProviderConfig {
        &self.inner.config
    }

    /// Verify a bearer token (the part after `Bearer `, untrimmed) and return the caller.
    ///
    /// The identity is shared with the verification cache: a hit hands out the cached
    /// `Arc` instead of copying every claim for each request.
    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, AuthError> {
        let result = self.verify_inner(token).await;
        match &result {
            Ok(identity) => tracing::trace!(principal = %identity.principal, "JWT accepted"),
            // Never log the token itself: it is a bearer credential.
            Err(rejection) => tracing::debug!(reason = rejection.reason(), "JWT refused"),
        }
        result.map_err(AuthError::from)
    }

    /// The synchronous fast path: `Some` when the answer is known without any I/O — a cached
    /// verification (re-checked against the clock and key set) or an oversized token; `None`
    /// means call [`JwtVerifier::verify`].
    pub fn verify_cached(&self, token: &str) -> Option<Result<Arc<Identity>, AuthError>> {
        if token.len() > self.inner.config.max_token_bytes {
            return Some(Err(Rejection::TokenTooLarge.into()));
        }
        self.cached(token, self.now())
            .map(|r| r.map_err(AuthError::from))
    }

    /// Fetch the JWKS now (subject to the refresh rate limit), e.g. at startup so the first
    /// request does not wait. No-op for static and HMAC keys.
    pub async fn refresh_keys(&self) -> Result<(), AuthError> {
        match &self.inner.keys {
            Keys::Hmac(_) | Keys::Fixed(_) => Ok(()),
            Keys::Jwks(source) => {
                source.refresh(source.attempts()).await;
                match source.current() {
                    Some(_) => Ok(()),
                    None => Err(Rejection::JwksUnavailable.into()),
                }
            }
        }
    }

    /// Counters for tests and diagnostics.
    #[doc(hidden)]
    pub fn stats(&self) -> JwtStats {
        let (attempts, failures) = match &self.inner.keys {
            Keys::Hmac(_) | Keys::Fixed(_) => (0, 0),
            Keys::Jwks(source) => (source.attempts(), source.failures()),
        };
        JwtStats {
            signature_verifications: self.inner.signature_verifications.load(Ordering::Relaxed),
            cache_hits: self.inner.cache_hits.load(Ordering::Relaxed),
            jwks_fetch_attempts: attempts,
            jwks_fetch_failures: failures,
            cached_tokens: self.inner.cache.len(),
        }
    }

    fn now(&self) -> f64 {
        // A clock before 1970 reads as 0: every token then looks not-yet-valid or fine, never
        // a panic.
        (self.inner.clock)()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    async fn verify_inner(&self, token: &str) -> Result<Arc<Identity>, Rejection> {
        let inner = &*self.inner;
        // Before hashing, parsing or anything else proportional to the input.
        if token.len() > inner.config.max_token_bytes {
            return Err(Rejection::TokenTooLarge);
        }
        let now = self.now();
        if let Some(result) = self.cached(token, now) {
            return result;
        }

        let parsed = token::parse(token, &inner.config.algorithms)?;
        let key = self.resolve_key(parsed.kid.as_deref(), parsed.alg).await?;

        inner
            .signature_verifications
            .fetch_add(1, Ordering::Relaxed);
        let verified = jsonwebtoken::crypto::verify(
            parsed.signature_b64,
            parsed.signing_input.as_bytes(),
            &key.key,
            parsed.alg,
        );
        if !matches!(verified, Ok(true)) {
            return Err(Rejection::InvalidSignature);
        }

        // Read the clock again: the key lookup may have waited (up to the 2 s fetch timeout)
        // for a JWKS fetch.
        let now = self.now();
        let validated = claims::validate(parsed.claims, &inner.policy, now)?;
        let identity = Arc::clone(&validated.identity);
        inner.cache.insert(
            Entry {
                token: token.into(),
                validated,
                key_fingerprint: key.fingerprint,
            },
            now,
            inner.policy.leeway_secs,
        );
        Ok(identity)
    }

    /// A cache hit, re-checked: `None` on a miss (or a hit whose key is gone), so the caller
    /// verifies in full.
    fn cached(&self, token: &str, now: f64) -> Option<Result<Arc<Identity>, Rejection>> {
        let inner = &*self.inner;
        let entry = inner.cache.get(token)?;
        let Validated { identity, exp, nbf } = &entry.validated;
        let leeway = inner.policy.leeway_secs;
        if claims::is_expired(*exp, now, leeway) {
            inner.cache.remove(token);
            return Some(Err(Rejection::Expired));
        }
        if claims::is_not_yet_valid(*nbf, now, leeway) {
            // Only reachable if the clock went backwards since caching.
            return Some(Err(Rejection::NotYetValid));
        }
        if let Keys::Jwks(source) = &inner.keys {
            let still_published = source.current().is_some_and(|(set, stale)| {
                if stale {
                    source.refresh_in_background();
                }
                set.contains(&entry.key_fingerprint)
            });
            if !still_published {
                inner.cache.remove(token);
                return None;
            }
        }
        inner.cache_hits.fetch_add(1, Ordering::Relaxed);
        Some(Ok(Arc::clone(identity)))
    }

    /// Find the key for `(kid, alg)`, fetching the JWKS when there is none yet, refreshing a
    /// stale one in the background, and refetching once (rate-limited) for an unknown `kid`.
    async fn resolve_key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<VerifyKey>, Rejection> {
        let source = match &self.inner.keys {
            // Config validation allows only HS* next to a secret; re-checked anyway so the
            // secret can never be used for another algorithm.
            Keys::Hmac(key) if key.accepts(alg) => return Ok(Arc::clone(key)),
            Keys::Hmac(_) => return Err(Rejection::AlgNotAllowed),
            Keys::Fixed(set) => return found(set.lookup(kid, alg)),
            Keys::Jwks(source) => source,
        };
        let seen = source.attempts();
        let set = match source.current() {
            Some((set, stale)) => {
                if stale {
                    source.refresh_in_background();
                }
                set
            }
            None => {
                source.refresh(seen).await;
                source
                    .current()
                    .map(|(set, _)| set)
                    .ok_or(Rejection::JwksUnavailable)?
            }
        };
        match found(set.lookup(kid, alg)) {
            Err(Rejection::UnknownKid) => {}
            other => return other,
        }
        // Maybe the IdP rotated keys: refetch, unless a fetch happened very recently (the rate
        // limit is what keeps random-kid floods from reaching the IdP).
        let seen = source.attempts();
        source.refresh(seen).await;
        match source.current() {
            Some((set, _)) => found(set.lookup(kid, alg)),
            None => Err(Rejection::JwksUnavailable),
        }
    }
}

fn found(lookup: Lookup<'_>) -> Result<Arc<VerifyKey>, Rejection> {
    match lookup {
        Lookup::Found(key) => Ok(Arc::clone(key)),
        Lookup::WrongType => Err(Rejection::AlgNotAllowed),
        Lookup::NotFound => Err(Rejection::UnknownKid),
    }
}

fn load_static(list: &[StaticKey], algorithms: &[Algorithm]) -> Result<KeySet, JwtConfigError> {
    let mut keys = Vec::with_capacity(list.len());
    for (index, item) in list.iter().enumerate() {
        let err = |reason: String| JwtConfigError::StaticKey { index, reason };
        let mut key = match &item.material {
            KeyMaterial::Pem(pem) => {
                keys::parse_pem(item.kid.clone(), item.alg, pem).map_err(err)?
            }
            KeyMaterial::Jwk(json) => {
                let value = token::parse_object(json.as_bytes())
                    .map(serde_json::Value::Object)
                    .map_err(|_| err("not a JSON object (or has duplicate members)".to_owned()))?;
                keys::parse_jwk(&value, item.kid.clone())
                    .map_err(err)?
                    .ok_or_else(|| err("not a signature key".to_owned()))?
            }
        };
        if let Some(alg) = item.alg {
            if !key.kind.accepts(alg) || key.alg.is_some_and(|a| a != alg) {
                return Err(err(format!("alg {alg:?} conflicts with the key")));
            }
            key.alg = Some(alg);
        }
        keys.push(key);
    }
    let set = KeySet::new(keys);
    if !algorithms.iter().any(|&alg| set.any_accepts(alg)) {
        return Err(JwtConfigError::NoUsableStaticKey);
    }
    Ok(set)
}

/// `jsonwebtoken` picks its crypto backend from its cargo features; if feature unification
/// ever enabled both backends it would have no default and panic on first use. Install the
/// aws-lc-rs one explicitly in that case, and refuse to start if there is still none.
fn ensure_crypto_provider() -> Result<(), JwtConfigError> {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some() {
        return Ok(());
    }
    // Err means another thread installed one meanwhile, which is as good.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    match jsonwebtoken::crypto::CryptoProvider::try_get_default() {
        Some(_) => Ok(()),
        None => Err(JwtConfigError::NoCryptoProvider),
    }
}
