//! Authentication end to end: a real gateway, a real upstream, real TLS, a real in-process
//! JWKS endpoint and RFC 7662 introspection endpoint, and client certificates from a test CA.
//!
//! Covered: API keys (header forms accepted, query string refused, challenges, what the
//! upstream sees), identity headers a client must never set, Basic (TLS only unless a route
//! allows plain HTTP), JWT (valid, expired, `alg: none`, wrong audience), the route order
//! `[jwt, introspection]` for opaque tokens, introspection (active, inactive, endpoint down →
//! 503 fail closed), mTLS (required and optional client certificates), the actor in events
//! (and no credential anywhere in the events file), and the gateway-signed upstream token
//! verified against the JWKS served on the admin API and on the public path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth_support;
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use auth_support::*;
use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

/// An htpasswd file with one bcrypt user, made with `htpasswd -nbB` when the tool is
/// installed, else the committed fixture (made the same way). Returns (file, user, password).
fn htpasswd_file(dir: &Path) -> (PathBuf, String, String) {
    let path = dir.join("users.htpasswd");
    let made = std::process::Command::new("htpasswd")
        .args(["-nbB", "alice", "alice-correct-horse"])
        .output();
    if let Ok(out) = made
        && out.status.success()
    {
        std::fs::write(&path, &out.stdout).unwrap();
        return (path, "alice".into(), "alice-correct-horse".into());
    }
    eprintln!("htpasswd not installed: using the committed bcrypt fixture");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../identity/tests/fixtures/htpasswd/users.htpasswd"
    );
    std::fs::copy(fixture, &path).unwrap();
    (path, "bcrypt".into(), "bcrypt-secret".into())
}

fn basic_value(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Everything one test needs: upstream, identity servers, credentials and a gateway.
struct Fixture {
    up: Upstream,
    gw: TestGateway,
    /// Kept alive for the gateway: the htpasswd file and the TLS certificate live here.
    _files: tempfile::TempDir,
    cert: TestCert,
    key: EcKey,
    _jwks: MockServer,
    introspection: MockServer,
    api_key: String,
    user: String,
    password: String,
}

const KID: &str = "idp-key-1";

/// Listener 0: plain HTTP; listener 1: TLS (`localhost`). `{extra_identity}` is spliced into
/// the identity section, `{admin}` at the top level.
const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
  - address: 127.0.0.1:0
    tls:
      certificates:
        - { cert: "{cert}", key: "{cert_key}" }
upstreams:
  app:
    targets: [{upstream}]
identity:
  api_keys:
    keys:
      - id: key-orders
        hash: "{key_hash}"
        principal: svc-orders
        scopes: [orders:read, orders:write]
  basic:
    htpasswd: "{htpasswd}"
    realm: orders
  jwt:
    - name: idp
      issuer: https://idp.test
      audiences: [orders-api]
      algorithms: [ES256]
      jwks_url: "{jwks_url}"
  introspection:
    - name: opaque
      endpoint: "{introspect_url}"
      client_id: portcullis
      client_secret: introspection-client-secret
    - name: down
      endpoint: "http://127.0.0.1:{closed_port}/introspect"
      client_id: portcullis
      client_secret: introspection-client-secret
      timeout: 1s
  strip_request_headers: [X-User-Id]
{extra_identity}
routes:
  - name: keys
    upstream: app
    match: { path_prefix: /keys }
    auth:
      methods: [api_key]
  - name: public
    upstream: app
    match: { path_prefix: /public }
    auth:
      public: true
  - name: basic
    upstream: app
    match: { path_prefix: /basic }
    auth:
      methods: [basic]
  - name: basic-plain
    upstream: app
    match: { path_prefix: /basic-plain }
    auth:
      methods: [basic]
      allow_basic_over_plain_http: true
  - name: jwt
    upstream: app
    match: { path_prefix: /jwt }
    auth:
      methods: [jwt:idp]
  - name: mixed
    upstream: app
    match: { path_prefix: /mixed }
    auth:
      methods: [jwt:idp, introspection:opaque]
  - name: opaque
    upstream: app
    match: { path_prefix: /opaque }
    auth:
      methods: [introspection:opaque]
  - name: down
    upstream: app
    match: { path_prefix: /down }
    auth:
      methods: [introspection:down]
events:
  file: {dir}/events.jsonl
{admin}
"#;

const ADMIN_TOKEN: &str = "admin-token-for-tests";

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with("", "").await
    }

    async fn start_with(extra_identity: &str, admin: &str) -> Fixture {
        init();
        let up = Upstream::start().await;
        let files = tempfile::tempdir().unwrap();
        let cert = make_cert(files.path(), "server", &["localhost"]);
        let (htpasswd, user, password) = htpasswd_file(files.path());
        let key = EcKey::generate();
        let jwks = jwks_server(vec![key.jwk(KID)]).await;
        let now = now();
        let tokens = HashMap::from([
            (
                "opaque-active-token".to_string(),
                json!({"active": true, "sub": "bob", "scope": "orders:read",
                       "exp": now + 3600, "jti": "opaque-1", "token_type": "Bearer"}),
            ),
            (
                "opaque-inactive-token".to_string(),
                json!({"active": false}),
            ),
        ]);
        let introspection = introspection_server(tokens).await;
        let (api_key, hash) = portcullis_identity::apikey::generate_key();
        let yaml = YAML
            .replace("{cert}", &cert.cert_path.display().to_string())
            .replace("{cert_key}", &cert.key_path.display().to_string())
            .replace("{key_hash}", &hash)
            .replace("{htpasswd}", &htpasswd.display().to_string())
            .replace("{jwks_url}", &jwks.url("/jwks.json"))
            .replace("{introspect_url}", &introspection.url("/introspect"))
            .replace("{closed_port}", &closed_port().await.to_string())
            .replace("{extra_identity}", extra_identity)
            .replace("{admin}", admin);
        let gw = TestGateway::start(&yaml, &up).await;
        Fixture {
            up,
            gw,
            _files: files,
            cert,
            key,
            _jwks: jwks,
            introspection,
            api_key,
            user,
            password,
        }
    }

    /// A plain-HTTP request with these headers.
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        let mut req = Request::get(self.gw.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(req.body(Full::new(Bytes::new())).unwrap()).await
    }

    /// The same over TLS (listener 1).
    async fn get_tls(&self, path: &str, headers: &[(&str, &str)]) -> Got {
        let cfg = tls_client_config(&[&self.cert.der], &[b"http/1.1"]);
        let stream = tls_connect(self.gw.addr(1), "localhost", cfg)
            .await
            .unwrap();
        let mut req = Request::get(path).header("host", "localhost");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        h1_over(stream, req.body(Full::new(Bytes::new())).unwrap()).await
    }

    fn token(&self, extra: Value) -> String {
        self.key.token(KID, &claims(extra))
    }

    /// The last request the upstream saw.
    fn last_seen(&self) -> Seen {
        self.up
            .seen()
            .last()
            .cloned()
            .expect("the upstream saw no request")
    }

    fn raw_events(&self) -> String {
        std::fs::read_to_string(&self.gw.events_path).unwrap_or_default()
    }
}

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

