//! JWT attack suite: every known way to get a forged, stale or foreign token past a JWT
//! verifier, each refused with its stable reason; the legitimate tokens of every supported
//! algorithm accepted with the right identity; and the JWKS machinery (rotation, outage, refetch
//! rate limit, cache) observed against a real HTTP JWKS server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod jwt_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwt_support::*;
use portcullis_identity::jwt::{Algorithm, JwtVerifier, KeySource, StaticKey};
use portcullis_identity::{AuthError, AuthMethod};
use serde_json::{Value, json};

const KID: &str = "key-1";

/// Wait (up to 10 s) for a background JWKS refresh to have had its effect.
async fn wait_for(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A JWKS server publishing the shared RSA key as `KID`, and an RS256 verifier reading it.
async fn rs256_setup() -> (JwksServer, JwtVerifier) {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let verifier = verifier(jwks_config(&server, vec![Algorithm::RS256]));
    (server, verifier)
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

// ---------------------------------------------------------------------------------------------
// Algorithm attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_every_case_is_refused_before_key_lookup() {
    let (server, verifier) = rs256_setup().await;
    let payload = claims(json!({"sub": "admin"})).to_string();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "kid": KID}).to_string();
        let unsigned = format!("{}.{}", b64(&header), b64(&payload));
        for signature in ["", "Ym9ndXM"] {
            let token = format!("{unsigned}.{signature}");
            assert_eq!(
                reason(&verifier, &token).await,
                "alg_not_allowed",
                "alg {alg}, sig {signature:?}"
            );
        }
    }
    assert_eq!(
        server.hits(),
        0,
        "a refused header must not cause a JWKS fetch"
    );
    assert_eq!(verifier.stats().signature_verifications, 0);
}

#[tokio::test]
async fn rs256_to_hs256_key_confusion_with_public_key_as_hmac_secret_is_refused() {
    let key = rsa_a();
    let payload = claims(json!({"sub": "admin"})).to_string();
    let header = json!({"alg": "HS256", "kid": KID, "typ": "JWT"}).to_string();
    let forged: Vec<String> = [key.public_pem.as_bytes(), key.public_der.as_slice()]
        .iter()
        .map(|secret| {
            sign_with(
                &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
                Algorithm::HS256,
                &header,
                &payload,
            )
        })
        .collect();

    // Against a JWKS provider…
    let (server, jwks) = rs256_setup().await;
    // …and against a provider configured with the very PEM the attacker used as the secret.
    let pem = verifier(config(
        vec![Algorithm::RS256],
        KeySource::Static(vec![StaticKey::pem(
            Some(KID.into()),
            key.public_pem.clone(),
        )]),
    ));
    for token in &forged {
        assert_eq!(reason(&jwks, token).await, "alg_not_allowed");
        assert_eq!(reason(&pem, token).await, "alg_not_allowed");
    }
    assert_eq!(server.hits(), 0);
    // The genuine RS256 token passes both.
    let genuine = key.token(KID, &claims(json!({})));
    assert!(jwks.verify(&genuine).await.is_ok());
    assert!(pem.verify(&genuine).await.is_ok());
}

#[tokio::test]
async fn hmac_algorithm_next_to_public_keys_is_a_config_error() {
    let key = rsa_a();
    let cfg = config(
        vec![Algorithm::RS256, Algorithm::HS256],
        KeySource::Static(vec![StaticKey::pem(None, key.public_pem.clone())]),
    );
    assert!(JwtVerifier::new(cfg).is_err());
    let cfg = config(vec![Algorithm::RS256], KeySource::HmacSecret(vec![1; 32]));
    assert!(JwtVerifier::new(cfg).is_err());
}

#[tokio::test]
async fn algorithm_key_type_mismatch_is_refused() {
    let ec = TestKey::ec(Algorithm::ES256);
    let server = JwksServer::start(vec![rsa_a().jwk("rsa"), ec.jwk("ec")]).await;
    let verifier = verifier(jwks_config(
        &server,
        vec![Algorithm::RS256, Algorithm::ES256],
    ));
    // An ES256 token naming the RSA key, and an RS256 token naming the EC key.
    let es_on_rsa = ec.token("rsa", &claims(json!({})));
    let rs_on_ec = rsa_a().token("ec", &claims(json!({})));
    assert_eq!(reason(&verifier, &es_on_rsa).await, "alg_not_allowed");
    assert_eq!(reason(&verifier, &rs_on_ec).await, "alg_not_allowed");
    // The key's own `alg` restricts it too: an RS256-published key refuses PS256.
    let ps_token = sign_with(
        &rsa_a().encoding,
        Algorithm::PS256,
        &json!({"alg": "PS256", "kid": "rsa"}).to_string(),
        &claims(json!({})).to_string(),
    );
    let verifier_ps = jwt_support::verifier(jwks_config(
        &server,
        vec![Algorithm::RS256, Algorithm::PS256],
    ));
    assert_eq!(reason(&verifier_ps, &ps_token).await, "alg_not_allowed");
    assert_eq!(verifier.stats().signature_verifications, 0);
}

