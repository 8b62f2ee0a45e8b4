//! Authorization end to end: JWT callers (tokens from a real in-process JWKS endpoint) against
//! routes with scopes, roles, claims, CEL, MFA step-up (RFC 9470) and object ownership, and
//! the configuration errors that keep a route from being exposed by mistake.
//!
//! Every denial is checked on the wire (status, problem type, challenge), at the upstream
//! (never forwarded) and in the event (the denying rule as a finding, the precise reason).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auth_support;
mod common;

use std::path::Path;
use std::time::Duration;

use auth_support::*;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::{Value, json};

const KID: &str = "authz-key";

const YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
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
  - name: scoped
    upstream: app
    match: { path_prefix: /scoped }
    auth:
      methods: [jwt:idp]
    authorize:
      scopes_all: [orders:read, orders:write]
  - name: admin
    upstream: app
    match: { path_prefix: /admin }
    auth:
      methods: [jwt:idp]
    authorize:
      roles: { claim: realm_access.roles, any_of: [admin, ops] }
  - name: tenant
    upstream: app
    match: { path_prefix: /tenant }
    auth:
      methods: [jwt:idp]
    authorize:
      claims:
        - { claim: tenant, equals: acme }
  - name: profiles
    upstream: app
    match: { path_prefix: /profiles, path_template: "/profiles/{user_id}" }
    auth:
      methods: [jwt:idp]
    authorize:
      cel:
        - "request.path_params.user_id == identity.principal"
  - name: mfa
    upstream: app
    match: { path_prefix: /payments }
    auth:
      methods: [jwt:idp]
    authorize:
      mfa: { amr_any: [mfa, hwk], acr_any: ["urn:acr:gold"], max_age: 300 }
  - name: users
    upstream: app
    match: { path_prefix: /users, path_template: "/users/{user_id}/orders" }
    auth:
      methods: [jwt:idp]
    authorize:
      ownership:
        - { path_param: user_id, claim: sub }
  - name: accounts
    upstream: app
    match: { path_prefix: /accounts, path_template: "/accounts/{user_id}/orders" }
    auth:
      methods: [jwt:idp]
    authorize:
      ownership:
        - { path_param: user_id, claim: sub, deny_status: 403 }
  - name: headers
    upstream: app
    match: { path_prefix: /headers }
    auth:
      methods: [jwt:idp]
    authorize:
      cel:
        - "!('authorization' in request.headers) && !('cookie' in request.headers)"
        - "request.headers['x-tenant'] == 'acme'"
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
    _jwks: MockServer,
}

impl Fixture {
    async fn start() -> Fixture {
        init();
        let up = Upstream::start().await;
        let key = EcKey::generate();
        let jwks = jwks_server(vec![key.jwk(KID)]).await;
        let yaml = YAML.replace("{jwks_url}", &jwks.url("/jwks.json"));
        let gw = TestGateway::start(&yaml, &up).await;
        Fixture {
            up,
            gw,
            key,
            _jwks: jwks,
        }
    }

    fn bearer(&self, extra: Value) -> String {
        format!("Bearer {}", self.key.token(KID, &claims(extra)))
    }

