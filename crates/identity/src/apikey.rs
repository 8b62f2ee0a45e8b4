//! API keys: extraction from request headers, hashed storage, and constant-time lookup.
//!
//! Keys are only ever read from headers (`Authorization: ApiKey <key>` and `X-API-Key: <key>`
//! by default): a key in a URL ends up in access logs, browser history and `Referer` headers,
//! so [`extract`] takes a [`http::HeaderMap`] and nothing else.
//!
//! The store never holds a key, only its hash:
//!
//! - `sha256:<64 hex>` for high-entropy keys such as those from [`generate_key`] (256 random
//!   bits): a fast unsalted hash is enough because brute force over 2^256 is hopeless, and it
//!   keeps lookups cheap.
//! - `argon2:<PHC string>` (argon2id) for short or human-chosen keys, which would be cheap to
//!   brute-force from a leaked SHA-256.
//!
//! # Lookup and timing
//! The presented key is hashed once with SHA-256 and compared with *every* stored sha256
//! digest using `subtle`'s constant-time equality, accumulating the match without an early
//! exit, so neither the comparison nor the position of the matching entry shows in timing. A
//! `HashMap` keyed by the digest would in practice also be safe (the attacker cannot choose
//! digests without a preimage), but the scan makes the property evident in review. It costs
//! about 5 µs per hundred keys (measured, `benches/jwt_verify.rs`), mostly `subtle`'s
//! byte-wise compare: for large key sets a digest-keyed map is the next step.
//!
//! argon2 entries are tried only when no sha256 entry matched. argon2 is slow by design, and
//! since its hashes are salted there is no index: an unknown key costs one argon2 verification
//! *per argon2 entry*. That is why a store holds at most [`MAX_ARGON2_KEYS`] of them — more
//! would let every bad request burn seconds of CPU. Successful argon2 matches are cached
//! briefly (as for Basic auth) so a legitimate client does not pay that cost on every request.
//!
//! # Revocation
//! A store is immutable; revoking a key means removing it from the configuration and
//! rebuilding the store on reload (which also discards the argon2 success cache).
//!
//! # Keys file format
//! [`load_keys_file`] reads JSON Lines: one [`ApiKeyEntry`] object per line; blank lines and
//! lines whose first non-blank character is `#` are ignored. Unknown fields are errors (a typo
//! such as `"expiry"` must not silently yield a key that never expires). Example:
//!
//! ```text
//! # issued 2025-01-10 to the billing team
//! {"id":"billing-1","hash":"sha256:9f86…","principal":"svc-billing","scopes":["invoices:read"],"tier":"gold"}
//! {"id":"ops-human","hash":"argon2:$argon2id$v=19$m=19456,t=2,p=1$…","principal":"ops","expires":1767225600}
//! ```
//!
//! Nothing in this module logs a presented key; events carry the key `id`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::PasswordHasher as _;
use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use rand::RngCore as _;
use subtle::{Choice, ConditionallySelectable as _, ConstantTimeEq as _};

use crate::basic::VerifiedCache;
use crate::htpasswd;
use crate::{AuthError, AuthMethod, Identity};

/// Default `Authorization` scheme for API keys.
pub const DEFAULT_AUTHORIZATION_SCHEME: &str = "ApiKey";
/// Default dedicated header for API keys.
pub const DEFAULT_KEY_HEADER: &str = "x-api-key";
/// Prefix of keys made by [`generate_key`]; it makes leaked keys easy to grep for and
/// recognise in secret scanners.
pub const GENERATED_KEY_PREFIX: &str = "pk_";
/// Most argon2 entries one store may hold; see the module docs for why.
pub const MAX_ARGON2_KEYS: usize = 16;
/// Longest presented key considered; longer ones are refused without hashing.
pub const MAX_PRESENTED_KEY_LEN: usize = 1024;
/// Event reason for a key that matches no entry.
pub const REASON_INVALID_KEY: &str = "invalid_key";
/// Event reason for a key past its `expires`.
pub const REASON_EXPIRED: &str = "expired";
/// How long a successful argon2 key match is remembered.
pub const ARGON2_CACHE_TTL: Duration = Duration::from_secs(60);
/// Most remembered argon2 key matches.
pub const ARGON2_CACHE_MAX_ENTRIES: usize = 10_000;