#[tokio::test]
async fn alg_not_in_provider_list_is_refused() {
    let (server, verifier) = rs256_setup().await;
    let ec = TestKey::ec(Algorithm::ES256);
    assert_eq!(
        reason(&verifier, &ec.token(KID, &claims(json!({})))).await,
        "alg_not_allowed"
    );
    // Case variants and unknown names are not algorithms.
    for alg in ["rs256", "Rs256", "RS1", "HS1", ""] {
        let token = format!(
            "{}.{}.AAAA",
            b64(json!({"alg": alg, "kid": KID}).to_string()),
            b64(claims(json!({})).to_string())
        );
        assert_eq!(reason(&verifier, &token).await, "alg_not_allowed", "{alg}");
    }
    assert_eq!(server.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// kid attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kid_path_traversal_matches_no_key() {
    let (_server, verifier) = rs256_setup().await;
    for kid in [
        "../../../../dev/null",
        "/dev/null",
        "../../../../etc/passwd",
        "key-1/../key-1",
        "key-1\0",
    ] {
        let token = rsa_a().token(kid, &claims(json!({})));
        assert_eq!(reason(&verifier, &token).await, "unknown_kid", "{kid:?}");
    }
}

#[tokio::test]
async fn kid_sql_and_command_injection_matches_no_key() {
    let (_server, verifier) = rs256_setup().await;
    for kid in [
        "' OR '1'='1",
        "key-1' --",
        "|ls",
        "; cat /etc/passwd",
        "$(id)",
        "`id`",
    ] {
        let token = rsa_a().token(kid, &claims(json!({})));
        assert_eq!(reason(&verifier, &token).await, "unknown_kid", "{kid:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Keys carried in the token
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn jku_and_x5u_pointing_to_attacker_jwks_are_refused_and_never_fetched() {
    let attacker = rsa_attacker();
    let attacker_server = JwksServer::start(vec![attacker.jwk(KID), attacker.jwk("evil")]).await;
    let (server, verifier) = rs256_setup().await;
    for param in ["jku", "x5u"] {
        for kid in [KID, "evil"] {
            let header = json!({"alg": "RS256", "kid": kid, param: attacker_server.url()});
            let token = attacker.sign_json(&header, &claims(json!({"sub": "admin"})));
            assert_eq!(
                reason(&verifier, &token).await,
                "embedded_key",
                "{param} kid {kid}"
            );
        }
    }
    assert_eq!(
        attacker_server.hits(),
        0,
        "the attacker's JWKS must never be contacted"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn embedded_jwk_and_x5c_headers_are_refused() {
    let attacker = rsa_attacker();
    let (_server, verifier) = rs256_setup().await;
    let jwk_header = json!({"alg": "RS256", "kid": KID, "jwk": attacker.jwk(KID)});
    let token = attacker.sign_json(&jwk_header, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &token).await, "embedded_key");
    // Even without a kid (the CVE-2018-0114 shape: "verify with the key in the header").
    let jwk_header = json!({"alg": "RS256", "jwk": attacker.jwk("x")});
    let token = attacker.sign_json(&jwk_header, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &token).await, "embedded_key");
    let x5c_header = json!({"alg": "RS256", "kid": KID, "x5c": [b64(&attacker.public_der)]});
    let token = attacker.sign_json(&x5c_header, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &token).await, "embedded_key");
    assert_eq!(verifier.stats().signature_verifications, 0);
}

// ---------------------------------------------------------------------------------------------
// Signature attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn psychic_signature_ecdsa_zero_r_and_s_is_refused() {
    // CVE-2022-21449: Java 15–18 accepted an ECDSA signature with r = s = 0 for any message.
    let es256 = TestKey::ec(Algorithm::ES256);
    let es384 = TestKey::ec(Algorithm::ES384);
    let server = JwksServer::start(vec![es256.jwk("p256"), es384.jwk("p384")]).await;
    let verifier = verifier(jwks_config(
        &server,
        vec![Algorithm::ES256, Algorithm::ES384],
    ));
    for (kid, alg, len) in [("p256", "ES256", 64), ("p384", "ES384", 96)] {
        let header = json!({"alg": alg, "kid": kid}).to_string();
        let payload = claims(json!({"sub": "admin"})).to_string();
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(vec![0u8; len]));
        assert_eq!(
            reason(&verifier, &token).await,
            "invalid_signature",
            "{alg}"
        );
    }
    // The same keys verify real signatures, so the refusal is the zero signature's doing.
    assert!(
        verifier
            .verify(&es256.token("p256", &claims(json!({}))))
            .await
            .is_ok()
    );
    assert!(
        verifier
            .verify(&es384.token("p384", &claims(json!({}))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn null_signature_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    let s = segments(&token);
    assert_eq!(
        reason(&verifier, &format!("{}.{}.", s[0], s[1])).await,
        "invalid_signature"
    );
}

#[tokio::test]
async fn truncated_signature_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    let s = segments(&token);
    // Cut at the byte level and re-encoded: valid base64url, too-short signature.
    let signature = URL_SAFE_NO_PAD.decode(s[2]).unwrap();
    for keep in [signature.len() - 1, signature.len() / 2, 1] {
        let truncated = format!("{}.{}.{}", s[0], s[1], b64(&signature[..keep]));
        assert_eq!(
            reason(&verifier, &truncated).await,
            "invalid_signature",
            "{keep} bytes"
        );
    }
    // A length no base64url encoding can have is malformed.
    let odd = format!("{}.{}.{}", s[0], s[1], &s[2][..s[2].len() - 1]);
    assert_eq!(reason(&verifier, &odd).await, "malformed");
}

#[tokio::test]
async fn tampered_payload_with_original_signature_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    let s = segments(&token);
    for tamper in [
        json!({"sub": "admin"}),
        json!({"scope": "admin"}),
        json!({"exp": now() + 86_400 * 365}),
    ] {
        let payload = b64(claims(tamper.clone()).to_string());
        let forged = format!("{}.{}.{}", s[0], payload, s[2]);
        assert_eq!(
            reason(&verifier, &forged).await,
            "invalid_signature",
            "{tamper}"
        );
    }
    // The header is signed too.
    let header = b64(json!({"alg": "RS256", "kid": KID, "typ": "at+jwt"}).to_string());
    assert_eq!(
        reason(&verifier, &format!("{header}.{}.{}", s[1], s[2])).await,
        "invalid_signature"
    );
}

#[tokio::test]
async fn token_signed_by_unpublished_key_with_known_kid_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let forged = rsa_attacker().token(KID, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &forged).await, "invalid_signature");
}