    async fn get(&self, path: &str, bearer: &str) -> Got {
        send(
            Request::get(self.gw.url(path))
                .header("authorization", bearer)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    /// Exactly these request bytes, so no client normalises the path.
    async fn raw_get(&self, path: &str, bearer: &str) -> RawResponse {
        let req = format!(
            "GET {path} HTTP/1.1\r\nhost: api.test\r\nauthorization: {bearer}\r\nconnection: close\r\n\r\n"
        );
        raw_exchange(self.gw.addr(0), req.as_bytes(), Duration::from_secs(3)).await
    }
}

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

/// The event for `id`, its reason, and the ids of its authorization findings.
fn denial(events: &[Value], id: &str) -> (String, Vec<String>) {
    let ev = event_by_id(events, id);
    assert_eq!(ev["action"], "Denied", "{ev}");
    let reason = ev["unmapped"]["reason"].as_str().unwrap_or("").to_string();
    let rules = ev["unmapped"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "authorization")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    (reason, rules)
}

#[tokio::test]
async fn missing_scope_is_403_with_an_insufficient_scope_challenge() {
    let mut f = Fixture::start().await;
    let got = f.get("/scoped/orders", &f.bearer(json!({}))).await;
    assert_problem(&got, 403, "insufficient_scope");
    assert_eq!(
        got.header("www-authenticate"),
        Some("Bearer error=\"insufficient_scope\", scope=\"orders:read orders:write\"")
    );
    let denied = rid(&got);
    assert_eq!(f.up.count(), 0);

    let got = f
        .get(
            "/scoped/orders",
            &f.bearer(json!({"scope": "orders:write orders:read extra"})),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(f.up.count(), 1);
    let events = f.gw.stop().await;
    let (reason, rules) = denial(&events, &denied);
    assert_eq!(reason, "insufficient_scope");
    assert_eq!(rules, vec!["scopes_all"]);
    // The denied caller is still named in the event.
    assert_eq!(
        event_by_id(&events, &denied)["actor"]["user"]["uid"],
        "alice"
    );
}

#[tokio::test]
async fn roles_and_claims_are_enforced() {
    let mut f = Fixture::start().await;
    let mut denied = Vec::new();
    for (path, extra, status, rule) in [
        (
            "/admin/x",
            json!({"realm_access": {"roles": ["ops"]}}),
            200,
            "",
        ),
        (
            "/admin/x",
            json!({"realm_access": {"roles": ["user"]}}),
            403,
            "roles",
        ),
        // A flat `roles` claim is not `realm_access.roles`.
        ("/admin/x", json!({"roles": ["admin"]}), 403, "roles"),
        // A role name that merely contains `admin` is not `admin`.
        (
            "/admin/x",
            json!({"realm_access": {"roles": "superadmin"}}),
            403,
            "roles",
        ),
        ("/tenant/x", json!({"tenant": "acme"}), 200, ""),
        (
            "/tenant/x",
            json!({"tenant": "acme-evil"}),
            403,
            "claims[0]",
        ),
        ("/tenant/x", json!({"tenant": ["acme"]}), 403, "claims[0]"),
        ("/tenant/x", json!({}), 403, "claims[0]"),
    ] {
        let got = f.get(path, &f.bearer(extra.clone())).await;
        if status == 200 {
            assert_eq!(got.status, 200, "{path} {extra}: {}", got.text());
        } else {
            assert_problem(&got, status, "forbidden");
            assert_eq!(got.header("www-authenticate"), None);
            denied.push((rid(&got), rule));
        }
    }
    assert_eq!(f.up.count(), 2);
    let events = f.gw.stop().await;
    for (r, rule) in denied {
        let (reason, rules) = denial(&events, &r);
        assert_eq!(reason, "forbidden");
        assert_eq!(rules, vec![rule]);
    }
}

#[tokio::test]
async fn cel_sees_path_params_and_the_principal() {
    let mut f = Fixture::start().await;
    let got = f.get("/profiles/alice", &f.bearer(json!({}))).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let got = f.get("/profiles/bob", &f.bearer(json!({}))).await;
    assert_problem(&got, 403, "forbidden");
    let denied = rid(&got);
    // Path parameters reach CEL decoded once.
    let got = f
        .get(
            "/profiles/alice%40example.com",
            &f.bearer(json!({"sub": "alice@example.com"})),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(f.up.count(), 2);
    let events = f.gw.stop().await;
    let (reason, rules) = denial(&events, &denied);
    assert_eq!(reason, "forbidden");
    assert_eq!(rules, vec!["cel[0]"]);
}

#[tokio::test]
async fn cel_sees_request_headers_but_never_credentials() {
    let mut f = Fixture::start().await;
    let bearer = f.bearer(json!({}));
    let with = |tenant: Option<&str>| {
        let mut req = Request::get(f.gw.url("/headers/x"))
            .header("authorization", &bearer)
            .header("cookie", "session=s3cr3t");
        if let Some(t) = tenant {
            req = req.header("x-tenant", t);
        }
        req.body(Full::new(Bytes::new())).unwrap()
    };
    let got = send(with(Some("acme"))).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let got = send(with(Some("other"))).await;
    assert_problem(&got, 403, "forbidden");
    let other = rid(&got);
    // A missing header is an evaluation error: denied, never allowed.
    let got = send(with(None)).await;
    assert_eq!(got.status, 403);
    let missing = rid(&got);
    assert_eq!(f.up.count(), 1);
    let events = f.gw.stop().await;
    assert_eq!(
        denial(&events, &other),
        ("forbidden".into(), vec!["cel[1]".into()])
    );
    assert_eq!(denial(&events, &missing).1, vec!["cel[1]"]);
}

#[tokio::test]
async fn weak_authentication_gets_an_rfc9470_step_up_challenge() {
    let mut f = Fixture::start().await;
    let strong = json!({"amr": ["pwd", "mfa"], "acr": "urn:acr:gold", "auth_time": now() - 10});
    let got = f.get("/payments/1", &f.bearer(strong)).await;
    assert_eq!(got.status, 200, "{}", got.text());

    let mut denied = Vec::new();
    for (extra, failed) in [
        (
            json!({"amr": ["pwd"], "acr": "urn:acr:gold", "auth_time": now() - 10}),
            "amr",
        ),
        (
            json!({"acr": "urn:acr:gold", "auth_time": now() - 10}),
            "amr",
        ),
        (
            json!({"amr": ["mfa"], "acr": "urn:acr:silver", "auth_time": now() - 10}),
            "acr",
        ),
        (
            json!({"amr": ["mfa"], "acr": "urn:acr:gold", "auth_time": now() - 3600}),
            "max_age",
        ),
    ] {
        let got = f.get("/payments/1", &f.bearer(extra.clone())).await;
        let doc = assert_problem(&got, 401, "mfa_required");
        assert!(doc["detail"].is_string(), "{doc}");
        let challenge = got.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"insufficient_user_authentication\""),
            "{challenge}"
        );
        assert!(
            challenge.contains("acr_values=\"urn:acr:gold\""),
            "{challenge}"
        );
        assert!(challenge.contains("max_age=\"300\""), "{challenge}");
        denied.push((rid(&got), failed));
    }
    assert_eq!(f.up.count(), 1);
    let events = f.gw.stop().await;
    for (r, failed) in denied {
        let (reason, rules) = denial(&events, &r);
        assert_eq!(reason, "mfa_required");
        assert_eq!(rules, vec![format!("mfa.{failed}")]);
    }
}

#[tokio::test]
async fn ownership_allows_the_owner_and_hides_other_objects() {
    let mut f = Fixture::start().await;
    let alice = f.bearer(json!({}));
    let got = f.get("/users/alice/orders", &alice).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(f.up.seen()[0].path_and_query, "/users/alice/orders");

    // Someone else's objects: 404 by default (existence not admitted), 403 when configured.
    let got = f.get("/users/bob/orders", &alice).await;
    let doc = assert_problem(&got, 404, "not_found");
    assert!(!doc.to_string().contains("owner"), "{doc}");
    let hidden = rid(&got);
    let got = f.get("/accounts/bob/orders", &alice).await;
    assert_problem(&got, 403, "not_owner");
    let admitted = rid(&got);
    let got = f.get("/accounts/alice/orders", &alice).await;
    assert_eq!(got.status, 200);
    assert_eq!(f.up.count(), 2);

    // Comparison is exact: no case folding, no prefix match.
    for path in [
        "/users/Alice/orders",
        "/users/alic/orders",
        "/users/alice2/orders",
    ] {
        let got = f.get(path, &alice).await;
        assert_eq!(got.status, 404, "{path}");
    }
    assert_eq!(f.up.count(), 2);

    let events = f.gw.stop().await;
    for r in [&hidden, &admitted] {
        let (reason, rules) = denial(&events, r);
        assert_eq!(reason, "not_owner");
        assert_eq!(rules, vec!["ownership[0]"]);
    }
}

#[tokio::test]
async fn ownership_compares_the_decoded_parameter() {
    let f = Fixture::start().await;
    let email = f.bearer(json!({"sub": "alice@example.com"}));
    let got = f.get("/users/alice%40example.com/orders", &email).await;
    assert_eq!(got.status, 200, "{}", got.text());
    // The upstream gets the path exactly as sent.
    assert_eq!(
        f.up.seen()[0].path_and_query,
        "/users/alice%40example.com/orders"
    );
    let got = f.get("/users/alice@example.com/orders", &email).await;
    assert_eq!(got.status, 200, "{}", got.text());
    // Decoded exactly once: `%2540` is the literal text `%40`, not `@`.
    let got = f.get("/users/alice%2540example.com/orders", &email).await;
    assert_eq!(got.status, 404);
    assert_eq!(f.up.count(), 2);
}

#[tokio::test]
async fn traversal_in_a_path_parameter_is_refused_and_never_forwarded() {
    let mut f = Fixture::start().await;
    // The attacker owns `mallory` and tries to reach bob's orders, or to make the parameter
    // check compare something other than what the upstream will serve.
    let mallory = f.bearer(json!({"sub": "mallory"}));
    let sub_dotdot = f.bearer(json!({"sub": ".."}));
    let mut refused = Vec::new();
    for (path, bearer) in [
        ("/users/../orders", &mallory),
        ("/users/%2e%2e/orders", &sub_dotdot),
        ("/users/%2E%2E/orders", &sub_dotdot),
        ("/users/.%2e/orders", &sub_dotdot),
        ("/users/mallory/../bob/orders", &mallory),
        ("/users/mallory%2F..%2Fbob/orders", &mallory),
        ("/users/mallory%2f..%2fbob/orders", &mallory),
        ("/users/mallory%5C..%5Cbob/orders", &mallory),
        ("/users/..;/orders", &sub_dotdot),
        ("/users/mallory/..;/bob/orders", &mallory),
        ("/users/bob%00/orders", &mallory),
        ("/users//orders", &mallory),
        ("/users/mallory/orders/../../bob/orders", &mallory),
    ] {
        let got = f.raw_get(path, bearer).await;
        assert!(
            matches!(got.status, 400 | 403 | 404),
            "{path}: {} {}",
            got.status,
            String::from_utf8_lossy(&got.body)
        );
        refused.push((path, got.header("x-request-id").map(str::to_string)));
    }
    assert_eq!(f.up.count(), 0, "forwarded: {:?}", f.up.seen());

    // The owner's own path still works over the same raw client.
    let got = f.raw_get("/users/mallory/orders", &mallory).await;
    assert_eq!(got.status, 200);
    assert_eq!(f.up.count(), 1);

    let events = f.gw.stop().await;
    for (path, id) in refused {
        let ev = event_by_id(&events, id.as_deref().unwrap());
        let reason = ev["unmapped"]["reason"].as_str().unwrap();
        assert!(
            matches!(reason, "ambiguous_path" | "not_owner" | "invalid_framing"),
            "{path}: {reason}"
        );
        assert_eq!(ev["action"], "Denied");
    }
}

#[tokio::test]
async fn a_semicolon_dot_segment_cannot_walk_from_a_public_route_to_a_protected_one() {
    // `/public/..;/users/bob/orders` is `/users/bob/orders` to servlet containers (Tomcat drops
    // `;params` before normalising): the public route must not forward it.
    let f = Fixture::start().await;
    for path in [
        "/public/..;/users/bob/orders",
        "/public/..;x=1/users/bob/orders",
        "/public/.;/x",
    ] {
        let got = f.raw_get(path, "Bearer none").await;
        assert_eq!(got.status, 400, "{path}");
        assert_eq!(got.json()["type"], "urn:portcullis:problem:ambiguous_path");
    }
    assert_eq!(f.up.count(), 0, "forwarded: {:?}", f.up.seen());
    // A `;` elsewhere in a segment is ordinary text.
    let got = f.raw_get("/public/a;b/c", "Bearer none").await;
    assert_eq!(got.status, 200);
}

#[tokio::test]
async fn authorization_runs_only_after_authentication() {
    let mut f = Fixture::start().await;
    // No token on an ownership route: 401 (who are you?), not 404 (not yours).
    let got = send(
        Request::get(f.gw.url("/users/alice/orders"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_problem(&got, 401, "unauthorized");
    let r = rid(&got);
    // A forged token that names the owner gets no further either.
    // Change a character inside the signature: the last base64url character carries only
    // two bits, so replacing it can leave the signature unchanged.
    let token = f.bearer(json!({}));
    let at = token.len() - 10;
    let swap = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
    let got = f.get("/users/alice/orders", &forged).await;
    assert_problem(&got, 401, "unauthorized");
    assert_eq!(f.up.count(), 0);
    let events = f.gw.stop().await;
    let (reason, rules) = denial(&events, &r);
    assert_eq!(reason, "missing_credentials");
    assert!(rules.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Configuration errors: a route is never exposed by a config that does not say who may call it.

/// Parse `yaml` and return the field path of every error (panics if it is valid).
fn config_errors(yaml: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.yaml");
    match portcullis_gateway::config::parse(&path, yaml) {
        Ok(_) => panic!("config accepted:\n{yaml}"),
        Err(errors) => errors.0.into_iter().map(|e| (e.field, e.message)).collect(),
    }
}

/// A config with one route whose `auth:`/`authorize:`/`match:` lines are `route`.
fn one_route(route: &str) -> String {
    format!(
        r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [http://127.0.0.1:9]
identity:
  jwt:
    - name: idp
      issuer: https://idp.test
      audiences: [orders-api]
      algorithms: [ES256]
      jwks_url: http://127.0.0.1:9/jwks.json
routes:
  - name: r
    upstream: app
{route}
"#
    )
}

fn assert_only_error(yaml: &str, field: &str, message: &str) {
    let errors = config_errors(yaml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, field, "{errors:#?}");
    assert!(errors[0].1.contains(message), "{errors:#?}");
}

#[test]
fn a_route_without_auth_is_refused() {
    assert_only_error(
        &one_route("    match: { path_prefix: /x }"),
        "routes[0].auth",
        "every route must say how callers authenticate",
    );
}

#[test]
fn a_public_route_with_methods_is_refused() {
    assert_only_error(
        &one_route("    auth:\n      public: true\n      methods: [jwt:idp]"),
        "routes[0].auth.methods",
        "public route takes no authentication methods",
    );
    // And a route that is neither public nor lists a method.
    assert_only_error(
        &one_route("    auth:\n      methods: []"),
        "routes[0].auth.methods",
        "list at least one method",
    );
}

#[test]
fn an_unknown_provider_is_refused() {
    assert_only_error(
        &one_route("    auth:\n      methods: [jwt:nope]"),
        "routes[0].auth.methods[0]",
        "`jwt:nope`",
    );
    assert_only_error(
        &one_route("    auth:\n      methods: [jwt:idp, introspection:idp]"),
        "routes[0].auth.methods[1]",
        "introspection",
    );
    assert_only_error(
        &one_route("    auth:\n      methods: [api_key]"),
        "routes[0].auth.methods[0]",
        "needs `identity.api_keys`",
    );
    assert_only_error(
        &one_route("    auth:\n      methods: [oauth]"),
        "routes[0].auth.methods[0]",
        "unknown method",
    );
}

#[test]
fn a_cel_compile_error_names_the_expression() {
    let route = "    auth:\n      methods: [jwt:idp]\n    authorize:\n      cel:\n        - \"request.path_params.user_id ==\"";
    let errors = config_errors(&one_route(route));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, "routes[0].authorize.cel[0]");
    assert!(errors[0].1.contains("CEL"), "{errors:#?}");
    // The second of two expressions is named as such.
    let route = "    auth:\n      methods: [jwt:idp]\n    authorize:\n      cel:\n        - \"true\"\n        - \"identity.principal ==== 'x'\"";
    let errors = config_errors(&one_route(route));
    assert_eq!(errors[0].0, "routes[0].authorize.cel[1]", "{errors:#?}");
}

#[test]
fn ownership_without_a_path_template_is_refused() {
    let route = "    auth:\n      methods: [jwt:idp]\n    authorize:\n      ownership:\n        - { path_param: user_id, claim: sub }";
    assert_only_error(
        &one_route(route),
        "routes[0].authorize.ownership",
        "path_template",
    );
    // A template that does not name the parameter is refused too.
    let route = "    match: { path_template: \"/users/{id}/orders\" }\n    auth:\n      methods: [jwt:idp]\n    authorize:\n      ownership:\n        - { path_param: user_id, claim: sub }";
    let errors = config_errors(&one_route(route));
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].0, "routes[0].match.path_template", "{errors:#?}");
}

#[test]
fn authorize_on_a_public_route_is_refused() {
    let route = "    auth:\n      public: true\n    authorize:\n      scopes_all: [orders:read]";
    assert_only_error(&one_route(route), "routes[0].authorize", "public route");
}

#[test]
fn the_valid_fixture_config_parses() {
    // Guards the suite itself: the YAML above is valid once its placeholders are filled.
    let yaml = YAML
        .replace("{jwks_url}", "http://127.0.0.1:9/jwks.json")
        .replace("{upstream}", "http://127.0.0.1:9")
        .replace("{dir}", "/tmp");
    portcullis_gateway::config::parse(Path::new("/tmp/portcullis.yaml"), &yaml).unwrap();
}
