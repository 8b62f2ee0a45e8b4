//! Portcullis identity: who is calling. Each authentication method turns request credentials
//! into an [`Identity`] or an [`AuthError`] whose RFC 6750 code and event reason never say more
//! about a credential than the RFC allows.

pub mod apikey;
pub mod basic;
pub mod htpasswd;
pub mod introspection;
pub mod jwt;

use std::collections::BTreeMap;

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ApiKey,
    Basic,
    Jwt,
    Introspection,
    Mtls,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Identity {
    pub method: AuthMethod,
    /// The principal id: `sub` of a token, the user of Basic, the key's principal, the
    /// certificate's mapped subject.
    pub principal: String,
    /// Key id of an API key, or `jti` of a token, for events (never the secret).
    pub credential_id: Option<String>,
    pub scopes: Vec<String>,
    /// All verified claims (JWT, introspection); empty for other methods.
    pub claims: BTreeMap<String, serde_json::Value>,
    /// Rate-limit tier of an API key.
    pub tier: Option<String>,
}

/// Why authentication failed, as far as a client may know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential of this method was presented.
    #[error("missing credentials")]
    Missing,
    /// A credential was presented and refused; `reason` is a stable event code such as
    /// `invalid_signature`, `expired`, `wrong_issuer`, `alg_not_allowed`.
    #[error("invalid credentials ({reason})")]
    Invalid { reason: &'static str },
    /// The credential is fine but cannot be checked right now (JWKS or introspection endpoint
    /// down with nothing cached): fail closed.
    #[error("authentication backend unavailable ({reason})")]
    Unavailable { reason: &'static str },
}

impl AuthError {
    /// The event reason code.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_credentials",
            AuthError::Invalid { reason } | AuthError::Unavailable { reason } => reason,
        }
    }

    /// The RFC 6750 `error` code for `WWW-Authenticate` (None when no credential was sent).
    pub fn rfc6750_code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => None,
            AuthError::Invalid { .. } => Some("invalid_token"),
            AuthError::Unavailable { .. } => None,
        }
    }
}