// ---------------------------------------------------------------------------------------------
// Claim attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expired_token_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    // Default leeway is 60 s: expired 2 minutes ago is refused, 30 s ago is tolerated.
    let token = rsa_a().token(
        KID,
        &claims(json!({"exp": now() - 120, "iat": now() - 720})),
    );
    assert_eq!(reason(&verifier, &token).await, "expired");
    let token = rsa_a().token(KID, &claims(json!({"exp": now() - 30})));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn not_yet_valid_token_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({"nbf": now() + 3600})));
    assert_eq!(reason(&verifier, &token).await, "not_yet_valid");
}

#[tokio::test]
async fn iat_far_in_the_future_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let token = rsa_a().token(
        KID,
        &claims(json!({"iat": now() + 86_400, "exp": now() + 90_000})),
    );
    assert_eq!(reason(&verifier, &token).await, "issued_in_future");
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    for iss in [
        "https://evil.test",
        "https://idp.test/",
        "HTTPS://IDP.TEST",
        "https://idp.test.evil",
    ] {
        let token = rsa_a().token(KID, &claims(json!({"iss": iss})));
        assert_eq!(reason(&verifier, &token).await, "wrong_issuer", "{iss}");
    }
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    for aud in [
        json!("other-api"),
        json!(["other-api", "billing"]),
        json!([]),
    ] {
        let token = rsa_a().token(KID, &claims(json!({"aud": aud})));
        assert_eq!(reason(&verifier, &token).await, "wrong_audience", "{aud}");
    }
    let token = rsa_a().token(KID, &claims(json!({"aud": ["other-api", AUDIENCE]})));
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let (_server, verifier) = rs256_setup().await;
    let exp = now() + 600;
    let header = json!({"alg": "RS256", "kid": KID}).to_string();
    // Properly signed, so only the duplicate can be the reason.
    for payload in [
        format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"sub":"a","sub":"admin"}}"#),
        format!(
            r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"sub":"a","s\u0075b":"admin"}}"#
        ),
        format!(
            r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{exp},"exp":99999999999,"sub":"a"}}"#
        ),
    ] {
        let token = rsa_a().sign_raw(&header, &payload);
        assert_eq!(
            reason(&verifier, &token).await,
            "duplicate_claim",
            "{payload}"
        );
    }
    // Duplicate header parameters too (e.g. two `alg`s, read differently by two parsers).
    let payload = claims(json!({})).to_string();
    let dup_header = format!(r#"{{"alg":"RS256","kid":"{KID}","kid":"other"}}"#);
    assert_eq!(
        reason(&verifier, &rsa_a().sign_raw(&dup_header, &payload)).await,
        "duplicate_claim"
    );
    assert_eq!(verifier.stats().signature_verifications, 0);
}