/// Errors building an [`ApiKeyStore`] or reading a keys file. They never include a key or hash.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    #[error("api key {id:?}: {reason}")]
    InvalidEntry { id: String, reason: String },
    #[error("duplicate api key id {id:?}")]
    DuplicateId { id: String },
    #[error("api keys {first:?} and {second:?} have the same hash")]
    DuplicateHash { first: String, second: String },
    #[error(
        "{count} argon2 api keys configured, at most {max} allowed: every unknown key is \
         checked against each of them; use generated sha256 keys instead"
    )]
    TooManyArgon2 { count: usize, max: usize },
    #[error("invalid api key header configuration: {reason}")]
    InvalidHeaders { reason: String },
    #[error("cannot read api keys file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot hash api key: {reason}")]
    Hash { reason: String },
}

/// Which headers carry an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyHeaders {
    authorization_scheme: Option<String>,
    headers: Vec<HeaderName>,
}

impl Default for ApiKeyHeaders {
    fn default() -> Self {
        ApiKeyHeaders {
            authorization_scheme: Some(DEFAULT_AUTHORIZATION_SCHEME.to_owned()),
            headers: vec![HeaderName::from_static(DEFAULT_KEY_HEADER)],
        }
    }
}

impl ApiKeyHeaders {
    /// `authorization_scheme`: the scheme in `Authorization: <scheme> <key>` (matched
    /// case-insensitively), or `None` to not read `Authorization`. `headers`: dedicated
    /// headers whose whole value is the key. `Authorization` may not be listed there (its value
    /// always starts with a scheme).
    pub fn new(authorization_scheme: Option<&str>, headers: &[&str]) -> Result<Self, ApiKeyError> {
        let invalid = |reason: String| ApiKeyError::InvalidHeaders { reason };
        if let Some(scheme) = authorization_scheme
            && (scheme.is_empty() || !scheme.bytes().all(is_token_char))
        {
            return Err(invalid(format!("{scheme:?} is not a valid auth scheme")));
        }
        let headers = headers
            .iter()
            .map(|name| {
                let header = HeaderName::try_from(*name)
                    .map_err(|_| invalid(format!("{name:?} is not a valid header name")))?;
                if header == http::header::AUTHORIZATION {
                    return Err(invalid(
                        "use authorization_scheme for the Authorization header".to_owned(),
                    ));
                }
                Ok(header)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if authorization_scheme.is_none() && headers.is_empty() {
            return Err(invalid("no header would carry the key".to_owned()));
        }
        Ok(ApiKeyHeaders {
            authorization_scheme: authorization_scheme.map(str::to_owned),
            headers,
        })
    }

    /// The `Authorization` scheme read, if any.
    pub fn authorization_scheme(&self) -> Option<&str> {
        self.authorization_scheme.as_deref()
    }

    /// The dedicated key headers read.
    pub fn headers(&self) -> &[HeaderName] {
        &self.headers
    }
}

/// RFC 7230 `tchar`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The API key presented in `headers`, if any. Only headers are consulted — never the URL.
///
/// `Authorization: <scheme> <key>` is read first, then the dedicated headers in order. A
/// header with another scheme (`Bearer …`) is ignored. If the request carries two *different*
/// keys (for example a client key plus one appended by a misconfigured proxy) this returns
/// `None` rather than guessing which one is meant.
pub fn extract<'a>(headers: &'a HeaderMap, cfg: &ApiKeyHeaders) -> Option<&'a str> {
    let from_authorization = cfg
        .authorization_scheme
        .as_deref()
        .into_iter()
        .flat_map(|scheme| {
            headers
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .filter_map(move |value| {
                    let value = value.to_str().ok()?.trim();
                    let (s, key) = value.split_once(' ')?;
                    s.eq_ignore_ascii_case(scheme).then_some(key.trim_start())
                })
        });
    let from_headers = cfg.headers.iter().flat_map(|name| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|value| Some(value.to_str().ok()?.trim()))
    });
    let mut found: Option<&'a str> = None;
    for key in from_authorization.chain(from_headers) {
        if key.is_empty() {
            continue;
        }
        match found {
            None => found = Some(key),
            Some(previous) if previous == key => {}
            Some(_) => {
                tracing::debug!("request carries conflicting api keys; ignoring both");
                return None;
            }
        }
    }
    found
}

/// One configured API key.
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Key id used in events and logs (never the key).
    pub id: String,
    /// `sha256:<64 hex>` or `argon2:<argon2id PHC string>`.
    pub hash: String,
    /// The principal the key authenticates as.
    pub principal: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Rate-limit tier.
    #[serde(default)]
    pub tier: Option<String>,
    /// Expiry, unix seconds; the key is refused from this second on.
    #[serde(default)]
    pub expires: Option<u64>,
}