fn challenges(got: &Got) -> Vec<String> {
    got.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// API keys

#[tokio::test]
async fn api_key_in_either_header_is_accepted_and_never_reaches_the_upstream() {
    let mut f = Fixture::start().await;
    let apikey_auth = format!("ApiKey {}", f.api_key);
    for (i, header) in [
        ("x-api-key", f.api_key.as_str()),
        ("authorization", apikey_auth.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let got = f.get("/keys/orders", &[header]).await;
        assert_eq!(got.status, 200, "{:?}: {}", header.0, got.text());
        assert_eq!(
            got.header("cache-control"),
            Some("no-store"),
            "authenticated responses are not cacheable"
        );
        let seen = f.last_seen();
        assert_eq!(f.up.count(), i + 1);
        assert_eq!(seen.header("x-api-key"), None, "key header stripped");
        assert_eq!(seen.header("authorization"), None, "Authorization stripped");
        assert!(
            !seen.headers.iter().any(|(_, v)| v.contains(&f.api_key)),
            "the key reached the upstream: {:?}",
            seen.headers
        );
        assert_eq!(seen.header("x-portcullis-principal"), Some("svc-orders"));
        assert_eq!(seen.header("x-portcullis-auth-method"), Some("api_key"));
        assert_eq!(
            seen.header("x-portcullis-scopes"),
            Some("orders:read orders:write")
        );
        assert_eq!(
            seen.header("x-portcullis-credential-id"),
            Some("key-orders")
        );
    }
    let events = f.gw.stop().await;
    assert_eq!(events.len(), 2);
    for ev in &events {
        assert_eq!(ev["actor"]["user"]["uid"], "svc-orders", "{ev}");
        assert_eq!(ev["unmapped"]["auth"]["method"], "api_key", "{ev}");
        assert_eq!(
            ev["unmapped"]["auth"]["credential_id"], "key-orders",
            "{ev}"
        );
    }
}

#[tokio::test]
async fn api_key_in_the_query_string_is_refused_and_never_read_as_a_key() {
    let mut f = Fixture::start().await;
    for param in ["api_key", "apikey", "key"] {
        let got = f
            .get(&format!("/keys/orders?{param}={}", f.api_key), &[])
            .await;
        let doc = assert_problem(&got, 400, "credential_in_url");
        assert!(!doc.to_string().contains(&f.api_key));
        assert!(challenges(&got).is_empty(), "refused before authentication");
    }
    // Even together with a valid key in the header: the URL is refused, not ignored.
    let got = f
        .get(
            &format!("/keys/orders?api_key={}", f.api_key),
            &[("x-api-key", &f.api_key)],
        )
        .await;
    assert_problem(&got, 400, "credential_in_url");
    assert_eq!(f.up.count(), 0, "nothing was forwarded");
    let raw = {
        f.gw.stop().await;
        f.raw_events()
    };
    assert!(!raw.contains(&f.api_key), "a key reached the events: {raw}");
    let events = read_events(&f.gw.events_path);
    assert_eq!(events.len(), 4);
    for ev in &events {
        assert_eq!(ev["unmapped"]["reason"], "credential_in_url", "{ev}");
        assert!(ev.get("actor").is_none(), "{ev}");
    }
}

#[tokio::test]
async fn wrong_api_key_is_401_with_a_challenge_that_says_nothing_more() {
    let mut f = Fixture::start().await;
    let (other_key, _) = portcullis_identity::apikey::generate_key();
    let got = f.get("/keys/orders", &[("x-api-key", &other_key)]).await;
    let doc = assert_problem(&got, 401, "unauthorized");
    assert_eq!(challenges(&got), vec!["ApiKey realm=\"portcullis\""]);
    assert_eq!(doc["detail"], "the credentials were not accepted", "{doc}");
    let text = got.text();
    for leak in [
        "invalid_key",
        "unknown",
        "expired",
        "key-orders",
        &other_key,
    ] {
        assert!(!text.contains(leak), "the body says {leak:?}: {text}");
    }
    let wrong_rid = rid(&got);

    let got = f.get("/keys/orders", &[]).await;
    let doc = assert_problem(&got, 401, "unauthorized");
    assert_eq!(challenges(&got), vec!["ApiKey realm=\"portcullis\""]);
    assert_eq!(doc["detail"], "credentials are required", "{doc}");
    let missing_rid = rid(&got);

    // A bearer token is not an API key: still "missing" for an api_key route.
    let got = f
        .get("/keys/orders", &[("authorization", "Bearer abc.def.ghi")])
        .await;
    assert_problem(&got, 401, "unauthorized");
    let bearer_rid = rid(&got);
    assert_eq!(f.up.count(), 0);

    let events = f.gw.stop().await;
    assert_eq!(
        event_by_id(&events, &wrong_rid)["unmapped"]["reason"],
        "invalid_key"
    );
    assert_eq!(
        event_by_id(&events, &missing_rid)["unmapped"]["reason"],
        "missing_credentials"
    );
    assert_eq!(
        event_by_id(&events, &bearer_rid)["unmapped"]["reason"],
        "missing_credentials"
    );
    for ev in &events {
        assert_eq!(ev["action"], "Denied");
        assert!(ev.get("actor").is_none(), "{ev}");
    }
    assert!(!f.raw_events().contains(&other_key));
}

#[tokio::test]
async fn client_sent_identity_headers_are_stripped_even_on_public_routes() {
    let f = Fixture::start().await;
    let spoof = [
        ("x-portcullis-principal", "admin"),
        ("X-Portcullis-Auth-Method", "mtls"),
        ("x-portcullis-scopes", "admin:all"),
        ("x-portcullis-credential-id", "root"),
        ("x-portcullis-token", "forged.token.value"),
        ("x-user-id", "1"),
    ];
    let got = f.get("/public/page", &spoof).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("cache-control"), None, "anonymous: cacheable");
    let seen = f.last_seen();
    for (name, _) in &spoof {
        assert_eq!(seen.header(name), None, "{name} reached the upstream");
    }

    // On an authenticated route the gateway's values replace the client's.
    let mut headers = spoof.to_vec();
    headers.push(("x-api-key", &f.api_key));
    let got = f.get("/keys/orders", &headers).await;
    assert_eq!(got.status, 200);
    let seen = f.last_seen();
    assert_eq!(seen.header("x-portcullis-principal"), Some("svc-orders"));
    assert_eq!(seen.header("x-portcullis-auth-method"), Some("api_key"));
    assert_eq!(
        seen.header("x-portcullis-credential-id"),
        Some("key-orders")
    );
    assert_eq!(seen.header("x-user-id"), None);
    assert_eq!(seen.header("x-portcullis-token"), None);
    let principals: Vec<_> = seen
        .headers
        .iter()
        .filter(|(k, _)| k == "x-portcullis-principal")
        .collect();
    assert_eq!(principals.len(), 1, "exactly one principal header");
}

// ---------------------------------------------------------------------------------------------
// Basic

#[tokio::test]
async fn basic_is_accepted_over_tls() {
    let mut f = Fixture::start().await;
    let value = basic_value(&f.user, &f.password);
    let got = f.get_tls("/basic/x", &[("authorization", &value)]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let seen = f.last_seen();
    assert_eq!(seen.header("x-portcullis-principal"), Some(f.user.as_str()));
    assert_eq!(seen.header("x-portcullis-auth-method"), Some("basic"));
    assert_eq!(seen.header("authorization"), None, "password not forwarded");

    let wrong = basic_value(&f.user, "not-the-password");
    let got = f.get_tls("/basic/x", &[("authorization", &wrong)]).await;
    assert_problem(&got, 401, "unauthorized");
    assert_eq!(
        challenges(&got),
        vec!["Basic realm=\"orders\", charset=\"UTF-8\""]
    );
    let wrong_rid = rid(&got);
    assert_eq!(f.up.count(), 1);
    let events = f.gw.stop().await;
    assert_eq!(
        event_by_id(&events, &wrong_rid)["unmapped"]["reason"],
        "invalid_credentials"
    );
    let raw = f.raw_events();
    assert!(!raw.contains(&f.password) && !raw.contains(&value[6..]));
}

#[tokio::test]
async fn basic_over_plain_http_is_refused_before_the_password_is_checked() {
    let mut f = Fixture::start().await;
    let right = basic_value(&f.user, &f.password);
    let wrong = basic_value(&f.user, "not-the-password");
    let mut rids = Vec::new();
    // Right and wrong passwords get the same answer: the password is never judged, so plain
    // HTTP is no oracle for it.
    for value in [&right, &wrong] {
        let got = f.get("/basic/x", &[("authorization", value)]).await;
        let doc = assert_problem(&got, 401, "unauthorized");
        assert_eq!(doc["detail"], "the credentials were not accepted");
        rids.push(rid(&got));
    }
    assert_eq!(f.up.count(), 0);

    // A route that explicitly allows it accepts Basic over plain HTTP (and checks passwords).
    let got = f.get("/basic-plain/x", &[("authorization", &right)]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        f.last_seen().header("x-portcullis-principal"),
        Some(f.user.as_str())
    );
    let got = f.get("/basic-plain/x", &[("authorization", &wrong)]).await;
    assert_problem(&got, 401, "unauthorized");
    let checked_rid = rid(&got);

    let events = f.gw.stop().await;
    for r in &rids {
        assert_eq!(
            event_by_id(&events, r)["unmapped"]["reason"],
            "basic_requires_tls"
        );
    }
    assert_eq!(
        event_by_id(&events, &checked_rid)["unmapped"]["reason"],
        "invalid_credentials"
    );
    assert!(!f.raw_events().contains(&f.password));
}

// ---------------------------------------------------------------------------------------------
// JWT

#[tokio::test]
async fn valid_jwt_is_accepted_and_the_bearer_token_forwarded() {
    let mut f = Fixture::start().await;
    let token = f.token(json!({}));
    let bearer = format!("Bearer {token}");
    let got = f.get("/jwt/orders", &[("authorization", &bearer)]).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("cache-control"), Some("no-store"));
    let seen = f.last_seen();
    assert_eq!(seen.header("x-portcullis-principal"), Some("alice"));
    assert_eq!(seen.header("x-portcullis-auth-method"), Some("jwt"));
    assert_eq!(seen.header("x-portcullis-scopes"), Some("orders:read"));
    assert_eq!(
        seen.header("x-portcullis-credential-id"),
        Some("jti-alice-1")
    );
    assert_eq!(
        seen.header("authorization"),
        Some(bearer.as_str()),
        "bearer tokens are forwarded by default"
    );
    let events = f.gw.stop().await;
    assert_eq!(events[0]["actor"]["user"]["uid"], "alice");
    assert_eq!(events[0]["unmapped"]["auth"]["method"], "jwt");
    assert!(!f.raw_events().contains(&token));
}

#[tokio::test]
async fn expired_jwt_is_401_invalid_token() {
    let mut f = Fixture::start().await;
    let token = f.token(json!({"exp": now() - 3600, "iat": now() - 7200}));
    let got = f
        .get(
            "/jwt/orders",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    let doc = assert_problem(&got, 401, "unauthorized");
    assert_eq!(
        challenges(&got),
        vec!["Bearer realm=\"portcullis\", error=\"invalid_token\""]
    );
    assert!(!doc.to_string().contains("expired"), "{doc}");
    let r = rid(&got);
    assert_eq!(f.up.count(), 0);
    let events = f.gw.stop().await;
    assert_eq!(event_by_id(&events, &r)["unmapped"]["reason"], "expired");
}

#[tokio::test]
async fn alg_none_and_wrong_audience_are_401() {
    let mut f = Fixture::start().await;
    let none = unsigned(
        &json!({"alg": "none", "kid": KID, "typ": "JWT"}),
        &claims(json!({})),
    );
    let other_aud = f.token(json!({"aud": "billing-api"}));
    let mut expected = Vec::new();
    for (token, reason) in [(none, "alg_not_allowed"), (other_aud, "wrong_audience")] {
        let got = f
            .get(
                "/jwt/orders",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_problem(&got, 401, "unauthorized");
        assert_eq!(
            challenges(&got),
            vec!["Bearer realm=\"portcullis\", error=\"invalid_token\""]
        );
        expected.push((rid(&got), reason));
    }
    // No token at all: a challenge without an error code (RFC 6750 §3.1).
    let got = f.get("/jwt/orders", &[]).await;
    assert_problem(&got, 401, "unauthorized");
    assert_eq!(challenges(&got), vec!["Bearer realm=\"portcullis\""]);
    expected.push((rid(&got), "missing_credentials"));
    assert_eq!(f.up.count(), 0);
    let events = f.gw.stop().await;
    for (r, reason) in expected {
        assert_eq!(event_by_id(&events, &r)["unmapped"]["reason"], reason);
    }
}

#[tokio::test]
async fn opaque_token_on_a_jwt_then_introspection_route_goes_to_introspection() {
    let mut f = Fixture::start().await;
    let got = f
        .get(
            "/mixed/orders",
            &[("authorization", "Bearer opaque-active-token")],
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(f.introspection.hits(), 1);
    let seen = f.last_seen();
    assert_eq!(seen.header("x-portcullis-principal"), Some("bob"));
    assert_eq!(
        seen.header("x-portcullis-auth-method"),
        Some("introspection")
    );

    // A JWT on the same route is verified locally: introspection is not asked.
    let token = f.token(json!({}));
    let got = f
        .get(
            "/mixed/orders",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(f.introspection.hits(), 1);
    assert_eq!(
        f.last_seen().header("x-portcullis-auth-method"),
        Some("jwt")
    );
    let events = f.gw.stop().await;
    let methods: Vec<&Value> = events
        .iter()
        .map(|e| &e["unmapped"]["auth"]["method"])
        .collect();
    assert_eq!(methods, vec!["introspection", "jwt"]);
}

// ---------------------------------------------------------------------------------------------
// Introspection

#[tokio::test]
async fn introspection_active_is_accepted_and_inactive_refused() {
    let mut f = Fixture::start().await;
    let got = f
        .get(
            "/opaque/orders",
            &[("authorization", "Bearer opaque-active-token")],
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    let seen = f.last_seen();
    assert_eq!(seen.header("x-portcullis-principal"), Some("bob"));
    assert_eq!(seen.header("x-portcullis-credential-id"), Some("opaque-1"));

    let got = f
        .get(
            "/opaque/orders",
            &[("authorization", "Bearer opaque-inactive-token")],
        )
        .await;
    assert_problem(&got, 401, "unauthorized");
    assert_eq!(
        challenges(&got),
        vec!["Bearer realm=\"portcullis\", error=\"invalid_token\""]
    );
    let r = rid(&got);
    assert_eq!(f.up.count(), 1);
    let events = f.gw.stop().await;
    assert_eq!(
        event_by_id(&events, &r)["unmapped"]["reason"],
        "inactive_token"
    );
    let raw = f.raw_events();
    assert!(!raw.contains("opaque-active-token") && !raw.contains("opaque-inactive-token"));
}

#[tokio::test]
async fn introspection_endpoint_down_fails_closed_with_503() {
    let mut f = Fixture::start().await;
    let got = f
        .get(
            "/down/orders",
            &[("authorization", "Bearer opaque-active-token")],
        )
        .await;
    let doc = assert_problem(&got, 503, "auth_unavailable");
    assert!(got.header("retry-after").is_some(), "Retry-After on 503");
    assert!(!doc.to_string().contains("127.0.0.1"), "{doc}");
    let r = rid(&got);
    assert_eq!(f.up.count(), 0, "an unchecked token is never forwarded");
    let events = f.gw.stop().await;
    let ev = event_by_id(&events, &r);
    assert_eq!(ev["unmapped"]["reason"], "introspection_unavailable");
    assert_eq!(ev["action"], "Denied");
}

// ---------------------------------------------------------------------------------------------
// mTLS

/// A gateway whose listener 0 requires client certificates from `ca` and listener 1 asks for
/// them optionally. Routes: `/mtls` (methods: [mtls]) and `/public`.
async fn mtls_gateway(up: &Upstream, dir: &Path, ca: &TestCa, server: &TestCert) -> TestGateway {
    let ca_path = ca.write(dir, "client-ca");
    let yaml = format!(
        r#"
listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{cert}", key: "{key}" }}
      client_auth:
        ca: "{ca}"
        required: true
  - address: 127.0.0.1:0
    tls:
      certificates:
        - {{ cert: "{cert}", key: "{key}" }}
      client_auth:
        ca: "{ca}"
        required: false
upstreams:
  app:
    targets: [{{upstream}}]
routes:
  - name: mtls
    upstream: app
    match: {{ path_prefix: /mtls }}
    auth:
      methods: [mtls]
  - name: public
    upstream: app
    match: {{ path_prefix: /public }}
    auth:
      public: true
events:
  file: {{dir}}/events.jsonl
"#,
        cert = server.cert_path.display(),
        key = server.key_path.display(),
        ca = ca_path.display(),
    );
    TestGateway::start(&yaml, up).await
}

fn status_of(outcome: &TlsOutcome) -> u16 {
    match outcome {
        TlsOutcome::Response(text) => text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {text}")),
        TlsOutcome::Refused(e) => panic!("refused: {e}"),
    }
}

#[tokio::test]
async fn mtls_required_accepts_only_valid_certificates_from_the_ca() {
    init();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = make_cert(dir.path(), "server", &["localhost"]);
    let ca = TestCa::new("Portcullis Test Client CA");
    let other_ca = TestCa::new("Someone Else's CA");
    let mut gw = mtls_gateway(&up, dir.path(), &ca, &server).await;
    let addr = gw.addr(0);

    let valid = ca.issue_client("spiffe://test/orders-service", false);
    let got = tls_get(addr, mtls_client(&server.der, Some(&valid)), "/mtls/x", "").await;
    assert_eq!(status_of(&got), 200, "{got:?}");
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("x-portcullis-principal"),
        Some("spiffe://test/orders-service")
    );
    assert_eq!(seen[0].header("x-portcullis-auth-method"), Some("mtls"));

    let expired = ca.issue_client("spiffe://test/expired", true);
    let foreign = other_ca.issue_client("spiffe://test/orders-service", false);
    for (what, cert) in [
        ("no certificate", None),
        ("another CA", Some(&foreign)),
        ("expired", Some(&expired)),
    ] {
        let got = tls_get(addr, mtls_client(&server.der, cert), "/public/x", "").await;
        match got {
            TlsOutcome::Refused(e) => eprintln!("{what}: refused ({e})"),
            TlsOutcome::Response(text) => panic!("{what}: answered {text}"),
        }
    }
    assert_eq!(up.count(), 1, "refused handshakes never reach the upstream");
    let events = gw.stop().await;
    assert_eq!(events.len(), 1, "no request, no event: {events:#?}");
    assert_eq!(
        events[0]["actor"]["user"]["uid"],
        "spiffe://test/orders-service"
    );
    assert_eq!(events[0]["unmapped"]["auth"]["method"], "mtls");
}

#[tokio::test]
async fn mtls_optional_lets_routes_decide() {
    init();
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = make_cert(dir.path(), "server", &["localhost"]);
    let ca = TestCa::new("Portcullis Test Client CA");
    let other_ca = TestCa::new("Someone Else's CA");
    let mut gw = mtls_gateway(&up, dir.path(), &ca, &server).await;
    let addr = gw.addr(1);

    // Without a certificate: public routes answer, the mTLS route asks for one.
    let got = tls_get(addr, mtls_client(&server.der, None), "/public/x", "").await;
    assert_eq!(status_of(&got), 200, "{got:?}");
    let got = tls_get(addr, mtls_client(&server.der, None), "/mtls/x", "").await;
    assert_eq!(status_of(&got), 401, "{got:?}");
    let TlsOutcome::Response(text) = &got else {
        unreachable!()
    };
    assert!(
        text.contains("urn:portcullis:problem:unauthorized"),
        "{text}"
    );
    assert_eq!(up.count(), 1);

    // With a valid certificate the mTLS route answers; a bad certificate is still refused at
    // the handshake (optional means "may be absent", not "may be wrong").
    let valid = ca.issue_client("spiffe://test/billing", false);
    let got = tls_get(addr, mtls_client(&server.der, Some(&valid)), "/mtls/x", "").await;
    assert_eq!(status_of(&got), 200, "{got:?}");
    assert_eq!(
        up.seen()[1].header("x-portcullis-principal"),
        Some("spiffe://test/billing")
    );
    let foreign = other_ca.issue_client("spiffe://test/billing", false);
    let got = tls_get(
        addr,
        mtls_client(&server.der, Some(&foreign)),
        "/public/x",
        "",
    )
    .await;
    assert!(matches!(got, TlsOutcome::Refused(_)), "{got:?}");
    assert_eq!(up.count(), 2);
    let events = gw.stop().await;
    let reasons: Vec<&Value> = events.iter().map(|e| &e["unmapped"]["reason"]).collect();
    assert!(
        reasons.contains(&&json!("missing_credentials")),
        "{reasons:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Events

#[tokio::test]
async fn events_name_the_actor_and_never_contain_a_credential() {
    let mut f = Fixture::start().await;
    let token = f.token(json!({}));
    let bearer = format!("Bearer {token}");
    let apikey_auth = format!("ApiKey {}", f.api_key);
    let basic = basic_value(&f.user, &f.password);
    let mut expect = Vec::new();
    let cases: Vec<(&str, (&str, &str), &str, &str)> = vec![
        (
            "/keys/a",
            ("x-api-key", &f.api_key),
            "svc-orders",
            "api_key",
        ),
        (
            "/keys/b",
            ("authorization", &apikey_auth),
            "svc-orders",
            "api_key",
        ),
        ("/jwt/c", ("authorization", &bearer), "alice", "jwt"),
        (
            "/opaque/d",
            ("authorization", "Bearer opaque-active-token"),
            "bob",
            "introspection",
        ),
    ];
    for (path, header, principal, method) in cases {
        let got = f.get(path, &[header]).await;
        assert_eq!(got.status, 200, "{path}: {}", got.text());
        expect.push((rid(&got), principal, method));
    }
    let got = f.get_tls("/basic/e", &[("authorization", &basic)]).await;
    assert_eq!(got.status, 200);
    expect.push((rid(&got), f.user.as_str(), "basic"));
    // Refused credentials must not reach the events either.
    let (wrong_key, _) = portcullis_identity::apikey::generate_key();
    let got = f.get("/keys/f", &[("x-api-key", &wrong_key)]).await;
    assert_eq!(got.status, 401);

    let events = f.gw.stop().await;
    for (r, principal, method) in &expect {
        let ev = event_by_id(&events, r);
        assert_eq!(ev["actor"]["user"]["uid"], *principal, "{ev}");
        assert_eq!(ev["unmapped"]["auth"]["method"], *method, "{ev}");
    }
    let raw = f.raw_events();
    let basic_b64 = &basic["Basic ".len()..];
    for secret in [
        f.api_key.as_str(),
        wrong_key.as_str(),
        &token,
        "opaque-active-token",
        f.password.as_str(),
        basic_b64,
    ] {
        assert!(
            !raw.contains(secret),
            "the events file contains a credential ({}…)",
            &secret[..6]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Upstream identity token

/// Verify `token` against `jwks` (ES256, issuer `portcullis`) and return its claims.
fn verify_upstream_token(token: &str, jwks: &Value) -> Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("the upstream token names its key");
    let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&["portcullis"]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap()
        .claims
}

#[tokio::test]
async fn upstream_token_verifies_against_the_admin_jwks() {
    let admin = format!("admin:\n  address: 127.0.0.1:0\n  token: {ADMIN_TOKEN}\n");
    let f = Fixture::start_with("  upstream_token: {}\n", &admin).await;
    let got = f.get("/keys/orders", &[("x-api-key", &f.api_key)]).await;
    assert_eq!(got.status, 200);
    let token = f
        .last_seen()
        .header("x-portcullis-token")
        .expect("the upstream receives x-portcullis-token")
        .to_string();

    // The JWKS is public: served without the admin token.
    let jwks = admin_request(f.gw.admin(), "GET", "/jwks", None).await;
    assert_eq!(jwks.status, 200, "{}", jwks.text());
    assert_eq!(
        jwks.header("content-type"),
        Some("application/jwk-set+json")
    );
    let doc = jwks.json();
    assert!(
        doc["keys"][0].get("d").is_none(),
        "no private key material: {doc}"
    );
    let c = verify_upstream_token(&token, &doc);
    assert_eq!(c["sub"], "svc-orders");
    assert_eq!(c["amr"], json!(["api_key"]));
    assert_eq!(c["scope"], "orders:read orders:write");
    assert_eq!(c["credential_id"], "key-orders");
    assert!(c["exp"].as_u64().unwrap() > now());

    // A JWT caller gets one too; a public route never does (and a forged one is stripped).
    let bearer = format!("Bearer {}", f.token(json!({})));
    f.get("/jwt/x", &[("authorization", &bearer)]).await;
    let t = f
        .last_seen()
        .header("x-portcullis-token")
        .unwrap()
        .to_string();
    assert_eq!(verify_upstream_token(&t, &doc)["sub"], "alice");
    f.get("/public/x", &[("x-portcullis-token", &token)]).await;
    assert_eq!(f.last_seen().header("x-portcullis-token"), None);

    // Not served on the listener unless a public path is configured.
    let got = f.get("/.well-known/portcullis-jwks.json", &[]).await;
    assert_eq!(got.status, 404);
}

#[tokio::test]
async fn upstream_token_jwks_is_served_on_the_public_path() {
    let admin = format!("admin:\n  address: 127.0.0.1:0\n  token: {ADMIN_TOKEN}\n");
    let f = Fixture::start_with(
        "  upstream_token:\n    public_jwks_path: /.well-known/portcullis-jwks.json\n",
        &admin,
    )
    .await;
    let published = f.get("/.well-known/portcullis-jwks.json", &[]).await;
    assert_eq!(published.status, 200, "{}", published.text());
    assert_eq!(
        published.header("content-type"),
        Some("application/jwk-set+json")
    );
    let on_admin = admin_request(f.gw.admin(), "GET", "/jwks", None).await;
    assert_eq!(published.json(), on_admin.json(), "one key set, two places");
    assert_eq!(f.up.count(), 0, "answered by the gateway itself");

    let got = f
        .get_tls("/keys/orders", &[("x-api-key", &f.api_key)])
        .await;
    assert_eq!(got.status, 200);
    let token = f
        .last_seen()
        .header("x-portcullis-token")
        .unwrap()
        .to_string();
    let c = verify_upstream_token(&token, &published.json());
    assert_eq!(c["sub"], "svc-orders");
}

#[tokio::test]
async fn admin_jwks_is_404_without_an_upstream_token() {
    let admin = format!("admin:\n  address: 127.0.0.1:0\n  token: {ADMIN_TOKEN}\n");
    let f = Fixture::start_with("", &admin).await;
    let got = admin_request(f.gw.admin(), "GET", "/jwks", None).await;
    assert_eq!(got.status, 404);
    let got = f.get("/keys/orders", &[("x-api-key", &f.api_key)]).await;
    assert_eq!(got.status, 200);
    assert_eq!(f.last_seen().header("x-portcullis-token"), None);
}

#[tokio::test]
async fn a_custom_upstream_token_header_cannot_be_set_by_clients() {
    let f = Fixture::start_with("  upstream_token:\n    header: X-Identity-Token\n", "").await;
    // Public route: the gateway signs nothing, and what the client sent is removed.
    let got = f
        .get("/public/x", &[("x-identity-token", "replayed.or.forged")])
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(f.last_seen().header("x-identity-token"), None);
    // Authenticated route: exactly the gateway's token, never the client's next to it.
    let got = f
        .get(
            "/keys/x",
            &[
                ("x-api-key", &f.api_key),
                ("x-identity-token", "replayed.or.forged"),
            ],
        )
        .await;
    assert_eq!(got.status, 200);
    let seen = f.last_seen();
    let values: Vec<&String> = seen
        .headers
        .iter()
        .filter(|(k, _)| k == "x-identity-token")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values.len(), 1, "{values:?}");
    assert_ne!(values[0], "replayed.or.forged");
    assert_eq!(seen.header("x-portcullis-token"), None);
}