#[tokio::test]
async fn string_typed_exp_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let header = json!({"alg": "RS256", "kid": KID}).to_string();
    let payload =
        format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"a","exp":"9999999999"}}"#);
    assert_eq!(
        reason(&verifier, &rsa_a().sign_raw(&header, &payload)).await,
        "invalid_claim_type"
    );
    for (bad, expected) in [
        (json!({"exp": "9999999999"}), "invalid_claim_type"),
        (json!({"exp": [9999999999u64]}), "invalid_claim_type"),
        (json!({"nbf": "0"}), "invalid_claim_type"),
        (json!({"iat": "0"}), "invalid_claim_type"),
        (json!({"aud": 1}), "invalid_claim_type"),
        (json!({"sub": 42}), "invalid_claim_type"),
        (json!({"exp": null}), "missing_claim"),
    ] {
        let token = rsa_a().token(KID, &claims(bad.clone()));
        assert_eq!(reason(&verifier, &token).await, expected, "{bad}");
    }
}

#[tokio::test]
async fn missing_exp_and_required_claims_are_refused() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.required_claims = vec!["tenant".into()];
    let verifier = verifier(cfg);
    let mut no_exp = claims(json!({"tenant": "t1"}));
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        reason(&verifier, &rsa_a().token(KID, &no_exp)).await,
        "missing_claim"
    );
    assert_eq!(
        reason(&verifier, &rsa_a().token(KID, &claims(json!({})))).await,
        "missing_claim"
    );
    let mut no_sub = claims(json!({"tenant": "t1"}));
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        reason(&verifier, &rsa_a().token(KID, &no_sub)).await,
        "missing_claim"
    );
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({"tenant": "t1"}))))
            .await
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// Header and structure attacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_crit_header_is_refused() {
    let (_server, verifier) = rs256_setup().await;
    let header = json!({"alg": "RS256", "kid": KID, "crit": ["exp"], "exp": now() + 60});
    let token = rsa_a().sign_json(&header, &claims(json!({})));
    assert_eq!(reason(&verifier, &token).await, "unknown_crit");
    let header = json!({"alg": "RS256", "kid": KID, "crit": ["b64"], "b64": false});
    let token = rsa_a().sign_json(&header, &claims(json!({})));
    assert_eq!(reason(&verifier, &token).await, "unknown_crit");
}

