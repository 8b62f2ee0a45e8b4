//! HTTP Basic authentication (RFC 7617) against an htpasswd file.
//!
//! Verification is deliberately slow (bcrypt cost 10 is 50–100 ms of one core), which shapes
//! three choices here:
//!
//! - [`HtpasswdStore::authenticate_async`] runs the hash on tokio's blocking pool behind a
//!   semaphore sized to the CPU count, so slow hashes neither stall the async workers nor let
//!   a flood of bad passwords spawn hundreds of hashing threads.
//! - Successful verifications are cached for a short time (default 60 s, 10,000 entries),
//!   keyed by HMAC-SHA-256 of (user, password) under a random per-store key. Clients that send
//!   the same Basic credentials on every request then cost one hash per TTL instead of one per
//!   request. The trade-off: for up to the TTL, a password changed or removed in the file is
//!   still accepted *by this store instance* — but a reload builds a new store with an empty
//!   cache, so revocation is as fast as reloading. The cache holds keyed digests, never
//!   passwords; failures are never cached (an attacker could otherwise fill it).
//! - Unknown users are verified against a dummy hash with the same kind and cost as the most
//!   common entry, so response time does not reveal which user names exist. Both unknown user
//!   and wrong password produce the same client-visible reason, `invalid_credentials`; the
//!   distinction is only logged at debug level (`internal_reason`), without the password and,
//!   for unknown users, without the user name (it is often a mistyped password).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::RngCore as _;

use crate::htpasswd::{self, HashKind, StoredHash};
use crate::{AuthError, AuthMethod, Identity};

/// Longest `Authorization` value accepted for Basic; longer ones are refused before decoding.
pub const MAX_BASIC_HEADER_LEN: usize = 4096;

/// Event reason for a wrong password or an unknown user (the same on purpose).
pub const REASON_INVALID_CREDENTIALS: &str = "invalid_credentials";
/// Event reason for a Basic header that does not decode to `user:password`.
pub const REASON_MALFORMED: &str = "malformed_credentials";
/// Event reason for a Basic header longer than [`MAX_BASIC_HEADER_LEN`].
pub const REASON_TOO_LARGE: &str = "credentials_too_large";
/// Event reason when the verification task could not run (fail closed).
pub const REASON_VERIFIER_UNAVAILABLE: &str = "verifier_unavailable";

/// Errors loading an htpasswd file. They name the file and, for content errors, the line; they
/// never contain a hash or password.
#[derive(Debug, thiserror::Error)]
pub enum BasicError {
    #[error("cannot read htpasswd file {}: {source}", path.display())]
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
    #[error("{}: cannot prepare the timing dummy hash: {reason}", path.display())]
    Dummy { path: PathBuf, reason: String },
}

/// Tuning for [`HtpasswdStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicOptions {
    /// How long a successful verification is remembered. Zero disables the cache.
    pub cache_ttl: Duration,
    /// Most cached verifications. Zero disables the cache.
    pub cache_max_entries: usize,
    /// Most hash verifications running at once in [`HtpasswdStore::authenticate_async`];
    /// further requests wait. Defaults to the number of CPUs.
    pub max_concurrent_verifications: usize,
}

