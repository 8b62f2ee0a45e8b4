//! Criterion benchmarks: JWT verification (cache miss and hit) and sha256 API key lookup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// What is measured:
//
// - `jwt_verify/<alg>/miss`: `JwtVerifier::verify` on a token it has not cached: parse, key
//   lookup, signature check, claim validation, cache insert. The verifier's cache holds
//   `MISS_CACHE_ENTRIES` entries and the bench cycles through `MISS_POOL` distinct tokens
//   (distinct `jti`), so every token has been evicted (FIFO) before it comes round again; the
//   setup checks that no call was answered from the cache.
// - `jwt_verify/<alg>/hit_verify`: `verify` on the same token again and again — the path the
//   gateway takes (`authn.rs` awaits `verify`, which consults the cache first).
// - `jwt_verify/<alg>/hit_verify_cached`: the synchronous `verify_cached` fast path on the same
//   token, i.e. the cache hit without the async wrapper.
//
// The async calls run inside one `block_on` of a current-thread tokio runtime per sample
// (`iter_custom`), so no per-iteration runtime entry is counted: inside the gateway `verify` is
// awaited from a task that is already running.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_identity::apikey::{self, ApiKeyEntry, ApiKeyStore};
use portcullis_identity::jwt::{
    Algorithm, DEFAULT_CACHE_MAX_ENTRIES, JwtProviderConfig, JwtVerifier, KeySource, StaticKey,
};
use serde_json::json;

const ISSUER: &str = "https://idp.bench";
const AUDIENCE: &str = "portcullis-api";
const KID: &str = "bench-key-1";
/// Distinct tokens cycled through by the miss benchmarks.
const MISS_POOL: usize = 64;
/// Cache size of the miss verifiers: smaller than the pool, so a token is always evicted
/// before it is presented again.
const MISS_CACHE_ENTRIES: usize = 16;
const API_KEYS: usize = 100;

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

/// A signing key and where the verifier gets the matching verification key from.
struct BenchKey {
    name: &'static str,
    alg: Algorithm,
    alg_name: &'static str,
    encoding: jsonwebtoken::EncodingKey,
    source: KeySource,
}