#[tokio::test]
async fn oversized_30kb_header_is_refused_before_parsing() {
    let (server, verifier) = rs256_setup().await;
    let header = json!({"alg": "RS256", "kid": KID, "pad": "x".repeat(30 * 1024)});
    let token = rsa_a().sign_json(&header, &claims(json!({})));
    assert_eq!(reason(&verifier, &token).await, "token_too_large");
    assert!(matches!(
        verifier.verify_cached(&token),
        Some(Err(AuthError::Invalid {
            reason: "token_too_large"
        }))
    ));
    // Garbage of the same size too: the length is checked before anything else.
    assert_eq!(
        reason(&verifier, &"!".repeat(30 * 1024)).await,
        "token_too_large"
    );
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn wrong_segment_count_is_refused() {
    let (server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    let s = segments(&token);
    for bad in [
        format!("{}.{}", s[0], s[1]),
        format!("{}.{}.{}.{}", s[0], s[1], s[2], s[2]),
        format!("{}.{}.{}.{}.{}", s[0], s[1], s[2], s[2], s[2]),
        format!("{token}."),
        s[0].to_owned(),
        String::new(),
        "..".to_owned(),
    ] {
        assert_eq!(reason(&verifier, &bad).await, "malformed", "{bad:?}");
    }
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn invalid_base64_is_refused() {
    let (server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    let s = segments(&token);
    for bad in [
        format!("{}!.{}.{}", s[0], s[1], s[2]),
        format!("{}.{}%.{}", s[0], s[1], s[2]),
        format!("{}.{}.{}*", s[0], s[1], s[2]),
        // Standard-alphabet characters and padding are not base64url.
        format!("{}.{}.{}", s[0].replace('-', "+"), s[1], s[2]) + "+/",
        format!("{}=.{}.{}", s[0], s[1], s[2]),
        format!(" {token}"),
        format!("{token}\n"),
        format!("{}.{}.{}", b64("not json"), s[1], s[2]),
    ] {
        assert_eq!(reason(&verifier, &bad).await, "malformed", "{bad:?}");
    }
    assert_eq!(server.hits(), 0);
}

// ---------------------------------------------------------------------------------------------
// Accepted tokens
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_supported_public_key_algorithm_is_accepted_with_the_right_identity() {
    let rsa = rsa_a();
    let ps256 = TestKey {
        alg: Algorithm::PS256,
        encoding: rsa.encoding.clone(),
        jwk: rsa.jwk.clone(),
        public_der: vec![],
        public_pem: String::new(),
    };
    let es256 = TestKey::ec(Algorithm::ES256);
    let es384 = TestKey::ec(Algorithm::ES384);
    let ed = TestKey::ed25519();
    let keys: Vec<(&str, &TestKey)> = vec![
        ("rs", rsa),
        ("ps", &ps256),
        ("es256", &es256),
        ("es384", &es384),
        ("ed", &ed),
    ];
    let server = JwksServer::start(keys.iter().map(|(kid, k)| k.jwk(kid)).collect()).await;
    let all = vec![
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    let verifier = verifier(jwks_config(&server, all));
    for (kid, key) in &keys {
        let token = key.token(
            kid,
            &claims(
                json!({"sub": format!("user-{kid}"), "jti": format!("jti-{kid}"), "tenant": "t1"}),
            ),
        );
        let identity = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert_eq!(identity.method, AuthMethod::Jwt);
        assert_eq!(identity.principal, format!("user-{kid}"));
        assert_eq!(
            identity.credential_id.as_deref(),
            Some(format!("jti-{kid}").as_str())
        );
        assert_eq!(identity.scopes, vec!["read", "write"]);
        assert_eq!(identity.claims["tenant"], json!("t1"));
        assert_eq!(identity.claims["iss"], json!(ISSUER));
        assert_eq!(identity.tier, None);
    }
    assert_eq!(server.hits(), 1, "one JWKS fetch serves every key");
}

#[tokio::test]
async fn scp_array_and_missing_jti_map_to_identity() {
    let (_server, verifier) = rs256_setup().await;
    let mut c = claims(json!({"scp": ["orders:read", "orders:write"]}));
    let obj = c.as_object_mut().unwrap();
    obj.remove("scope");
    obj.remove("jti");
    let identity = verifier.verify(&rsa_a().token(KID, &c)).await.unwrap();
    assert_eq!(identity.scopes, vec!["orders:read", "orders:write"]);
    assert_eq!(identity.credential_id, None);
}

#[tokio::test]
async fn hs256_token_is_accepted_by_an_hmac_provider_only() {
    let secret = b"0123456789abcdef0123456789abcdef-hmac-secret".to_vec();
    let verifier = verifier(config(
        vec![Algorithm::HS256],
        KeySource::HmacSecret(secret.clone()),
    ));
    let key = TestKey::hmac(&secret, Algorithm::HS256);
    let identity = verifier
        .verify(&key.token("any-kid", &claims(json!({}))))
        .await
        .unwrap();
    assert_eq!(identity.principal, "alice");
    assert_eq!(identity.credential_id.as_deref(), Some("token-1"));
    assert_eq!(identity.scopes, vec!["read", "write"]);
    // Another secret, HS512, and an RS256 token are all refused.
    let wrong = TestKey::hmac(b"another-secret-another-secret-another", Algorithm::HS256);
    assert_eq!(
        reason(&verifier, &wrong.token("k", &claims(json!({})))).await,
        "invalid_signature"
    );
    let hs512 = TestKey::hmac(&secret, Algorithm::HS512);
    assert_eq!(
        reason(&verifier, &hs512.token("k", &claims(json!({})))).await,
        "alg_not_allowed"
    );
    assert_eq!(
        reason(&verifier, &rsa_a().token("k", &claims(json!({})))).await,
        "alg_not_allowed"
    );
}

#[tokio::test]
async fn static_pem_and_jwk_keys_verify_tokens() {
    let ec = TestKey::ec(Algorithm::ES256);
    let ed = TestKey::ed25519();
    let keys = vec![
        StaticKey::pem(Some("rsa".into()), rsa_a().public_pem.clone()),
        StaticKey::pem(Some("ec".into()), ec.public_pem.clone()),
        StaticKey::jwk(ed.jwk("ed").to_string()),
    ];
    let verifier = verifier(config(
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        KeySource::Static(keys),
    ));
    for (kid, key) in [("rsa", rsa_a()), ("ec", &ec), ("ed", &ed)] {
        assert!(
            verifier
                .verify(&key.token(kid, &claims(json!({}))))
                .await
                .is_ok(),
            "{kid}"
        );
    }
    assert_eq!(
        reason(&verifier, &rsa_a().token("nope", &claims(json!({})))).await,
        "unknown_kid"
    );
}

#[tokio::test]
async fn private_key_pem_is_refused_as_static_key() {
    let cfg = config(
        vec![Algorithm::RS256],
        KeySource::Static(vec![StaticKey::pem(
            None,
            "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
        )]),
    );
    assert!(JwtVerifier::new(cfg).is_err());
}

// ---------------------------------------------------------------------------------------------
// JWKS: rotation, outage, rate limiting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn key_rotation_new_kid_is_fetched_on_demand() {
    let server = JwksServer::start(vec![rsa_a().jwk("old")]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.jwks_refresh_min_interval = Duration::from_millis(100);
    let verifier = verifier(cfg);
    assert!(
        verifier
            .verify(&rsa_a().token("old", &claims(json!({}))))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);

    // Before the IdP publishes the new key, a token with its kid is refused…
    tokio::time::sleep(Duration::from_millis(150)).await;
    let new_token = rsa_b().token("new", &claims(json!({"sub": "bob"})));
    assert_eq!(reason(&verifier, &new_token).await, "unknown_kid");
    assert_eq!(server.hits(), 2);

    // …and once published, the unknown kid triggers the refetch that finds it.
    server.set_keys(vec![rsa_a().jwk("old"), rsa_b().jwk("new")]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(verifier.verify(&new_token).await.unwrap().principal, "bob");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn withdrawn_key_stops_validating_cached_tokens() {
    let server = JwksServer::start(vec![rsa_a().jwk("old"), rsa_b().jwk("new")]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.jwks_refresh_min_interval = Duration::from_millis(50);
    cfg.jwks_cache_ttl = Duration::from_millis(100);
    let verifier = verifier(cfg);
    let old_token = rsa_a().token("old", &claims(json!({})));
    assert!(verifier.verify(&old_token).await.is_ok());
    assert!(verifier.verify(&old_token).await.is_ok());
    assert_eq!(verifier.stats().cache_hits, 1);

    // The IdP withdraws the old key (compromise); the stale set is refreshed in the background.
    server.set_keys(vec![rsa_b().jwk("new")]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = verifier
        .verify(&rsa_b().token("new", &claims(json!({}))))
        .await;
    wait_for(|| verifier.stats().jwks_fetch_attempts >= 2).await;
    assert_eq!(reason(&verifier, &old_token).await, "unknown_kid");
}

#[tokio::test]
async fn jwks_outage_known_kids_keep_verifying() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.jwks_cache_ttl = Duration::from_millis(50);
    cfg.jwks_refresh_min_interval = Duration::from_millis(50);
    cfg.cache_max_entries = 0; // every token goes through key lookup
    let verifier = verifier(cfg);
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({}))))
            .await
            .is_ok()
    );

    // The IdP answers 500: stale-set refreshes fail, the last good set keeps working.
    server.set_mode(Mode::Status(500));
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let token = rsa_a().token(KID, &claims(json!({"jti": format!("t{i}")})));
        assert!(
            verifier.verify(&token).await.is_ok(),
            "during 500s, round {i}"
        );
    }
    // A JWKS without usable keys is a failed fetch too, not an empty key set.
    server.set_mode(Mode::Serve);
    server.set_keys(vec![]);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = verifier
        .verify(&rsa_a().token(KID, &claims(json!({}))))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({}))))
            .await
            .is_ok()
    );

    // The IdP disappears entirely.
    server.stop();
    for i in 0..3 {
        tokio::time::sleep(Duration::from_millis(60)).await;
        let token = rsa_a().token(KID, &claims(json!({"jti": format!("s{i}")})));
        assert!(
            verifier.verify(&token).await.is_ok(),
            "server stopped, round {i}"
        );
    }
    wait_for(|| verifier.stats().jwks_fetch_failures >= 2).await;
}