impl Default for BasicOptions {
    fn default() -> Self {
        BasicOptions {
            cache_ttl: Duration::from_secs(60),
            cache_max_entries: 10_000,
            max_concurrent_verifications: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

/// A user whose hash is in a legacy format (apr1 or `{SHA}`) and should be re-hashed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WeakHash {
    pub user: String,
    pub kind: HashKind,
    pub line: usize,
}

/// Decoded Basic credentials. Debug output redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub user: String,
    /// Raw password bytes: RFC 7617 leaves the charset to the client, and hashes work on bytes.
    pub password: Vec<u8>,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Parse an `Authorization` header value as Basic credentials, strictly.
///
/// - empty, or another scheme (`Bearer …`) → [`AuthError::Missing`]: no Basic credential was
///   presented, another method may own it;
/// - longer than [`MAX_BASIC_HEADER_LEN`] → `Invalid { reason: "credentials_too_large" }`;
/// - `Basic` with a payload that is not canonical padded standard base64 of `user:password`
///   (UTF-8 user without control characters, non-empty) → `Invalid { reason:
///   "malformed_credentials" }`. The user is everything before the first `:`, so it cannot
///   contain one; the password may.
pub fn parse_basic_header(value: &str) -> Result<BasicCredentials, AuthError> {
    let malformed = AuthError::Invalid {
        reason: REASON_MALFORMED,
    };
    if value.len() > MAX_BASIC_HEADER_LEN {
        return Err(AuthError::Invalid {
            reason: REASON_TOO_LARGE,
        });
    }
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(AuthError::Missing);
    }
    let Some((scheme, payload)) = value.split_once(' ') else {
        // A bare scheme: "Basic" with nothing is a broken Basic credential; anything else
        // belongs to another method.
        return if value.eq_ignore_ascii_case("basic") {
            Err(malformed)
        } else {
            Err(AuthError::Missing)
        };
    };
    // RFC 7235: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Missing);
    }
    // RFC 7235 allows 1*SP before the token68; anything else inside it fails base64 below.
    let payload = payload.trim_start_matches(' ');
    // STANDARD requires canonical padding and rejects trailing bits and whitespace.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|_| malformed.clone())?;
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| malformed.clone())?;
    let (user, password) = decoded.split_at(colon);
    let user = std::str::from_utf8(user).map_err(|_| malformed.clone())?;
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(malformed);
    }
    Ok(BasicCredentials {
        user: user.to_owned(),
        password: password[1..].to_vec(),
    })
}

/// A short-lived, bounded memory of successful verifications, keyed by HMAC-SHA-256 under a
/// random per-instance key (so the keys are useless outside this process and cannot be matched
/// against precomputed tables). Shared by Basic and argon2 API keys.
pub(crate) struct VerifiedCache<V> {
    key: aws_lc_rs::hmac::Key,
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
}

