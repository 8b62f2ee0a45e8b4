//! API keys: header-only extraction, sha256 and argon2 storage, expiry, generation, and the
//! JSON Lines keys file with line-numbered errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Request};
use portcullis_identity::apikey::{
    ApiKeyEntry, ApiKeyError, ApiKeyHeaders, ApiKeyStore, GENERATED_KEY_PREFIX, MAX_ARGON2_KEYS,
    REASON_EXPIRED, REASON_INVALID_KEY, extract, generate_key, hash_key_argon2, hash_key_sha256,
    load_keys_file, parse_keys_file,
};
use portcullis_identity::{AuthError, AuthMethod};

const INVALID: AuthError = AuthError::Invalid {
    reason: REASON_INVALID_KEY,
};

const HUMAN_KEY: &str = "correct horse battery";

/// One argon2id hash of [`HUMAN_KEY`], computed once: argon2 is slow on purpose.
fn human_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_key_argon2(HUMAN_KEY).unwrap())
}

fn entry(id: &str, hash: String) -> ApiKeyEntry {
    ApiKeyEntry {
        id: id.to_owned(),
        hash,
        principal: format!("principal-{id}"),
        scopes: vec!["orders:read".to_owned(), "orders:write".to_owned()],
        tier: Some("gold".to_owned()),
        expires: None,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn generate_key_round_trip() {
    let (key, hash) = generate_key();
    assert!(key.starts_with(GENERATED_KEY_PREFIX), "{key}");
    // 32 bytes base64url without padding = 43 characters.
    let body = &key[GENERATED_KEY_PREFIX.len()..];
    assert_eq!(body.len(), 43);
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(hash.starts_with("sha256:"));
    assert_eq!(hash.len(), "sha256:".len() + 64);
    assert_eq!(hash, hash_key_sha256(&key));
    assert!(!hash.contains(body), "hash line must not contain the key");

    let store = ApiKeyStore::new([entry("generated", hash)]).unwrap();
    let identity = store.authenticate(&key).unwrap();
    assert_eq!(identity.method, AuthMethod::ApiKey);
    assert_eq!(identity.principal, "principal-generated");
    assert_eq!(identity.credential_id.as_deref(), Some("generated"));
    assert_eq!(identity.scopes, ["orders:read", "orders:write"]);
    assert_eq!(identity.tier.as_deref(), Some("gold"));
    assert!(identity.claims.is_empty());

    let (other, _) = generate_key();
    assert_ne!(key, other, "keys must be random");
    assert_eq!(store.authenticate(&other), Err(INVALID));
}

#[test]
fn sha256_key_accepted_wrong_refused() {
    let (key_a, hash_a) = generate_key();
    let (key_b, hash_b) = generate_key();
    let store = ApiKeyStore::new([entry("a", hash_a), entry("b", hash_b)]).unwrap();
    assert_eq!(store.len(), 2);
    assert_eq!(
        store.authenticate(&key_a).unwrap().credential_id.as_deref(),
        Some("a")
    );
    assert_eq!(
        store.authenticate(&key_b).unwrap().credential_id.as_deref(),
        Some("b")
    );
    assert_eq!(store.authenticate(&format!("{key_a}x")), Err(INVALID));
    assert_eq!(store.authenticate(&key_a[..key_a.len() - 1]), Err(INVALID));
    assert_eq!(store.authenticate("pk_"), Err(INVALID));
    assert_eq!(store.authenticate(&"k".repeat(5000)), Err(INVALID));
    assert_eq!(store.authenticate(""), Err(AuthError::Missing));
    // The stored hash itself is not a key.
    assert_eq!(store.authenticate(&hash_key_sha256(&key_a)), Err(INVALID));
}

#[test]
fn argon2_key_accepted_wrong_refused_and_cached() {
    let (generated, generated_hash) = generate_key();
    let store = ApiKeyStore::new([
        entry("sha", generated_hash),
        entry("human", human_hash().to_owned()),
    ])
    .unwrap();

    // A sha256 match never touches argon2.
    assert_eq!(
        store
            .authenticate(&generated)
            .unwrap()
            .credential_id
            .as_deref(),
        Some("sha")
    );
    assert_eq!(store.argon2_verifications(), 0);

    let identity = store.authenticate(HUMAN_KEY).unwrap();
    assert_eq!(identity.credential_id.as_deref(), Some("human"));
    assert_eq!(identity.principal, "principal-human");
    assert_eq!(store.argon2_verifications(), 1);
    // Cached: the same key again costs no argon2.
    store.authenticate(HUMAN_KEY).unwrap();
    assert_eq!(store.argon2_verifications(), 1);

    assert_eq!(store.authenticate("correct horse battery!"), Err(INVALID));
    assert_eq!(store.argon2_verifications(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_wrapper_handles_both_kinds() {
    let (generated, generated_hash) = generate_key();
    let store = Arc::new(
        ApiKeyStore::new([
            entry("sha", generated_hash),
            entry("human", human_hash().to_owned()),
        ])
        .unwrap(),
    );
    assert!(store.authenticate_async(&generated).await.is_ok());
    assert_eq!(
        store
            .authenticate_async(HUMAN_KEY)
            .await
            .unwrap()
            .credential_id
            .as_deref(),
        Some("human")
    );
    assert_eq!(store.authenticate_async("nope").await, Err(INVALID));
    assert_eq!(store.authenticate_async("").await, Err(AuthError::Missing));
}

#[test]
fn expired_key_refused() {
    let (key, hash) = generate_key();
    let now = unix_now();
    let store = ApiKeyStore::new([
        ApiKeyEntry {
            expires: Some(now - 1),
            ..entry("old", hash)
        },
        ApiKeyEntry {
            expires: Some(now + 3600),
            ..entry("human", human_hash().to_owned())
        },
    ])
    .unwrap();
    let expired = AuthError::Invalid {
        reason: REASON_EXPIRED,
    };
    assert_eq!(store.authenticate(&key), Err(expired.clone()));
    // Valid until its expiry second, refused from then on.
    let expiry = UNIX_EPOCH + Duration::from_secs(now - 1);
    assert!(
        store
            .authenticate_at(&key, expiry - Duration::from_secs(1))
            .is_ok()
    );
    assert_eq!(store.authenticate_at(&key, expiry), Err(expired.clone()));

    assert!(store.authenticate(HUMAN_KEY).is_ok());
    let later = SystemTime::now() + Duration::from_secs(7200);
    assert_eq!(store.authenticate_at(HUMAN_KEY, later), Err(expired));
}

#[test]
fn store_validation() {
    let (_, hash) = generate_key();
    // Plain keys and unknown hash kinds are refused, without echoing the value.
    let err = ApiKeyStore::new([entry("plain", "pk_super_secret_value".to_owned())]).unwrap_err();
    assert!(matches!(err, ApiKeyError::InvalidEntry { ref id, .. } if id == "plain"));
    assert!(!err.to_string().contains("super_secret"), "{err}");

    for bad in ["sha256:abcd", "sha256:", "md5:0123", "argon2:not-a-phc"] {
        assert!(
            ApiKeyStore::new([entry("bad", bad.to_owned())]).is_err(),
            "{bad} accepted"
        );
    }
    // argon2i / argon2d are refused for new key hashes; argon2id only.
    let argon2i = human_hash().replace("$argon2id$", "$argon2i$");
    assert!(
        ApiKeyStore::new([entry(
            "i",
            format!("argon2:{}", &argon2i["argon2:".len()..])
        )])
        .is_err()
    );

    let err =
        ApiKeyStore::new([entry("dup", hash.clone()), entry("dup", generate_key().1)]).unwrap_err();
    assert!(matches!(err, ApiKeyError::DuplicateId { .. }), "{err}");
    let err = ApiKeyStore::new([entry("one", hash.clone()), entry("two", hash)]).unwrap_err();
    assert!(matches!(err, ApiKeyError::DuplicateHash { .. }), "{err}");

    // The argon2 cap: every unknown key is checked against each argon2 entry.
    let many = (0..=MAX_ARGON2_KEYS).map(|i| entry(&format!("h{i}"), human_hash().to_owned()));
    let err = ApiKeyStore::new(many).unwrap_err();
    assert!(
        matches!(err, ApiKeyError::TooManyArgon2 { count, max } if count == MAX_ARGON2_KEYS + 1 && max == MAX_ARGON2_KEYS)
    );
    let at_cap = (0..MAX_ARGON2_KEYS).map(|i| entry(&format!("h{i}"), human_hash().to_owned()));
    assert!(ApiKeyStore::new(at_cap).is_ok());

    // Debug output never shows the hash.
    let shown = format!("{:?}", entry("x", human_hash().to_owned()));
    assert!(!shown.contains("argon2id"), "{shown}");
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::try_from(*name).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn extraction_from_headers_only() {
    let cfg = ApiKeyHeaders::default();
    assert_eq!(
        extract(&headers(&[("authorization", "ApiKey pk_a")]), &cfg),
        Some("pk_a")
    );
    assert_eq!(
        extract(&headers(&[("authorization", "apikey  pk_a")]), &cfg),
        Some("pk_a")
    );
    assert_eq!(
        extract(&headers(&[("x-api-key", "pk_b")]), &cfg),
        Some("pk_b")
    );
    assert_eq!(
        extract(&headers(&[("X-Api-Key", " pk_b ")]), &cfg),
        Some("pk_b")
    );
    // Other schemes belong to other methods.
    assert_eq!(
        extract(&headers(&[("authorization", "Bearer pk_a")]), &cfg),
        None
    );
    assert_eq!(
        extract(&headers(&[("authorization", "ApiKey")]), &cfg),
        None
    );
    assert_eq!(extract(&headers(&[("x-api-key", "")]), &cfg), None);
    assert_eq!(
        extract(
            &headers(&[("authorization", "Bearer t"), ("x-api-key", "pk_b")]),
            &cfg
        ),
        Some("pk_b")
    );
    // The same key twice is fine; two different keys are ambiguous and refused.
    assert_eq!(
        extract(
            &headers(&[("authorization", "ApiKey pk_a"), ("x-api-key", "pk_a")]),
            &cfg
        ),
        Some("pk_a")
    );
    assert_eq!(
        extract(
            &headers(&[("authorization", "ApiKey pk_a"), ("x-api-key", "pk_b")]),
            &cfg
        ),
        None
    );
    assert_eq!(
        extract(
            &headers(&[("x-api-key", "pk_a"), ("x-api-key", "pk_b")]),
            &cfg
        ),
        None
    );

    // A key in the URL is never read: the API only takes headers.
    let (key, hash) = generate_key();
    let request = Request::get(format!(
        "https://api.example/v1/orders?api_key={key}&x-api-key={key}"
    ))
    .body(())
    .unwrap();
    assert_eq!(extract(request.headers(), &cfg), None);
    let store = ApiKeyStore::new([entry("k", hash)]).unwrap();
    let (parts, ()) = Request::get("/v1/orders")
        .header("x-api-key", &key)
        .body(())
        .unwrap()
        .into_parts();
    let presented = extract(&parts.headers, &cfg).unwrap();
    assert_eq!(
        store
            .authenticate(presented)
            .unwrap()
            .credential_id
            .as_deref(),
        Some("k")
    );
}

#[test]
fn extraction_with_configured_headers() {
    let cfg = ApiKeyHeaders::new(Some("Token"), &["x-portcullis-key"]).unwrap();
    assert_eq!(cfg.authorization_scheme(), Some("Token"));
    assert_eq!(
        extract(&headers(&[("authorization", "token k1")]), &cfg),
        Some("k1")
    );
    assert_eq!(
        extract(&headers(&[("x-portcullis-key", "k2")]), &cfg),
        Some("k2")
    );
    // The defaults are no longer read.
    assert_eq!(
        extract(&headers(&[("authorization", "ApiKey k1")]), &cfg),
        None
    );
    assert_eq!(extract(&headers(&[("x-api-key", "k1")]), &cfg), None);

    let header_only = ApiKeyHeaders::new(None, &["x-key"]).unwrap();
    assert_eq!(
        extract(&headers(&[("authorization", "ApiKey k1")]), &header_only),
        None
    );
    assert_eq!(
        extract(&headers(&[("x-key", "k3")]), &header_only),
        Some("k3")
    );

    assert!(ApiKeyHeaders::new(None, &[]).is_err());
    assert!(ApiKeyHeaders::new(Some("Api Key"), &[]).is_err());
    assert!(ApiKeyHeaders::new(Some("ApiKey"), &["bad header"]).is_err());
    assert!(ApiKeyHeaders::new(Some("ApiKey"), &["authorization"]).is_err());
}

#[test]
fn keys_file_loads_json_lines() {
    let (key, hash) = generate_key();
    let text = format!(
        "# production keys\n\
         \n\
         {{\"id\":\"billing\",\"hash\":\"{hash}\",\"principal\":\"svc-billing\",\"scopes\":[\"invoices:read\"],\"tier\":\"gold\"}}\n\
         \x20  # indented comment\n\
         {{\"id\":\"ops\",\"hash\":\"argon2:{}\",\"principal\":\"ops\",\"expires\":4102444800}}\n",
        &human_hash()["argon2:".len()..]
    );
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let entries = load_keys_file(file.path()).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id, "billing");
    assert_eq!(entries[0].scopes, ["invoices:read"]);
    assert_eq!(entries[1].expires, Some(4_102_444_800));
    assert_eq!(entries[1].tier, None);

    let store = ApiKeyStore::new(entries).unwrap();
    assert_eq!(store.authenticate(&key).unwrap().principal, "svc-billing");
    assert_eq!(store.authenticate(HUMAN_KEY).unwrap().principal, "ops");

    // Revocation: the key is gone after the store is rebuilt without it.
    let revoked = parse_keys_file(
        &text
            .lines()
            .filter(|l| !l.contains("billing"))
            .collect::<Vec<_>>()
            .join("\n"),
        file.path(),
    )
    .unwrap();
    let store = ApiKeyStore::new(revoked).unwrap();
    assert_eq!(store.authenticate(&key), Err(INVALID));
}

#[test]
fn keys_file_errors_carry_line_numbers() {
    let (_, hash) = generate_key();
    let good = format!("{{\"id\":\"a\",\"hash\":\"{hash}\",\"principal\":\"p\"}}");
    let path = std::path::Path::new("/etc/portcullis/keys.jsonl");
    let cases = [
        (format!("# c\n{good}\n{{\"id\": \"b\",\n"), 3, "EOF"),
        (format!("\n\n{good}\nnot json\n"), 4, "expected"),
        (
            format!("{good}\n{{\"id\":\"b\",\"hash\":\"{hash}x\",\"principal\":\"p\"}}\n"),
            2,
            "64 hex",
        ),
        (
            format!(
                "{good}\n{{\"id\":\"b\",\"hash\":\"hunter2-plain-key\",\"principal\":\"p\"}}\n"
            ),
            2,
            "plain keys are not accepted",
        ),
        (
            format!(
                "{good}\n{{\"id\":\"b\",\"hash\":\"{hash}\",\"principal\":\"p\",\"expiry\":1}}\n"
            ),
            2,
            "unknown field `expiry`",
        ),
        (format!("{good}\n{good}\n"), 2, "duplicate api key id"),
        (
            format!("{{\"id\":\"a\",\"hash\":\"{hash}\"}}\n"),
            1,
            "missing field `principal`",
        ),
    ];
    for (text, line, needle) in cases {
        let err = parse_keys_file(&text, path).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ApiKeyError::Line { line: l, .. } if l == line),
            "expected line {line}: {message}"
        );
        assert!(
            message.starts_with(&format!("/etc/portcullis/keys.jsonl:{line}: ")),
            "{message}"
        );
        assert!(message.contains(needle), "expected {needle:?} in {message}");
        assert!(!message.contains("hunter2"), "secret echoed: {message}");
    }

    let err = load_keys_file("/nonexistent/keys.jsonl").unwrap_err();
    assert!(matches!(err, ApiKeyError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/keys.jsonl"));
}
