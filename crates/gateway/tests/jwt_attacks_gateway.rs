//! The classic JWT attacks, end to end through the gateway: `alg: none` in its spellings, an
//! HS256 token keyed with the provider's public key (algorithm confusion), `kid` path
//! traversal, an embedded `jwk`, `jku`/`x5u` pointing at an attacker's key server (which must
//! never be contacted), the ECDSA "psychic signature" (r = s = 0, CVE-2022-21449) and a 30 KB
//! token header. Each is answered 401 with `error="invalid_token"`, never forwarded, and
//! recorded with its precise reason. Also: `Cache-Control: no-store` on responses to
//! authenticated requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth_support;
mod common;

use auth_support::*;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

const KID: &str = "idp-2024";

/// `max_header_bytes` is raised so the 30 KB token reaches the JWT verifier (with the default
/// 16 KiB the HTTP reader refuses it first; see `oversized_token_header_with_default_limits`).
const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
limits:
  max_header_bytes: {max_header_bytes}
upstreams:
  app:
    targets: [{upstream}]
identity:
  jwt:
    - name: idp
      issuer: https://idp.test
      audiences: [orders-api]
      algorithms: [ES256]
      jwks_url: "{jwks_url}"
routes:
  - name: api
    upstream: app
    match: { path_prefix: /api }
    auth:
      methods: [jwt:idp]
  - name: cacheable
    upstream: app
    match: { path_prefix: /cacheable }
    auth:
      methods: [jwt:idp]
    response:
      security_headers: { no_store_when_authenticated: false }
  - name: public
    upstream: app
    match: { path_prefix: /public }
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;

struct Fixture {
    up: Upstream,
    gw: TestGateway,
    key: EcKey,
    jwks: MockServer,
}

async fn start(max_header_bytes: &str) -> Fixture {
    init();
    let up = Upstream::start().await;
    let key = EcKey::generate();
    let jwks = jwks_server(vec![key.jwk(KID)]).await;
    let yaml = YAML
        .replace("{jwks_url}", &jwks.url("/jwks.json"))
        .replace("{max_header_bytes}", max_header_bytes);
    let gw = TestGateway::start(&yaml, &up).await;
    Fixture { up, gw, key, jwks }
}

async fn call(f: &Fixture, path: &str, token: &str) -> Got {
    send(
        Request::get(f.gw.url(path))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

/// Send each token; each must be a 401 `invalid_token` whose event carries `reason`.
async fn assert_all_refused(f: &mut Fixture, attacks: Vec<(&str, String, &str)>) {
    let mut expected = Vec::new();
    for (name, token, reason) in &attacks {
        let got = call(f, "/api/orders", token).await;
        assert_problem(&got, 401, "unauthorized");
        assert_eq!(
            got.header("www-authenticate"),
            Some("Bearer realm=\"portcullis\", error=\"invalid_token\""),
            "{name}"
        );
        assert_eq!(
            got.header("cache-control"),
            None,
            "{name}: not authenticated"
        );
        let text = got.text();
        assert!(
            !text.contains(reason),
            "{name}: the client is told why: {text}"
        );
        expected.push((
            *name,
            got.header("x-request-id").unwrap().to_string(),
            *reason,
        ));
    }
    assert_eq!(
        f.up.count(),
        0,
        "an attack was forwarded: {:?}",
        f.up.seen()
    );
    let events = f.gw.stop().await;
    for (name, id, reason) in expected {
        let ev = event_by_id(&events, &id);
        assert_eq!(ev["unmapped"]["reason"], reason, "{name}: {ev}");
        assert_eq!(ev["action"], "Denied", "{name}");
        assert!(ev.get("actor").is_none(), "{name}: {ev}");
    }
    let raw = std::fs::read_to_string(&f.gw.events_path).unwrap();
    for (name, token, _) in &attacks {
        let signature = token.rsplit('.').next().unwrap();
        if signature.len() > 16 {
            assert!(!raw.contains(token.as_str()), "{name}: token in events");
        }
    }
}

#[tokio::test]
async fn the_genuine_token_works_and_is_not_cacheable() {
    let mut f = start("16KiB").await;
    let token = f.key.token(KID, &claims(json!({})));
    let got = call(&f, "/api/orders", &token).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("cache-control"), Some("no-store"));
    // The route that opts out leaves caching to the upstream; anonymous responses too.
    let got = call(&f, "/cacheable/orders", &token).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("cache-control"), None);
    let got = get(&f.gw.url("/public/x")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("cache-control"), None);
    assert_eq!(f.up.count(), 3);
    assert!(f.jwks.hits() >= 1);
    let events = f.gw.stop().await;
    assert_eq!(events[0]["actor"]["user"]["uid"], "alice");
}