impl std::fmt::Debug for ApiKeyEntry {
    // The hash is redacted: an argon2 hash of a human-chosen key can be attacked offline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("id", &self.id)
            .field("hash", &"<redacted>")
            .field("principal", &self.principal)
            .field("scopes", &self.scopes)
            .field("tier", &self.tier)
            .field("expires", &self.expires)
            .finish()
    }
}

enum KeyHash {
    Sha256([u8; 32]),
    Argon2(String),
}

impl ApiKeyEntry {
    /// Check the entry and parse its hash.
    fn parse(&self) -> Result<KeyHash, ApiKeyError> {
        let invalid = |reason: &str| ApiKeyError::InvalidEntry {
            id: self.id.clone(),
            reason: reason.to_owned(),
        };
        if self.id.is_empty() || self.id.chars().any(char::is_control) {
            return Err(invalid("id is empty or contains control characters"));
        }
        if self.principal.is_empty() {
            return Err(invalid("principal is empty"));
        }
        if self
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.chars().any(char::is_whitespace))
        {
            return Err(invalid("a scope is empty or contains whitespace"));
        }
        if let Some(hex) = self.hash.strip_prefix("sha256:") {
            decode_hex32(hex)
                .map(KeyHash::Sha256)
                .ok_or_else(|| invalid("sha256 hash must be 64 hex digits"))
        } else if let Some(phc) = self.hash.strip_prefix("argon2:") {
            htpasswd::parse_argon2(phc, false).map_err(|reason| invalid(&reason))?;
            Ok(KeyHash::Argon2(phc.to_owned()))
        } else {
            // Deliberately not echoing the value: a plain key pasted here is a secret.
            Err(invalid(
                "hash must start with `sha256:` or `argon2:` (plain keys are not accepted)",
            ))
        }
    }
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The `sha256:<hex>` hash line for a key.
pub fn hash_key_sha256(key: &str) -> String {
    format!("sha256:{}", encode_hex(&sha256(key.as_bytes())))
}

/// The `argon2:<PHC>` hash line for a short or human-chosen key, with argon2id and the
/// library's default (OWASP-recommended) parameters and a random salt.
pub fn hash_key_argon2(key: &str) -> Result<String, ApiKeyError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let phc = argon2::Argon2::default()
        .hash_password_with_salt(key.as_bytes(), &salt)
        .map_err(|e| ApiKeyError::Hash {
            reason: e.to_string(),
        })?;
    Ok(format!("argon2:{phc}"))
}

/// A new random key (`pk_` + 32 random bytes, base64url without padding) and its
/// `sha256:<hex>` hash line for the configuration. Show the key once; store only the hash.
pub fn generate_key() -> (String, String) {
    let mut secret = [0u8; 32];
    // ThreadRng is a CSPRNG (ChaCha12) seeded and periodically reseeded from the OS.
    rand::rng().fill_bytes(&mut secret);
    let key = format!(
        "{GENERATED_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = hash_key_sha256(&key);
    (key, hash)
}

/// What an entry grants, without its hash.
#[derive(Debug, Clone)]
struct KeyRecord {
    id: String,
    principal: String,
    scopes: Vec<String>,
    tier: Option<String>,
    expires: Option<u64>,
}

impl KeyRecord {
    fn identity_at(&self, now: SystemTime) -> Result<Identity, AuthError> {
        if let Some(expires) = self.expires {
            let now_secs = now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if now_secs >= expires {
                tracing::debug!(key_id = %self.id, "api key expired");
                return Err(AuthError::Invalid {
                    reason: REASON_EXPIRED,
                });
            }
        }
        Ok(Identity {
            method: AuthMethod::ApiKey,
            principal: self.principal.clone(),
            credential_id: Some(self.id.clone()),
            scopes: self.scopes.clone(),
            claims: Default::default(),
            tier: self.tier.clone(),
        })
    }
}

/// An immutable set of API keys. Rebuild it to add or revoke keys.
pub struct ApiKeyStore {
    /// Digests kept apart from records so the constant-time scan touches only them.
    sha256_digests: Vec<[u8; 32]>,
    sha256_records: Vec<KeyRecord>,
    argon2: Vec<(String, KeyRecord)>,
    /// Index into `argon2` of recently verified keys.
    argon2_cache: VerifiedCache<usize>,
    argon2_verifications: AtomicU64,
    limiter: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyStore")
            .field("sha256_keys", &self.sha256_digests.len())
            .field("argon2_keys", &self.argon2.len())
            .finish_non_exhaustive()
    }
}

