//! The identity token the gateway signs for upstreams: a short-lived JWT (ES256 or EdDSA)
//! naming the verified caller, so services behind the gateway stay stateless and can check
//! who called without talking to the identity provider. Its public key is published as a
//! JWKS on the admin API (and optionally on a public path).
//!
//! Signing costs tens of microseconds, so a token is reused for the same caller for half its
//! lifetime: the claims name the caller, not the request (the request id travels in
//! `X-Request-Id`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_identity::Identity;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamTokenError {
    #[error("cannot read the signing key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("cannot generate a signing key")]
    Generate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
}

/// Signs identity tokens; built once per config snapshot.
pub struct UpstreamSigner {
    alg: SigningAlgorithm,
    key: EncodingKey,
    kid: String,
    jwks: serde_json::Value,
    issuer: String,
    audience: Option<String>,
    ttl: Duration,
    /// Caller key → (the token as a ready header value, its `exp`). A `HeaderValue` is
    /// shared bytes, so a hit hands out a reference count, not a copy of the token.
    cache: Mutex<HashMap<String, (HeaderValue, u64)>>,
}

impl std::fmt::Debug for UpstreamSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamSigner")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    sub: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    /// How the caller authenticated at the gateway.
    amr: [&'a str; 1],
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_id: Option<&'a str>,
}

const MAX_CACHED: usize = 10_000;

impl UpstreamSigner {
    /// Load a PKCS#8 PEM key, or generate one when `key` is None.
    pub fn new(
        alg: SigningAlgorithm,
        key: Option<&Path>,
        issuer: String,
        audience: Option<String>,
        ttl: Duration,
    ) -> Result<Self, UpstreamTokenError> {
        let pkcs8 = match key {
            Some(path) => read_pkcs8(path)?,
            None => generate_pkcs8(alg)?,
        };
        let (public, encoding) = match alg {
            SigningAlgorithm::ES256 => {
                let kp = signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                )
                .map_err(|e| key_err(key, &e.to_string()))?;
                (
                    kp.public_key().as_ref().to_vec(),
                    EncodingKey::from_ec_der(&pkcs8),
                )
            }
            SigningAlgorithm::EdDSA => {
                let kp = signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
                    .map_err(|e| key_err(key, &e.to_string()))?;
                (
                    kp.public_key().as_ref().to_vec(),
                    EncodingKey::from_ed_der(&pkcs8),
                )
            }
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        let jwk = match alg {
            // Uncompressed point: 0x04 || x (32) || y (32).
            SigningAlgorithm::ES256 => serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(public.get(1..33).unwrap_or_default()),
                "y": URL_SAFE_NO_PAD.encode(public.get(33..65).unwrap_or_default()),
            }),
            SigningAlgorithm::EdDSA => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&public),
            }),
        };
        Ok(UpstreamSigner {
            alg,
            key: encoding,
            kid,
            jwks: serde_json::json!({ "keys": [jwk] }),
            issuer,
            audience,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The public key set upstreams verify with.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// A token for `identity`, as the header value sent upstream, reused while more than
    /// half its lifetime remains.
    pub fn token_for(&self, identity: &Identity) -> Option<HeaderValue> {
        let now = unix_now();
        let method = match identity.method {
            portcullis_identity::AuthMethod::ApiKey => "api_key",
            portcullis_identity::AuthMethod::Basic => "pwd",
            portcullis_identity::AuthMethod::Jwt => "jwt",
            portcullis_identity::AuthMethod::Introspection => "introspection",
            portcullis_identity::AuthMethod::Mtls => "mtls",
        };
        let cache_key = cache_key(method, identity);
        let ttl = self.ttl.as_secs().max(2);
        if let Ok(cache) = self.cache.lock()
            && let Some((token, exp)) = cache.get(&cache_key)
            && *exp > now + ttl / 2
        {
            return Some(token.clone());
        }
        let scope = identity.scopes.join(" ");
        let claims = Claims {
            iss: &self.issuer,
            aud: self.audience.as_deref(),
            sub: &identity.principal,
            iat: now,
            exp: now + ttl,
            jti: format!("{:032x}", rand::random::<u128>()),
            amr: [method],
            scope: &scope,
            credential_id: identity.credential_id.as_deref(),
        };
        let mut header = Header::new(match self.alg {
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::EdDSA => Algorithm::EdDSA,
        });
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key).ok()?;
        // A compact JWS is base64url and dots: always a valid header value.
        let token = HeaderValue::try_from(token).ok()?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (_, exp)| *exp > now + ttl / 2);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(cache_key, (token.clone(), now + ttl));
        }
        Some(token)
    }
}

