//! Provider configuration: one [`JwtProviderConfig`] per token issuer, and where its keys come
//! from ([`KeySource`]). Everything here is plain data; [`validate`] turns a config into the
//! checked form the verifier runs on, refusing combinations that would weaken verification
//! (an HMAC algorithm next to public keys, a short HMAC secret, a plain-HTTP JWKS URL to a
//! remote host, no audience).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

/// Largest accepted token by default: real access tokens are 1–2 KiB; 8 KiB leaves room for
/// generous claim sets while bounding the work an unauthenticated client can cause.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default minimum spacing between two JWKS fetches (the unknown-`kid` refetch rate limit).
pub const DEFAULT_JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);
/// Default age after which a fetched JWKS is refreshed.
pub const DEFAULT_JWKS_CACHE_TTL: Duration = Duration::from_secs(300);
/// Default bound on the verification cache.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;

/// One JWT issuer the gateway trusts.
#[derive(Debug, Clone)]
pub struct JwtProviderConfig {
    /// The exact `iss` value tokens must carry.
    pub issuer: String,
    /// Accepted `aud` values: a token must name at least one of them. Must not be empty: a
    /// token minted for another service of the same IdP must not be accepted here.
    pub audiences: Vec<String>,
    /// Accepted `alg` values. HS256/384/512 only with [`KeySource::HmacSecret`], and then only
    /// HS*; `none` can never be listed (it has no [`Algorithm`] value).
    pub algorithms: Vec<Algorithm>,
    /// Where the verification keys come from.
    pub keys: KeySource,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Claims that must be present (and not `null`) besides `exp`, `iss`, `aud` and `sub`,
    /// which are always required.
    pub required_claims: Vec<String>,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_bytes: usize,
    /// Minimum spacing between two JWKS fetches, whatever triggers them (unknown `kid`,
    /// stale set, failed previous fetch): bounds the load attackers can put on the IdP.
    pub jwks_refresh_min_interval: Duration,
    /// A fetched JWKS older than this is refreshed in the background.
    pub jwks_cache_ttl: Duration,
    /// Bound on the verification cache (0 disables it).
    pub cache_max_entries: usize,
}

impl JwtProviderConfig {
    /// A config with the default leeway, limits and intervals.
    pub fn new(
        issuer: impl Into<String>,
        audiences: Vec<String>,
        algorithms: Vec<Algorithm>,
        keys: KeySource,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            algorithms,
            keys,
            leeway: DEFAULT_LEEWAY,
            required_claims: Vec::new(),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            jwks_refresh_min_interval: DEFAULT_JWKS_REFRESH_MIN_INTERVAL,
            jwks_cache_ttl: DEFAULT_JWKS_CACHE_TTL,
            cache_max_entries: DEFAULT_CACHE_MAX_ENTRIES,
        }
    }
}

/// Where a provider's verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A JWKS document fetched over HTTPS (plain HTTP only to a loopback address). `ca_pem`
    /// replaces the system roots with the CA certificates in that PEM file.
    JwksUrl {
        url: String,
        ca_pem: Option<PathBuf>,
    },
    /// Keys given in the configuration.
    Static(Vec<StaticKey>),
    /// A shared HMAC secret (HS256/384/512 only). At least as long as the hash output of the
    /// strongest configured algorithm (RFC 7518 §3.2).
    HmacSecret(Vec<u8>),
}

impl fmt::Debug for KeySource {
    // The HMAC secret must never reach a log line through `{:?}` of a config.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::JwksUrl { url, ca_pem } => f
                .debug_struct("JwksUrl")
                .field("url", url)
                .field("ca_pem", ca_pem)
                .finish(),
            KeySource::Static(keys) => f.debug_tuple("Static").field(keys).finish(),
            KeySource::HmacSecret(_) => f.debug_tuple("HmacSecret").field(&"[redacted]").finish(),
        }
    }
}

/// A public key given in the configuration.
#[derive(Debug, Clone)]
pub struct StaticKey {
    /// The `kid` tokens name this key by. For a JWK, `None` takes the JWK's own `kid`.
    pub kid: Option<String>,
    /// Restrict the key to one algorithm (e.g. PS256 only for an RSA key).
    pub alg: Option<Algorithm>,
    pub material: KeyMaterial,
}

impl StaticKey {
    /// A PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`).
    pub fn pem(kid: Option<String>, pem: impl Into<String>) -> Self {
        Self {
            kid,
            alg: None,
            material: KeyMaterial::Pem(pem.into()),
        }
    }

    /// A JWK (JSON text of one key object).
    pub fn jwk(json: impl Into<String>) -> Self {
        Self {
            kid: None,
            alg: None,
            material: KeyMaterial::Jwk(json.into()),
        }
    }
}