impl ApiKeyStore {
    /// Build a store, validating every entry: ids must be unique, hashes well-formed, no two
    /// sha256 entries may share a hash, and at most [`MAX_ARGON2_KEYS`] argon2 entries.
    pub fn new(entries: impl IntoIterator<Item = ApiKeyEntry>) -> Result<Self, ApiKeyError> {
        let mut sha256_digests: Vec<[u8; 32]> = Vec::new();
        let mut sha256_records: Vec<KeyRecord> = Vec::new();
        let mut argon2 = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for entry in entries {
            let hash = entry.parse()?;
            if !ids.insert(entry.id.clone()) {
                return Err(ApiKeyError::DuplicateId { id: entry.id });
            }
            let record = KeyRecord {
                id: entry.id,
                principal: entry.principal,
                scopes: entry.scopes,
                tier: entry.tier,
                expires: entry.expires,
            };
            match hash {
                KeyHash::Sha256(digest) => {
                    // Load time, not request time: an ordinary comparison is fine here.
                    if let Some(pos) = sha256_digests.iter().position(|d| *d == digest) {
                        return Err(ApiKeyError::DuplicateHash {
                            first: sha256_records[pos].id.clone(),
                            second: record.id,
                        });
                    }
                    sha256_digests.push(digest);
                    sha256_records.push(record);
                }
                KeyHash::Argon2(phc) => argon2.push((phc, record)),
            }
        }
        if argon2.len() > MAX_ARGON2_KEYS {
            return Err(ApiKeyError::TooManyArgon2 {
                count: argon2.len(),
                max: MAX_ARGON2_KEYS,
            });
        }
        Ok(ApiKeyStore {
            sha256_digests,
            sha256_records,
            argon2,
            argon2_cache: VerifiedCache::new(ARGON2_CACHE_TTL, ARGON2_CACHE_MAX_ENTRIES),
            argon2_verifications: AtomicU64::new(0),
            limiter: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )),
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.sha256_digests.len() + self.argon2.len()
    }

    /// Whether the store has no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many argon2 verifications this store has run (cache hits excluded). For tests and
    /// metrics.
    pub fn argon2_verifications(&self) -> u64 {
        self.argon2_verifications.load(Ordering::Relaxed)
    }

    /// Authenticate a presented key (as returned by [`extract`]) at the current time. With
    /// argon2 entries this may take a while on a miss: from async code prefer
    /// [`Self::authenticate_async`].
    pub fn authenticate(&self, presented: &str) -> Result<Identity, AuthError> {
        self.authenticate_at(presented, SystemTime::now())
    }

    /// [`Self::authenticate`] with an explicit clock, for expiry tests.
    pub fn authenticate_at(&self, presented: &str, now: SystemTime) -> Result<Identity, AuthError> {
        let digest = Self::check_presented(presented)?;
        if let Some(record) = self.lookup_sha256(&digest) {
            return record.identity_at(now);
        }
        match self.lookup_argon2(presented) {
            Some(record) => record.identity_at(now),
            None => Err(invalid_key()),
        }
    }