#[tokio::test]
async fn unknown_kid_during_outage_is_refused_in_bounded_time() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.jwks_refresh_min_interval = Duration::from_millis(10);
    let verifier = verifier(cfg);
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({}))))
            .await
            .is_ok()
    );

    // An IdP that accepts the connection and never answers: the 2 s fetch timeout bounds us.
    server.set_mode(Mode::Hang);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let token = rsa_b().token("rotated", &claims(json!({})));
    assert_eq!(reason(&verifier, &token).await, "unknown_kid");
    let took = started.elapsed();
    // The 2 s fetch timeout plus scheduling slack: bounded, not the server's hour-long hang.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // Known kids still verify meanwhile.
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({"jti": "x"}))))
            .await
            .is_ok()
    );

    // An IdP that is gone: refused at once.
    server.stop();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    assert_eq!(
        reason(&verifier, &rsa_b().token("rotated-2", &claims(json!({})))).await,
        "unknown_kid"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn jwks_unreachable_without_cached_keys_is_unavailable() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let url = server.url();
    server.stop();
    drop(server);
    let verifier = verifier(config(
        vec![Algorithm::RS256],
        KeySource::JwksUrl { url, ca_pem: None },
    ));
    let token = rsa_a().token(KID, &claims(json!({})));
    let err = verifier.verify(&token).await.unwrap_err();
    assert_eq!(
        err,
        AuthError::Unavailable {
            reason: "jwks_unavailable"
        }
    );
    assert_eq!(err.rfc6750_code(), None);
    // Within the refetch interval the next request does not retry: still unavailable, at once.
    let started = Instant::now();
    assert_eq!(
        verifier.verify(&token).await.unwrap_err().reason(),
        "jwks_unavailable"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(verifier.stats().jwks_fetch_attempts, 1);
    assert!(verifier.refresh_keys().await.is_err());
}

/// A self-signed certificate for `localhost` as a server TLS config, and its PEM.
fn localhost_tls() -> (tokio_rustls::TlsAcceptor, String) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![generated.cert.der().clone()], key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        generated.cert.pem(),
    )
}