#[tokio::test]
async fn alg_none_in_every_spelling_is_refused() {
    let mut f = start("16KiB").await;
    let c = claims(json!({"sub": "admin"}));
    let genuine = f.key.token(KID, &claims(json!({})));
    let genuine_sig = genuine.rsplit('.').next().unwrap().to_string();
    let mut attacks = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        attacks.push((
            alg,
            unsigned(&json!({"alg": alg, "kid": KID, "typ": "JWT"}), &c),
            "alg_not_allowed",
        ));
    }
    let with_sig = format!(
        "{}{genuine_sig}",
        unsigned(&json!({"alg": "none", "kid": KID}), &c)
    );
    attacks.push((
        "none with a borrowed signature",
        with_sig,
        "alg_not_allowed",
    ));
    let no_alg = unsigned(&json!({"kid": KID, "typ": "JWT"}), &c);
    attacks.push(("no alg", no_alg, "malformed"));
    let two_parts = unsigned(&json!({"alg": "none"}), &c)
        .trim_end_matches('.')
        .to_string();
    attacks.push(("two segments", two_parts, "malformed"));
    assert_all_refused(&mut f, attacks).await;
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let mut f = start("16KiB").await;
    let c = claims(json!({"sub": "admin"}));
    let jwk_text = f.key.jwk(KID).to_string();
    let mut attacks = Vec::new();
    for (name, secret) in [
        ("HS256 with the PEM", f.key.public_pem.as_bytes().to_vec()),
        (
            "HS256 with the PEM, no newline",
            f.key.public_pem.trim_end().as_bytes().to_vec(),
        ),
        ("HS256 with the JWK text", jwk_text.as_bytes().to_vec()),
    ] {
        let header = json!({"alg": "HS256", "kid": KID, "typ": "JWT"}).to_string();
        attacks.push((
            name,
            hs256(&secret, &header, &c.to_string()),
            "alg_not_allowed",
        ));
    }
    assert_all_refused(&mut f, attacks).await;
}

#[tokio::test]
async fn kid_traversal_and_injection_match_nothing() {
    let mut f = start("16KiB").await;
    let attacker = EcKey::generate();
    let c = claims(json!({"sub": "admin"}));
    let mut attacks = Vec::new();
    for kid in [
        "../../../../../../dev/null",
        "/dev/null",
        "../../../../../../proc/self/environ",
        "' OR '1'='1",
        "idp-2024/../idp-2024",
        "http://127.0.0.1:1/jwks.json",
    ] {
        attacks.push((kid, attacker.token(kid, &c), "unknown_kid"));
    }
    // The classic form: HS256 keyed with the empty contents of /dev/null.
    let header = json!({"alg": "HS256", "kid": "../../../../dev/null"}).to_string();
    attacks.push((
        "/dev/null HMAC",
        hs256(b"", &header, &c.to_string()),
        "alg_not_allowed",
    ));
    // The genuine kid with the attacker's signature.
    attacks.push(("real kid", attacker.token(KID, &c), "invalid_signature"));
    assert_all_refused(&mut f, attacks).await;
}

#[tokio::test]
async fn embedded_keys_and_key_urls_are_never_used_or_fetched() {
    let mut f = start("16KiB").await;
    let attacker = EcKey::generate();
    // The attacker's key server, serving the attacker's public key.
    let evil = jwks_server(vec![attacker.jwk("evil")]).await;
    let evil_url = evil.url("/.well-known/jwks.json");
    let c = claims(json!({"sub": "admin"}));
    let sign = |header: Value| attacker.sign_json(&header, &c);
    let attacks = vec![
        (
            "embedded jwk",
            sign(json!({"alg": "ES256", "jwk": attacker.bare_jwk()})),
            "embedded_key",
        ),
        (
            "embedded jwk with the real kid",
            sign(json!({"alg": "ES256", "kid": KID, "jwk": attacker.jwk(KID)})),
            "embedded_key",
        ),
        (
            "jku",
            sign(json!({"alg": "ES256", "kid": "evil", "jku": evil_url})),
            "embedded_key",
        ),
        (
            "jku with the real kid",
            sign(json!({"alg": "ES256", "kid": KID, "jku": evil_url})),
            "embedded_key",
        ),
        (
            "x5u",
            sign(json!({"alg": "ES256", "kid": "evil", "x5u": evil.url("/cert.pem")})),
            "embedded_key",
        ),
        (
            "x5c",
            sign(json!({"alg": "ES256", "x5c": ["MIIBkTCB+wIJAKHHIG..."]})),
            "embedded_key",
        ),
    ];
    assert_all_refused(&mut f, attacks).await;
    assert_eq!(evil.hits(), 0, "the attacker's server was contacted");
}