    /// Like [`Self::authenticate`]; the sha256 scan and argon2 cache run inline, argon2
    /// verification runs on tokio's blocking pool (at most one per CPU at once).
    pub async fn authenticate_async(
        self: &Arc<Self>,
        presented: &str,
    ) -> Result<Identity, AuthError> {
        let digest = Self::check_presented(presented)?;
        if let Some(record) = self.lookup_sha256(&digest) {
            return record.identity_at(SystemTime::now());
        }
        if self.argon2.is_empty() {
            return Err(invalid_key());
        }
        let fingerprint = self.argon2_cache.fingerprint(&[presented.as_bytes()]);
        if let Some(idx) = self.argon2_cache.get(&fingerprint)
            && let Some((_, record)) = self.argon2.get(idx)
        {
            return record.identity_at(SystemTime::now());
        }
        let unavailable = AuthError::Unavailable {
            reason: crate::basic::REASON_VERIFIER_UNAVAILABLE,
        };
        let permit = Arc::clone(&self.limiter)
            .acquire_owned()
            .await
            .map_err(|_| unavailable.clone())?;
        let store = Arc::clone(self);
        let presented = presented.to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            match store.verify_argon2(&presented, fingerprint) {
                Some(record) => record.identity_at(SystemTime::now()),
                None => Err(invalid_key()),
            }
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "api key verification task failed");
            unavailable
        })?
    }

    /// Reject empty and oversized keys cheaply, then hash once.
    fn check_presented(presented: &str) -> Result<[u8; 32], AuthError> {
        if presented.is_empty() {
            return Err(AuthError::Missing);
        }
        if presented.len() > MAX_PRESENTED_KEY_LEN {
            return Err(invalid_key());
        }
        Ok(sha256(presented.as_bytes()))
    }

    /// Constant-time scan over all sha256 digests: every digest is compared, the match (if
    /// any) is folded in with conditional selection, and nothing branches on a comparison.
    fn lookup_sha256(&self, digest: &[u8; 32]) -> Option<&KeyRecord> {
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, stored) in self.sha256_digests.iter().enumerate() {
            let eq = stored.as_slice().ct_eq(digest.as_slice());
            index.conditional_assign(&(i as u64), eq);
            found |= eq;
        }
        if bool::from(found) {
            self.sha256_records.get(usize::try_from(index).ok()?)
        } else {
            None
        }
    }

    fn lookup_argon2(&self, presented: &str) -> Option<&KeyRecord> {
        if self.argon2.is_empty() {
            return None;
        }
        let fingerprint = self.argon2_cache.fingerprint(&[presented.as_bytes()]);
        if let Some(idx) = self.argon2_cache.get(&fingerprint) {
            return self.argon2.get(idx).map(|(_, r)| r);
        }
        self.verify_argon2(presented, fingerprint)
    }

    fn verify_argon2(&self, presented: &str, fingerprint: [u8; 32]) -> Option<&KeyRecord> {
        for (idx, (phc, record)) in self.argon2.iter().enumerate() {
            self.argon2_verifications.fetch_add(1, Ordering::Relaxed);
            // Stopping at a match is fine: it only reveals timing to someone who already
            // holds a valid key.
            if htpasswd::verify_argon2_phc(phc, presented.as_bytes()) {
                self.argon2_cache.insert(fingerprint, idx);
                return Some(record);
            }
        }
        None
    }
}

fn invalid_key() -> AuthError {
    AuthError::Invalid {
        reason: REASON_INVALID_KEY,
    }
}

/// Read a JSON Lines keys file (format in the module docs). Errors name the file and line.
pub fn load_keys_file(path: impl AsRef<Path>) -> Result<Vec<ApiKeyEntry>, ApiKeyError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ApiKeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_keys_file(&text, path)
}

/// Parse JSON Lines keys text; `path` names the source in errors. Each entry is validated here
/// (hash format, unique id) so problems are reported with their line.
pub fn parse_keys_file(text: &str, path: &Path) -> Result<Vec<ApiKeyEntry>, ApiKeyError> {
    let line_err = |line: usize, reason: String| ApiKeyError::Line {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut entries: Vec<ApiKeyEntry> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry: ApiKeyEntry = serde_json::from_str(trimmed).map_err(|e| {
            // serde_json appends "at line 1 column N" relative to this one line; report the
            // file's line instead.
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            line_err(line, format!("{message} (column {})", e.column()))
        })?;
        entry.parse().map_err(|e| line_err(line, e.to_string()))?;
        if entries.iter().any(|e| e.id == entry.id) {
            return Err(line_err(
                line,
                format!("duplicate api key id {:?}", entry.id),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn apikey_hex_round_trip() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex = encode_hex(&bytes);
        assert_eq!(decode_hex32(&hex).unwrap().to_vec(), bytes);
        assert_eq!(decode_hex32(&hex.to_uppercase()).unwrap().to_vec(), bytes);
        assert!(decode_hex32(&hex[..62]).is_none());
        assert!(decode_hex32(&format!("{}zz", &hex[..62])).is_none());
    }

    #[test]
    fn apikey_scan_finds_last_entry() {
        let entries: Vec<ApiKeyEntry> = (0..5)
            .map(|i| ApiKeyEntry {
                id: format!("k{i}"),
                hash: hash_key_sha256(&format!("key-{i}")),
                principal: format!("p{i}"),
                scopes: vec![],
                tier: None,
                expires: None,
            })
            .collect();
        let store = ApiKeyStore::new(entries).unwrap();
        for i in 0..5 {
            let id = store.authenticate(&format!("key-{i}")).unwrap();
            assert_eq!(id.principal, format!("p{i}"));
        }
        assert!(store.authenticate("key-5").is_err());
    }
}