#[tokio::test]
async fn jwks_over_https_with_configured_ca_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca) = localhost_tls();
    let ca_path = dir.path().join("idp-ca.pem");
    std::fs::write(&ca_path, ca).unwrap();
    let server = JwksServer::start_with_tls(vec![rsa_a().jwk(KID)], Some(acceptor)).await;
    let verifier = verifier(config(
        vec![Algorithm::RS256],
        KeySource::JwksUrl {
            url: server.url_https(),
            ca_pem: Some(ca_path),
        },
    ));
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({}))))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn jwks_server_with_untrusted_certificate_is_not_believed() {
    // A man in the middle with a certificate our CA did not sign serves the attacker's keys.
    let dir = tempfile::tempdir().unwrap();
    let (mitm_acceptor, _) = localhost_tls();
    let (_, real_ca) = localhost_tls();
    let ca_path = dir.path().join("idp-ca.pem");
    std::fs::write(&ca_path, real_ca).unwrap();
    let mitm = JwksServer::start_with_tls(vec![rsa_attacker().jwk(KID)], Some(mitm_acceptor)).await;
    let verifier = verifier(config(
        vec![Algorithm::RS256],
        KeySource::JwksUrl {
            url: mitm.url_https(),
            ca_pem: Some(ca_path),
        },
    ));
    let forged = rsa_attacker().token(KID, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &forged).await, "jwks_unavailable");
    assert_eq!(
        mitm.hits(),
        0,
        "no HTTP request may cross an untrusted TLS session"
    );
}

#[test]
fn plain_http_jwks_to_a_remote_host_is_a_config_error() {
    for url in [
        "http://idp.example/jwks",
        "http://10.1.2.3/jwks",
        "ftp://idp.example/jwks",
    ] {
        let cfg = config(
            vec![Algorithm::RS256],
            KeySource::JwksUrl {
                url: url.into(),
                ca_pem: None,
            },
        );
        assert!(JwtVerifier::new(cfg).is_err(), "{url}");
    }
}

#[tokio::test]
async fn jwks_redirect_to_attacker_is_not_followed() {
    let attacker = JwksServer::start(vec![rsa_attacker().jwk(KID)]).await;
    let server = JwksServer::start(vec![]).await;
    server.set_mode(Mode::Redirect(attacker.url()));
    let verifier = verifier(jwks_config(&server, vec![Algorithm::RS256]));
    let forged = rsa_attacker().token(KID, &claims(json!({"sub": "admin"})));
    assert_eq!(reason(&verifier, &forged).await, "jwks_unavailable");
    assert_eq!(server.hits(), 1);
    assert_eq!(attacker.hits(), 0);
}

#[tokio::test]
async fn oversized_jwks_body_is_refused() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    server.set_mode(Mode::Oversized(300 * 1024));
    let verifier = verifier(jwks_config(&server, vec![Algorithm::RS256]));
    assert_eq!(
        reason(&verifier, &rsa_a().token(KID, &claims(json!({})))).await,
        "jwks_unavailable"
    );
}

#[tokio::test]
async fn random_kid_flood_causes_at_most_two_jwks_fetches() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.jwks_refresh_min_interval = Duration::from_secs(1);
    let verifier = verifier(cfg);
    assert!(
        verifier
            .verify(&rsa_a().token(KID, &claims(json!({}))))
            .await
            .is_ok()
    );
    assert_eq!(server.hits(), 1);
    // Past the refetch interval, so the flood is allowed exactly the one refetch it provokes.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let flood = |round: usize| -> Vec<String> {
        (0..50)
            .map(|i| {
                let kid = format!("random-{round}-{i}-{}", now());
                rsa_attacker().token(&kid, &claims(json!({})))
            })
            .collect()
    };
    for round in 0..2 {
        let tokens = flood(round);
        let started = Instant::now();
        let tasks: Vec<_> = tokens
            .into_iter()
            .map(|token| {
                let verifier = verifier.clone();
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap_err().reason(), "unknown_kid");
        }
        // All 50 arrived together and were answered quickly: nobody queued behind fetches.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let caused = server.hits() - 1;
    assert!(
        (1..=2).contains(&caused),
        "{caused} JWKS fetches for 100 unknown kids"
    );
    // And the flood did not disturb legitimate tokens.
    let token = rsa_a().token(KID, &claims(json!({"jti": "after"})));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(server.hits() - 1 <= 2);
}