#[tokio::test]
async fn psychic_signatures_are_refused() {
    let mut f = start("16KiB").await;
    let c = claims(json!({"sub": "admin"}));
    let header = json!({"alg": "ES256", "kid": KID, "typ": "JWT"});
    let unsigned = unsigned(&header, &c);
    let attacks = vec![
        (
            "r = s = 0 (fixed)",
            format!("{unsigned}{}", b64([0u8; 64])),
            "invalid_signature",
        ),
        (
            "r = s = 0 (DER)",
            format!(
                "{unsigned}{}",
                b64([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])
            ),
            "invalid_signature",
        ),
        (
            "r = s = n (P-256 order)",
            format!("{unsigned}{}", b64([p256_order(), p256_order()].concat())),
            "invalid_signature",
        ),
    ];
    assert_all_refused(&mut f, attacks).await;
}

/// An HS256 token over header and payload text, keyed with `secret` (any bytes, even none).
fn hs256(secret: &[u8], header: &str, payload: &str) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, message.as_bytes());
    format!("{message}.{}", b64(tag.as_ref()))
}

/// The order n of the P-256 group, big-endian.
fn p256_order() -> Vec<u8> {
    let hex = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_30kb_token_header_is_refused_before_parsing() {
    let mut f = start("64KiB").await;
    let c = claims(json!({}));
    // Validly signed by the real key: only its size is wrong.
    let header = json!({"alg": "ES256", "kid": KID, "pad": "x".repeat(30 * 1024)});
    let big = f.key.sign_json(&header, &c);
    assert!(big.len() > 30 * 1024);
    let hits_before = f.jwks.hits();
    assert_all_refused(&mut f, vec![("30 KB header", big, "token_too_large")]).await;
    assert_eq!(
        f.jwks.hits(),
        hits_before,
        "no key lookup for an oversized token"
    );
}

#[tokio::test]
async fn oversized_token_header_with_default_limits() {
    // With the default 16 KiB header limit the HTTP reader refuses the request outright.
    let mut f = start("16KiB").await;
    let header = json!({"alg": "ES256", "kid": KID, "pad": "x".repeat(30 * 1024)});
    let big = f.key.sign_json(&header, &claims(json!({})));
    let req = format!(
        "GET /api/orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {big}\r\nconnection: close\r\n\r\n"
    );
    let got = raw_exchange(
        f.gw.addr(0),
        req.as_bytes(),
        std::time::Duration::from_secs(3),
    )
    .await;
    assert_eq!(got.status, 431);
    assert_eq!(f.up.count(), 0);
    let events = f.gw.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "Denied");
    let raw = std::fs::read_to_string(&f.gw.events_path).unwrap();
    assert!(!raw.contains(&big[..200]), "the token reached the events");
}

#[tokio::test]
async fn a_second_authorization_header_cannot_smuggle_an_unverified_token() {
    let mut f = start("16KiB").await;
    let good = f.key.token(KID, &claims(json!({})));
    let forged = unsigned(&json!({"alg": "none"}), &claims(json!({"sub": "admin"})));
    let mut ids = Vec::new();
    // Either order: only one would be verified, and the upstream might read the other.
    for (first, second) in [(&good, &forged), (&forged, &good), (&good, &good)] {
        let req = format!(
            "GET /api/orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {first}\r\n\
             authorization: Bearer {second}\r\nconnection: close\r\n\r\n"
        );
        let got = raw_exchange(
            f.gw.addr(0),
            req.as_bytes(),
            std::time::Duration::from_secs(3),
        )
        .await;
        assert_raw_problem(&got, 400, "invalid_request");
        assert_eq!(
            got.header("www-authenticate"),
            Some("Bearer realm=\"portcullis\", error=\"invalid_request\"")
        );
        ids.push(got.header("x-request-id").unwrap().to_string());
    }
    assert_eq!(f.up.count(), 0, "forwarded: {:?}", f.up.seen());
    let events = f.gw.stop().await;
    for id in ids {
        let ev = event_by_id(&events, &id);
        assert_eq!(ev["unmapped"]["reason"], "multiple_authorization_headers");
        assert!(ev.get("actor").is_none(), "{ev}");
    }
}
