//! The verification cache: a token that verified once is not signature-checked again until it
//! expires.
//!
//! Entries are keyed by SHA-256 of the whole token, so a hit means byte-for-byte the same
//! token (signature included) — a tampered copy hashes elsewhere and takes the full path. Only
//! successes are stored. A hit is still re-checked against the clock (`exp`, `nbf`) and
//! against the current key set (a key withdrawn from the JWKS stops vouching for cached
//! tokens). The map is bounded: when full, expired entries are purged (at most once a
//! second, since that walks the map) and then the oldest insertions are evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use aws_lc_rs::digest;

use super::claims::Validated;

/// SHA-256 of a token.
pub(crate) type TokenHash = [u8; 32];

pub(crate) fn token_hash(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// A cached successful verification.
#[derive(Debug)]
pub(crate) struct Entry {
    pub validated: Validated,
    /// Fingerprint of the key that verified the signature.
    pub key_fingerprint: [u8; 32],
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<TokenHash, Arc<Entry>>,
    /// Insertion order, for eviction. May hold hashes already removed from `map`; they are
    /// skipped when popped and compacted away when the queue grows too long.
    order: VecDeque<TokenHash>,
    last_purge: f64,
}

#[derive(Debug)]
pub(crate) struct VerificationCache {
    max_entries: usize,
    state: Mutex<State>,
}

impl VerificationCache {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters for security (entries are immutable successes), so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, hash: &TokenHash) -> Option<Arc<Entry>> {
        if self.max_entries == 0 {
            return None;
        }
        self.lock().map.get(hash).cloned()
    }

    pub(crate) fn remove(&self, hash: &TokenHash) {
        self.lock().map.remove(hash);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Store a success. `now` and `leeway` decide which entries count as expired when the map
    /// is full.
    pub(crate) fn insert(&self, hash: TokenHash, entry: Entry, now: f64, leeway: f64) {
        if self.max_entries == 0 {
            return;
        }
        let mut state = self.lock();
        if state.map.contains_key(&hash) {
            // Two concurrent verifications of the same token: the first entry is as good.
            return;
        }
        if state.map.len() >= self.max_entries && now - state.last_purge >= 1.0 {
            state.last_purge = now;
            state
                .map
                .retain(|_, e| !super::claims::is_expired(e.validated.exp, now, leeway));
            let State { map, order, .. } = &mut *state;
            order.retain(|h| map.contains_key(h));
        }
        while state.map.len() >= self.max_entries {
            match state.order.pop_front() {
                Some(oldest) => {
                    state.map.remove(&oldest);
                }
                None => break,
            }
        }
        state.map.insert(hash, Arc::new(entry));
        state.order.push_back(hash);
        if state.order.len() > self.max_entries.saturating_mul(2) {
            let State { map, order, .. } = &mut *state;
            order.retain(|h| map.contains_key(h));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuthMethod, Identity};

    fn entry(exp: f64) -> Entry {
        let identity = Identity {
            method: AuthMethod::Jwt,
            principal: "p".into(),
            credential_id: None,
            scopes: vec![],
            claims: Default::default(),
            tier: None,
        };
        Entry {
            validated: Validated {
                identity,
                exp,
                nbf: None,
            },
            key_fingerprint: [0; 32],
        }
    }

    fn h(i: u8) -> TokenHash {
        [i; 32]
    }

    #[test]
    fn bounded_evicting_expired_then_oldest() {
        let cache = VerificationCache::new(3);
        cache.insert(h(1), entry(1000.0), 10.0, 0.0);
        cache.insert(h(2), entry(50.0), 10.0, 0.0);
        cache.insert(h(3), entry(1000.0), 10.0, 0.0);
        // Full at t=100: entry 2 has expired and goes first; 1 stays.
        cache.insert(h(4), entry(1000.0), 100.0, 0.0);
        assert!(cache.get(&h(1)).is_some() && cache.get(&h(2)).is_none());
        // Still full, nothing expired: the oldest (1) is evicted.
        cache.insert(h(5), entry(1000.0), 100.5, 0.0);
        assert!(cache.get(&h(1)).is_none());
        assert_eq!(cache.len(), 3);
        for i in 0..50u8 {
            cache.insert(h(10 + i), entry(1000.0), 101.0, 0.0);
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn zero_entries_disables_the_cache() {
        let cache = VerificationCache::new(0);
        cache.insert(h(1), entry(1000.0), 10.0, 0.0);
        assert!(cache.get(&h(1)).is_none());
    }
}