#[tokio::test]
async fn concurrent_first_requests_share_one_jwks_fetch() {
    let (server, verifier) = rs256_setup().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let verifier = verifier.clone();
        let token = rsa_a().token(KID, &claims(json!({"jti": format!("c{i}")})));
        tasks.push(tokio::spawn(async move { verifier.verify(&token).await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(server.hits(), 1);
}

// ---------------------------------------------------------------------------------------------
// Verification cache
// ---------------------------------------------------------------------------------------------

/// A clock the test moves by hand.
fn manual_clock() -> (Arc<AtomicU64>, portcullis_identity::jwt::Clock) {
    let offset = Arc::new(AtomicU64::new(0));
    let o = Arc::clone(&offset);
    let clock: portcullis_identity::jwt::Clock =
        Arc::new(move || SystemTime::now() + Duration::from_secs(o.load(Ordering::SeqCst)));
    (offset, clock)
}

#[tokio::test]
async fn repeated_token_is_verified_from_the_cache() {
    let (server, verifier) = rs256_setup().await;
    let token = rsa_a().token(KID, &claims(json!({})));
    let first = verifier.verify(&token).await.unwrap();
    let second = verifier.verify(&token).await.unwrap();
    let third = verifier.verify_cached(&token).unwrap().unwrap();
    assert_eq!(first, second);
    assert_eq!(first, third);
    let stats = verifier.stats();
    assert_eq!(stats.signature_verifications, 1, "{stats:?}");
    assert_eq!(stats.cache_hits, 2);
    assert_eq!(stats.cached_tokens, 1);
    assert_eq!(server.hits(), 1);

    // A tampered copy is a different cache key: full verification, refused, not cached.
    let s = segments(&token);
    let forged = format!(
        "{}.{}.{}",
        s[0],
        b64(claims(json!({"sub": "admin"})).to_string()),
        s[2]
    );
    assert!(verifier.verify_cached(&forged).is_none());
    assert_eq!(reason(&verifier, &forged).await, "invalid_signature");
    assert_eq!(reason(&verifier, &forged).await, "invalid_signature");
    assert_eq!(verifier.stats().signature_verifications, 3);
    assert_eq!(verifier.stats().cached_tokens, 1);
}

#[tokio::test]
async fn expired_cached_token_is_refused() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let (offset, clock) = manual_clock();
    let verifier =
        JwtVerifier::with_clock(jwks_config(&server, vec![Algorithm::RS256]), clock).unwrap();
    let token = rsa_a().token(KID, &claims(json!({"exp": now() + 120})));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(verifier.stats().cache_hits, 1);

    // 120 s lifetime + 60 s leeway: at +200 s the cached entry is expired.
    offset.store(200, Ordering::SeqCst);
    assert!(matches!(
        verifier.verify_cached(&token),
        Some(Err(AuthError::Invalid { reason: "expired" }))
    ));
    assert_eq!(reason(&verifier, &token).await, "expired");
    assert_eq!(
        verifier.stats().signature_verifications,
        2,
        "the expired token was re-verified, not cached"
    );
    assert_eq!(verifier.stats().cached_tokens, 0);
}

#[tokio::test]
async fn cache_is_bounded() {
    let server = JwksServer::start(vec![rsa_a().jwk(KID)]).await;
    let mut cfg = jwks_config(&server, vec![Algorithm::RS256]);
    cfg.cache_max_entries = 5;
    let verifier = verifier(cfg);
    for i in 0..12 {
        let token = rsa_a().token(KID, &claims(json!({"jti": format!("b{i}")})));
        assert!(verifier.verify(&token).await.is_ok());
    }
    assert_eq!(verifier.stats().cached_tokens, 5);
}

#[tokio::test]
async fn identity_claims_hold_every_payload_claim() {
    let (_server, verifier) = rs256_setup().await;
    let c = claims(json!({"roles": ["admin"], "nested": {"a": 1}}));
    let identity = verifier.verify(&rsa_a().token(KID, &c)).await.unwrap();
    let mut expected: Vec<&String> = c.as_object().unwrap().keys().collect();
    expected.sort();
    let got: Vec<&String> = identity.claims.keys().collect();
    assert_eq!(got, expected);
    assert_eq!(identity.claims["nested"], json!({"a": 1}));
    let _: &Value = &identity.claims["roles"];
}

#[test]
fn verifier_is_shareable_and_its_future_is_send() {
    // The gateway runs verification inside multi-threaded hyper services.
    fn shareable<T: Send + Sync + 'static>() {}
    fn send<T: Send>(_: &T) {}
    shareable::<JwtVerifier>();
    let verifier = verifier(config(
        vec![Algorithm::HS256],
        KeySource::HmacSecret(vec![7; 32]),
    ));
    let future = verifier.verify("a.b.c");
    send(&future);
}
