//! The verification cache: a token that verified once is not signature-checked again until it
//! expires.
//!
//! A hit means byte-for-byte the same token (signature included): entries keep the token and a
//! lookup compares it in full, in constant time, so a tampered copy never hits. The map is
//! keyed by SipHash-1-3 of the token under a random per-cache key (std's `RandomState`):
//! it only picks the slot, and an attacker who cannot see the key can neither aim tokens at a
//! slot nor learn anything from where they land. This replaced SHA-256 of the token as the key:
//! the digest was about 40% of a cache hit and bought nothing the full comparison does not.
//!
//! Only successes are stored. A hit is still re-checked against the clock (`exp`, `nbf`) and
//! against the current key set (a key withdrawn from the JWKS stops vouching for cached
//! tokens). The map is bounded: when full, expired entries are purged (at most once a second,
//! since that walks the map) and then the oldest insertions are evicted.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use super::claims::Validated;

/// Where a token lives in the map: its keyed hash (see the module docs).
type Slot = u64;

/// A cached successful verification.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The verified token itself, compared in full on every lookup.
    pub token: Box<str>,
    pub validated: Validated,
    /// Fingerprint of the key that verified the signature.
    pub key_fingerprint: [u8; 32],
}

/// The map's hasher: the slot already is a keyed hash, so hashing it again (SipHash, by
/// default) would only cost time.
#[derive(Default)]
struct SlotHasher(u64);

impl Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (the key is a `u64`); fold anything else anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct State {
    map: HashMap<Slot, Arc<Entry>, BuildHasherDefault<SlotHasher>>,
    /// Insertion order, for eviction. May hold slots already removed from `map`; they are
    /// skipped when popped and compacted away when the queue grows too long.
    order: VecDeque<Slot>,
    last_purge: f64,
}

#[derive(Debug)]
pub(crate) struct VerificationCache {
    max_entries: usize,
    /// The secret SipHash key of the slots, random per cache.
    slot_key: RandomState,
    state: Mutex<State>,
}

impl VerificationCache {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            slot_key: RandomState::new(),
            state: Mutex::new(State::default()),
        }
    }

    fn slot(&self, token: &str) -> Slot {
        self.slot_key.hash_one(token.as_bytes())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters for security (entries are immutable successes), so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry for exactly this token, if any.
    pub(crate) fn get(&self, token: &str) -> Option<Arc<Entry>> {
        if self.max_entries == 0 {
            return None;
        }
        let slot = self.slot(token);
        let entry = self.lock().map.get(&slot).cloned()?;
        // Constant time (aws-lc's CRYPTO_memcmp): the cached token is another caller's bearer
        // credential, so how far a presented token matches it must not show in the timing.
        // Lengths are compared first; a token's length is no secret.
        aws_lc_rs::constant_time::verify_slices_are_equal(entry.token.as_bytes(), token.as_bytes())
            .ok()
            .map(|()| entry)
    }

    /// Forget this token's entry (expired, or its key withdrawn).
    pub(crate) fn remove(&self, token: &str) {
        let slot = self.slot(token);
        let mut state = self.lock();
        let same_token = |e: &Arc<Entry>| {
            aws_lc_rs::constant_time::verify_slices_are_equal(e.token.as_bytes(), token.as_bytes())
                .is_ok()
        };
        if state.map.get(&slot).is_some_and(same_token) {
            state.map.remove(&slot);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Store a success. `now` and `leeway` decide which entries count as expired when the map
    /// is full.
    pub(crate) fn insert(&self, entry: Entry, now: f64, leeway: f64) {
        if self.max_entries == 0 {
            return;
        }
        let slot = self.slot(&entry.token);
        let mut state = self.lock();
        if state.map.contains_key(&slot) {
            // Two concurrent verifications of the same token: the first entry is as good. (Or,
            // once in 2^64, another token in the same slot: this one is then just not cached.)
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
        state.map.insert(slot, Arc::new(entry));
        state.order.push_back(slot);
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

    fn entry(token: &str, exp: f64) -> Entry {
        let identity = Identity {
            method: AuthMethod::Jwt,
            principal: "p".into(),
            credential_id: None,
            scopes: vec![],
            claims: Default::default(),
            tier: None,
        };
        Entry {
            token: token.into(),
            validated: Validated {
                identity: Arc::new(identity),
                exp,
                nbf: None,
            },
            key_fingerprint: [0; 32],
        }
    }

    fn t(i: u8) -> String {
        format!("header.payload-{i}.signature")
    }

    #[test]
    fn bounded_evicting_expired_then_oldest() {
        let cache = VerificationCache::new(3);
        cache.insert(entry(&t(1), 1000.0), 10.0, 0.0);
        cache.insert(entry(&t(2), 50.0), 10.0, 0.0);
        cache.insert(entry(&t(3), 1000.0), 10.0, 0.0);
        // Full at t=100: entry 2 has expired and goes first; 1 stays.
        cache.insert(entry(&t(4), 1000.0), 100.0, 0.0);
        assert!(cache.get(&t(1)).is_some() && cache.get(&t(2)).is_none());
        // Still full, nothing expired: the oldest (1) is evicted.
        cache.insert(entry(&t(5), 1000.0), 100.5, 0.0);
        assert!(cache.get(&t(1)).is_none());
        assert_eq!(cache.len(), 3);
        for i in 0..50u8 {
            cache.insert(entry(&t(10 + i), 1000.0), 101.0, 0.0);
        }
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn zero_entries_disables_the_cache() {
        let cache = VerificationCache::new(0);
        cache.insert(entry(&t(1), 1000.0), 10.0, 0.0);
        assert!(cache.get(&t(1)).is_none());
    }

    #[test]
    fn only_the_identical_token_hits() {
        let cache = VerificationCache::new(10);
        let token = t(1);
        cache.insert(entry(&token, 1000.0), 10.0, 0.0);
        assert!(cache.get(&token).is_some());
        // One byte changed anywhere, a prefix, an extension: all misses.
        let mut flipped = token.clone().into_bytes();
        flipped[token.len() - 1] ^= 1;
        let flipped = String::from_utf8(flipped).unwrap();
        for other in [
            flipped,
            token[..token.len() - 1].to_owned(),
            format!("{token}x"),
        ] {
            assert!(cache.get(&other).is_none(), "{other}");
        }
    }

    #[test]
    fn a_slot_collision_is_a_miss_not_a_hit() {
        // Force the collision the random key makes practically impossible: an entry filed
        // under another token's slot must still not answer for that token.
        let cache = VerificationCache::new(10);
        let (cached, presented) = (t(1), t(2));
        let slot = cache.slot(&presented);
        {
            let mut state = cache.lock();
            state.map.insert(slot, Arc::new(entry(&cached, 1000.0)));
            state.order.push_back(slot);
        }
        assert!(cache.get(&presented).is_none());
        // And removing the presented token leaves the other token's entry alone.
        cache.remove(&presented);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn slots_depend_on_a_per_cache_secret() {
        let (a, b) = (VerificationCache::new(1), VerificationCache::new(1));
        assert_ne!(a.slot(&t(1)), b.slot(&t(1)));
        assert_eq!(a.slot(&t(1)), a.slot(&t(1)));
    }
}