impl<V: Clone> VerifiedCache<V> {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        VerifiedCache {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &secret),
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.capacity > 0
    }

    /// Keyed digest of the parts, each length-prefixed so ("ab","c") ≠ ("a","bc").
    pub(crate) fn fingerprint(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub(crate) fn get(&self, fingerprint: &[u8; 32]) -> Option<V> {
        if !self.enabled() {
            return None;
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still a
        // valid map, so keep serving rather than failing every request.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(fingerprint) {
            Some((expires, value)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.remove(fingerprint);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, fingerprint: [u8; 32], value: V) {
        if !self.enabled() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= self.capacity && !entries.contains_key(&fingerprint) {
            entries.retain(|_, (expires, _)| *expires > now);
            // Still full of live entries: drop the one closest to expiry. O(n), but only
            // successful logins reach here, so an attacker cannot drive it.
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(fingerprint, (now + self.ttl, value));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Users and password hashes from one htpasswd file, ready to authenticate Basic requests.
/// Rebuild it (reload) to pick up file changes; the cache starts empty with each instance.
pub struct HtpasswdStore {
    path: PathBuf,
    users: HashMap<String, StoredHash>,
    /// Same kind and cost as the most common entry; `None` only for an empty file.
    dummy: Option<StoredHash>,
    weak: Vec<WeakHash>,
    cache: VerifiedCache<()>,
    verifications: AtomicU64,
    limiter: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for HtpasswdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HtpasswdStore")
            .field("path", &self.path)
            .field("users", &self.users.len())
            .field("weak", &self.weak.len())
            .finish_non_exhaustive()
    }
}

impl HtpasswdStore {
    /// Load an htpasswd file with default [`BasicOptions`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, BasicError> {
        Self::load_with(path, BasicOptions::default())
    }

    /// Load an htpasswd file.
    pub fn load_with(path: impl AsRef<Path>, options: BasicOptions) -> Result<Self, BasicError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| BasicError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            BasicError::Line {
                path: path.to_path_buf(),
                line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                reason: "not valid UTF-8".to_owned(),
            }
        })?;
        Self::from_text(&text, path, options)
    }

    /// Build a store from htpasswd text; `path` names the source in errors and logs.
    pub fn from_text(text: &str, path: &Path, options: BasicOptions) -> Result<Self, BasicError> {
        let entries = htpasswd::parse_file(text, path)?;
        let mut weak = Vec::new();
        let mut by_cost: HashMap<String, (usize, usize)> = HashMap::new();
        for (idx, entry) in entries.iter().enumerate() {
            let kind = entry.hash.kind();
            if kind.is_weak() {
                // Name the user so the operator knows whom to re-hash; never the hash.
                tracing::warn!(
                    file = %path.display(),
                    line = entry.line,
                    user = %entry.user,
                    kind = %kind,
                    "weak legacy password hash in htpasswd file; re-hash with `htpasswd -B`"
                );
                weak.push(WeakHash {
                    user: entry.user.clone(),
                    kind,
                    line: entry.line,
                });
            }
            by_cost
                .entry(entry.hash.cost_signature())
                .or_insert((0, idx))
                .0 += 1;
        }
        // The most common (kind, cost); ties go to the earliest entry so the choice is stable.
        let typical = by_cost
            .values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .and_then(|&(_, idx)| entries.get(idx));
        let dummy = match typical {
            Some(entry) => Some(
                entry
                    .hash
                    .dummy_like()
                    .map_err(|reason| BasicError::Dummy {
                        path: path.to_path_buf(),
                        reason,
                    })?,
            ),
            None => {
                tracing::warn!(file = %path.display(), "htpasswd file has no users; every Basic login will fail");
                None
            }
        };
        let users = entries.into_iter().map(|e| (e.user, e.hash)).collect();
        Ok(HtpasswdStore {
            path: path.to_path_buf(),
            users,
            dummy,
            weak,
            cache: VerifiedCache::new(options.cache_ttl, options.cache_max_entries),
            verifications: AtomicU64::new(0),
            limiter: Arc::new(tokio::sync::Semaphore::new(
                options.max_concurrent_verifications.max(1),
            )),
        })
    }

    /// The file this store was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file had no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Users whose hashes are in a legacy format (apr1, `{SHA}`), in file order.
    pub fn weak_hashes(&self) -> &[WeakHash] {
        &self.weak
    }

    /// How many password hashes this store has computed (including dummy ones for unknown
    /// users); cache hits do not count. For tests and metrics.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Authenticate an `Authorization` header value, on the calling thread. This may take
    /// tens of milliseconds of CPU: from async code use [`Self::authenticate_async`].
    pub fn authenticate(&self, authorization_header_value: &str) -> Result<Identity, AuthError> {
        let creds = parse_basic_header(authorization_header_value)?;
        let fingerprint = self.fingerprint(&creds);
        if self.cache.get(&fingerprint).is_some() {
            return Ok(basic_identity(creds.user));
        }
        self.verify_uncached(creds, fingerprint)
    }

    /// Like [`Self::authenticate`], but parsing and cache hits run inline and the hash runs
    /// on tokio's blocking pool, at most `max_concurrent_verifications` at once.
    pub async fn authenticate_async(
        self: &Arc<Self>,
        authorization_header_value: &str,
    ) -> Result<Identity, AuthError> {
        let creds = parse_basic_header(authorization_header_value)?;
        let fingerprint = self.fingerprint(&creds);
        if self.cache.get(&fingerprint).is_some() {
            return Ok(basic_identity(creds.user));
        }
        let unavailable = AuthError::Unavailable {
            reason: REASON_VERIFIER_UNAVAILABLE,
        };
        let permit = Arc::clone(&self.limiter)
            .acquire_owned()
            .await
            .map_err(|_| unavailable.clone())?;
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            store.verify_uncached(creds, fingerprint)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "basic auth verification task failed");
            unavailable
        })?
    }

    fn fingerprint(&self, creds: &BasicCredentials) -> [u8; 32] {
        self.cache
            .fingerprint(&[creds.user.as_bytes(), &creds.password])
    }

    fn verify_uncached(
        &self,
        creds: BasicCredentials,
        fingerprint: [u8; 32],
    ) -> Result<Identity, AuthError> {
        let refused = AuthError::Invalid {
            reason: REASON_INVALID_CREDENTIALS,
        };
        match self.users.get(&creds.user) {
            Some(hash) => {
                self.verifications.fetch_add(1, Ordering::Relaxed);
                if hash.verify(&creds.password) {
                    self.cache.insert(fingerprint, ());
                    Ok(basic_identity(creds.user))
                } else {
                    tracing::debug!(user = %creds.user, internal_reason = "invalid_password", "basic auth refused");
                    Err(refused)
                }
            }
            None => {
                if let Some(dummy) = &self.dummy {
                    self.verifications.fetch_add(1, Ordering::Relaxed);
                    // The result is irrelevant; black_box keeps the work from being optimised
                    // away, since the point is to spend the same time as a real user.
                    std::hint::black_box(dummy.verify(std::hint::black_box(&creds.password)));
                }
                tracing::debug!(internal_reason = "unknown_user", "basic auth refused");
                Err(refused)
            }
        }
    }
}