impl BenchKey {
    fn rsa() -> Self {
        let kp = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = kp.as_der().unwrap();
        // jsonwebtoken's RSA signer wants PKCS#1; its PEM reader extracts that from PKCS#8.
        let encoding =
            jsonwebtoken::EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes())
                .unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        Self::public("RS256", Algorithm::RS256, encoding, spki.as_ref())
    }

    fn p256() -> Self {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = kp.to_pkcs8v1().unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref());
        Self::public("ES256", Algorithm::ES256, encoding, spki.as_ref())
    }

    fn ed25519() -> Self {
        let kp = Ed25519KeyPair::generate().unwrap();
        let pkcs8 = kp.to_pkcs8().unwrap();
        let spki: PublicKeyX509Der = kp.public_key().as_der().unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
        Self::public("EdDSA", Algorithm::EdDSA, encoding, spki.as_ref())
    }

    fn hmac() -> Self {
        let secret = [0x5a_u8; 32];
        BenchKey {
            name: "HS256",
            alg: Algorithm::HS256,
            alg_name: "HS256",
            encoding: jsonwebtoken::EncodingKey::from_secret(&secret).unwrap(),
            source: KeySource::HmacSecret(secret.to_vec()),
        }
    }

    fn public(
        name: &'static str,
        alg: Algorithm,
        encoding: jsonwebtoken::EncodingKey,
        spki_der: &[u8],
    ) -> Self {
        BenchKey {
            name,
            alg,
            alg_name: name,
            encoding,
            source: KeySource::Static(vec![StaticKey::pem(
                Some(KID.to_owned()),
                pem("PUBLIC KEY", spki_der),
            )]),
        }
    }

    fn verifier(&self, cache_max_entries: usize) -> JwtVerifier {
        let mut config = JwtProviderConfig::new(
            ISSUER,
            vec![AUDIENCE.to_owned()],
            vec![self.alg],
            self.source.clone(),
        );
        config.cache_max_entries = cache_max_entries;
        JwtVerifier::new(config).unwrap()
    }

    /// A typical access token (≈ the claims of an OIDC IdP's access token), distinct per `n`.
    fn token(&self, n: usize) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = json!({"alg": self.alg_name, "kid": KID, "typ": "JWT"});
        let claims = json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "exp": now + 3600,
            "iat": now,
            "jti": format!("bench-token-{n}"),
            "scope": "read write profile",
        });
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, self.alg).unwrap();
        format!("{message}.{signature}")
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn jwt(c: &mut Criterion) {
    let rt = runtime();
    for key in [
        BenchKey::rsa(),
        BenchKey::p256(),
        BenchKey::ed25519(),
        BenchKey::hmac(),
    ] {
        let mut group = c.benchmark_group(format!("jwt_verify/{}", key.name));

        // Miss: every call does the full verification.
        let miss = key.verifier(MISS_CACHE_ENTRIES);
        let pool: Vec<String> = (0..MISS_POOL).map(|n| key.token(n)).collect();
        rt.block_on(async {
            for _ in 0..2 {
                for token in &pool {
                    miss.verify(token).await.unwrap();
                }
            }
        });
        let stats = miss.stats();
        assert_eq!(stats.cache_hits, 0, "miss bench must never hit the cache");
        assert_eq!(stats.signature_verifications, 2 * MISS_POOL as u64);
        // The position in the pool carries over between samples: restarting at token 0 each
        // sample would present tokens still in the cache.
        let mut tokens = pool.iter().cycle();
        group.bench_function("miss", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let token = tokens.next().unwrap();
                        black_box(miss.verify(black_box(token)).await.unwrap());
                    }
                    start.elapsed()
                })
            });
        });
        assert_eq!(miss.stats().cache_hits, 0);

        // Hit: one token, verified once, then answered from the cache.
        let hit = key.verifier(DEFAULT_CACHE_MAX_ENTRIES);
        let token = key.token(0);
        rt.block_on(hit.verify(&token)).unwrap();
        group.bench_function("hit_verify", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(hit.verify(black_box(&token)).await.unwrap());
                    }
                    start.elapsed()
                })
            });
        });
        group.bench_function("hit_verify_cached", |b| {
            b.iter(|| hit.verify_cached(black_box(&token)).unwrap().unwrap());
        });
        assert_eq!(hit.stats().signature_verifications, 1, "hit bench must hit");
        group.finish();
    }
}

fn api_keys(c: &mut Criterion) {
    let mut presented = Vec::with_capacity(API_KEYS);
    let entries: Vec<ApiKeyEntry> = (0..API_KEYS)
        .map(|i| {
            let (key, hash) = apikey::generate_key();
            presented.push(key);
            ApiKeyEntry {
                id: format!("key-{i}"),
                hash,
                principal: format!("svc-{i}"),
                scopes: vec!["read".to_owned(), "write".to_owned()],
                tier: Some("gold".to_owned()),
                expires: None,
            }
        })
        .collect();
    let store = Arc::new(ApiKeyStore::new(entries).unwrap());
    // The scan is constant-time, so the matching position does not matter; take one mid-list.
    let valid = presented[API_KEYS / 2].clone();
    let (unknown, _) = apikey::generate_key();

    let mut group = c.benchmark_group("api_key_sha256_100");
    group.bench_function("valid", |b| {
        b.iter(|| store.authenticate(black_box(&valid)).unwrap());
    });
    group.bench_function("unknown", |b| {
        b.iter(|| store.authenticate(black_box(&unknown)).unwrap_err());
    });
    group.finish();
}

fn config() -> Criterion {
    // Short defaults for a shared machine; command-line flags still override them.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = jwt, api_keys
}
criterion_main!(benches);