/// The encoding of a [`StaticKey`].
#[derive(Debug, Clone)]
pub enum KeyMaterial {
    /// PEM text of a public key; private keys and certificates are refused.
    Pem(String),
    /// JSON text of one public JWK (kty RSA, EC or OKP).
    Jwk(String),
}

/// Why a provider config cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtConfigError {
    #[error("issuer must not be empty")]
    EmptyIssuer,
    #[error("at least one audience is required")]
    NoAudience,
    #[error("at least one algorithm is required")]
    NoAlgorithm,
    #[error("algorithm {0:?} requires an HMAC secret key source")]
    HmacAlgorithmWithoutSecret(Algorithm),
    #[error("an HMAC secret key source only allows HS256/HS384/HS512, not {0:?}")]
    PublicKeyAlgorithmWithSecret(Algorithm),
    #[error("HMAC secret is {actual} bytes; {alg:?} needs at least {required}")]
    HmacSecretTooShort {
        alg: Algorithm,
        required: usize,
        actual: usize,
    },
    #[error("max_token_bytes must be greater than zero")]
    ZeroMaxTokenBytes,
    #[error("invalid JWKS URL {url:?}: {reason}")]
    JwksUrl { url: String, reason: String },
    #[error("JWKS CA file {path}: {reason}")]
    JwksCa { path: String, reason: String },
    #[error("static key #{index}: {reason}")]
    StaticKey { index: usize, reason: String },
    #[error("no static key can verify any of the configured algorithms")]
    NoUsableStaticKey,
    #[error("no JWT crypto provider is available")]
    NoCryptoProvider,
    #[error("TLS setup for the JWKS client: {0}")]
    Tls(String),
}

/// Minimum HMAC key length for an algorithm: the hash output size (RFC 7518 §3.2).
fn hmac_min_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

/// Check the parts of a config that do not depend on loading keys.
pub(crate) fn validate(config: &JwtProviderConfig) -> Result<(), JwtConfigError> {
    if config.issuer.is_empty() {
        return Err(JwtConfigError::EmptyIssuer);
    }
    if config.audiences.is_empty() || config.audiences.iter().any(String::is_empty) {
        return Err(JwtConfigError::NoAudience);
    }
    if config.algorithms.is_empty() {
        return Err(JwtConfigError::NoAlgorithm);
    }
    if config.max_token_bytes == 0 {
        return Err(JwtConfigError::ZeroMaxTokenBytes);
    }
    match &config.keys {
        KeySource::HmacSecret(secret) => {
            for &alg in &config.algorithms {
                // Mixing HS* with public-key algorithms is what makes the RS256→HS256
                // confusion attack possible, so an HMAC provider is HMAC only.
                if alg.family() != AlgorithmFamily::Hmac {
                    return Err(JwtConfigError::PublicKeyAlgorithmWithSecret(alg));
                }
                let required = hmac_min_len(alg);
                if secret.len() < required {
                    return Err(JwtConfigError::HmacSecretTooShort {
                        alg,
                        required,
                        actual: secret.len(),
                    });
                }
            }
        }
        KeySource::JwksUrl { .. } | KeySource::Static(_) => {
            if let Some(&alg) = config
                .algorithms
                .iter()
                .find(|a| a.family() == AlgorithmFamily::Hmac)
            {
                return Err(JwtConfigError::HmacAlgorithmWithoutSecret(alg));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(algs: Vec<Algorithm>, keys: KeySource) -> JwtProviderConfig {
        JwtProviderConfig::new("https://issuer", vec!["api".into()], algs, keys)
    }

    #[test]
    fn hmac_and_public_key_algorithms_never_mix() {
        let c = cfg(vec![Algorithm::RS256], KeySource::HmacSecret(vec![7; 64]));
        assert_eq!(
            validate(&c),
            Err(JwtConfigError::PublicKeyAlgorithmWithSecret(
                Algorithm::RS256
            ))
        );
        let c = cfg(
            vec![Algorithm::RS256, Algorithm::HS256],
            KeySource::Static(vec![]),
        );
        assert_eq!(
            validate(&c),
            Err(JwtConfigError::HmacAlgorithmWithoutSecret(Algorithm::HS256))
        );
    }

    #[test]
    fn short_hmac_secret_is_refused() {
        let c = cfg(vec![Algorithm::HS512], KeySource::HmacSecret(vec![7; 32]));
        assert!(matches!(
            validate(&c),
            Err(JwtConfigError::HmacSecretTooShort { required: 64, .. })
        ));
    }

    #[test]
    fn audience_is_required() {
        let mut c = cfg(vec![Algorithm::HS256], KeySource::HmacSecret(vec![7; 32]));
        c.audiences.clear();
        assert_eq!(validate(&c), Err(JwtConfigError::NoAudience));
    }

    #[test]
    fn hmac_secret_is_not_debug_printed() {
        let k = KeySource::HmacSecret(b"super-secret-value".to_vec());
        assert!(!format!("{k:?}").contains("super"));
    }
}