fn basic_identity(user: String) -> Identity {
    Identity {
        method: AuthMethod::Basic,
        principal: user,
        credential_id: None,
        scopes: Vec::new(),
        claims: Default::default(),
        tier: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_parse_strict() {
        let c = parse_basic_header(&format!("Basic {}", b64("alice:pa:ss"))).unwrap();
        assert_eq!(c.user, "alice");
        assert_eq!(c.password, b"pa:ss");
        assert!(parse_basic_header(&format!("bAsIc {}", b64("a:b"))).is_ok());
        assert!(!format!("{c:?}").contains("pa:ss"));
        // Unpadded base64 is not canonical standard base64.
        let unpadded = b64("ab:c").trim_end_matches('=').to_owned();
        assert_ne!(unpadded, b64("ab:c"));
        assert_eq!(
            parse_basic_header(&format!("Basic {unpadded}")),
            Err(AuthError::Invalid {
                reason: REASON_MALFORMED
            })
        );
        assert_eq!(
            parse_basic_header(&format!("Basic {}", b64(":nouser"))),
            Err(AuthError::Invalid {
                reason: REASON_MALFORMED
            })
        );
        assert_eq!(parse_basic_header("Bearer"), Err(AuthError::Missing));
    }

    #[test]
    fn basic_cache_bounded_and_expires() {
        let cache: VerifiedCache<()> = VerifiedCache::new(Duration::from_secs(60), 2);
        let a = cache.fingerprint(&[b"a"]);
        let b = cache.fingerprint(&[b"b"]);
        let c = cache.fingerprint(&[b"c"]);
        cache.insert(a, ());
        cache.insert(b, ());
        cache.insert(c, ());
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&c).is_some());
        // Length prefixes keep part boundaries distinct.
        assert_ne!(
            cache.fingerprint(&[b"ab", b"c"]),
            cache.fingerprint(&[b"a", b"bc"])
        );

        let expired: VerifiedCache<()> = VerifiedCache::new(Duration::from_nanos(1), 10);
        expired.insert(a, ());
        std::thread::sleep(Duration::from_millis(2));
        assert!(expired.get(&a).is_none());

        let off: VerifiedCache<()> = VerifiedCache::new(Duration::ZERO, 10);
        off.insert(a, ());
        assert!(off.get(&a).is_none());
    }
}