/// What a cached token stands for: everything its claims say about the caller, NUL-separated
/// (NUL cannot occur in any of them, so two different callers never share a key). Built
/// with one allocation, no formatting machinery: this runs on every request that carries the
/// token.
fn cache_key(method: &str, identity: &Identity) -> String {
    let credential_id = identity.credential_id.as_deref().unwrap_or("");
    let scopes_len: usize = identity.scopes.iter().map(|s| s.len() + 1).sum();
    let mut key = String::with_capacity(
        method.len() + identity.principal.len() + credential_id.len() + scopes_len + 3,
    );
    for part in [method, identity.principal.as_str(), credential_id] {
        key.push_str(part);
        key.push('\0');
    }
    for scope in &identity.scopes {
        key.push_str(scope);
        key.push(' ');
    }
    key
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn key_err(path: Option<&Path>, reason: &str) -> UpstreamTokenError {
    UpstreamTokenError::Key {
        path: path.map_or_else(|| "(generated)".into(), |p| p.display().to_string()),
        reason: reason.to_string(),
    }
}

fn read_pkcs8(path: &Path) -> Result<Vec<u8>, UpstreamTokenError> {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject;
    PrivatePkcs8KeyDer::from_pem_file(path)
        .map(|k| k.secret_pkcs8_der().to_vec())
        .map_err(|e| key_err(Some(path), &e.to_string()))
}

fn generate_pkcs8(alg: SigningAlgorithm) -> Result<Vec<u8>, UpstreamTokenError> {
    match alg {
        SigningAlgorithm::ES256 => {
            let kp = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| UpstreamTokenError::Generate)?;
            kp.to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| UpstreamTokenError::Generate)
        }
        SigningAlgorithm::EdDSA => {
            let kp =
                signature::Ed25519KeyPair::generate().map_err(|_| UpstreamTokenError::Generate)?;
            kp.to_pkcs8()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| UpstreamTokenError::Generate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    fn identity() -> Identity {
        Identity {
            method: portcullis_identity::AuthMethod::Jwt,
            principal: "alice".into(),
            credential_id: Some("t-1".into()),
            scopes: vec!["orders:read".into()],
            claims: Default::default(),
            tier: None,
        }
    }

    #[test]
    fn tokens_verify_against_the_published_jwks() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::EdDSA] {
            let signer = UpstreamSigner::new(
                alg,
                None,
                "portcullis".into(),
                Some("orders".into()),
                Duration::from_secs(60),
            )
            .unwrap();
            let token = signer.token_for(&identity()).unwrap();
            let token = token.to_str().unwrap().to_owned();
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(signer.jwks()["keys"][0].clone()).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = Validation::new(match alg {
                SigningAlgorithm::ES256 => Algorithm::ES256,
                SigningAlgorithm::EdDSA => Algorithm::EdDSA,
            });
            v.set_audience(&["orders"]);
            v.set_issuer(&["portcullis"]);
            let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).unwrap();
            assert_eq!(data.claims["sub"], "alice");
            assert_eq!(data.claims["scope"], "orders:read");
            assert_eq!(data.claims["amr"][0], "jwt");
            // Reused for the same caller while fresh.
            assert_eq!(signer.token_for(&identity()).unwrap(), token.as_str());
            // Another caller gets another token.
            let mut bob = identity();
            bob.principal = "bob".into();
            assert_ne!(signer.token_for(&bob).unwrap(), token.as_str());
        }
    }
}
