//! End-to-end authorization: configurations as an operator writes them (YAML), identities as the
//! identity stage produces them, requests as the gateway hands them over, and the decisions that
//! come out — every rule kind both ways, step-up challenges byte for byte, ownership against
//! encoded and hostile paths, and the evaluation order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis_identity::AuthMethod;
use portcullis_policy::{
    AuthzConfig, AuthzPolicy, AuthzRequest, Decision, Identity, PathTemplate, PolicyError, StepUp,
};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

fn policy(yaml: &str) -> AuthzPolicy {
    let config: AuthzConfig = serde_saphyr::from_str(yaml).expect("config parses");
    AuthzPolicy::compile(&config).expect("policy compiles")
}

fn compile_err(yaml: &str) -> PolicyError {
    let config: AuthzConfig = serde_saphyr::from_str(yaml).expect("config parses");
    AuthzPolicy::compile(&config).expect_err("policy must not compile")
}

fn identity(scope: &str, claims: Value) -> Identity {
    let Value::Object(claims) = claims else {
        panic!("claims must be an object")
    };
    Identity {
        method: AuthMethod::Jwt,
        principal: claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or("anonymous")
            .to_owned(),
        credential_id: Some("jti-1".to_owned()),
        // As the identity stage does with the `scope` claim: split on spaces.
        scopes: scope.split_whitespace().map(str::to_owned).collect(),
        claims: claims.into_iter().collect(),
        tier: None,
    }
}

/// An owned request the borrowed `AuthzRequest` is made from.
struct Req {
    method: String,
    path: String,
    params: BTreeMap<String, String>,
    query: BTreeMap<String, Vec<String>>,
    headers: BTreeMap<String, String>,
    ip: IpAddr,
}

impl Req {
    fn get(path: &str) -> Req {
        Req {
            method: "GET".to_owned(),
            path: path.to_owned(),
            params: BTreeMap::new(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            ip: "192.0.2.10".parse().unwrap(),
        }
    }

    /// The path matched against a template, as the gateway does before authorizing.
    fn routed(template: &str, path: &str) -> Option<Req> {
        let params = PathTemplate::parse(template).unwrap().match_path(path)?;
        Some(Req {
            params,
            ..Req::get(path)
        })
    }

    fn method(mut self, m: &str) -> Req {
        m.clone_into(&mut self.method);
        self
    }

    fn header(mut self, k: &str, v: &str) -> Req {
        self.headers.insert(k.to_owned(), v.to_owned());
        self
    }

    fn query(mut self, k: &str, v: &[&str]) -> Req {
        self.query
            .insert(k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    fn ip(mut self, ip: &str) -> Req {
        self.ip = ip.parse().unwrap();
        self
    }

    fn authz(&self) -> AuthzRequest<'_> {
        AuthzRequest {
            method: &self.method,
            path: &self.path,
            path_params: &self.params,
            query: &self.query,
            headers: &self.headers,
            client_ip: self.ip,
        }
    }
}

fn decide(policy: &AuthzPolicy, req: &Req, id: &Identity) -> Decision {
    policy.authorize_at(&req.authz(), id, now())
}

fn denied(decision: &Decision) -> (u16, &str, &'static str) {
    match decision {
        Decision::Deny {
            status,
            rule,
            reason,
            ..
        } => (*status, rule.as_str(), *reason),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn step_up(decision: &Decision) -> &StepUp {
    match decision {
        Decision::StepUp(s) => s,
        other => panic!("expected a step-up, got {other:?}"),
    }
}

// ---------------------------------------------------------------- configuration

#[test]
fn full_yaml_example_compiles() {
    let p = policy(
        r#"
scopes_all: ["orders:read"]
scopes_any: ["orders:admin", "orders:self"]
roles:
  claim: realm_access.roles
  any_of: [customer, support]
claims:
  - { claim: tenant, equals: acme }
  - { claim: groups, contains: ops }
  - { claim: org, in: [a, b] }
mfa:
  amr_any: [mfa, otp, hwk]
  acr_any: ["urn:example:acr:mfa"]
  max_age: 300
ownership:
  - { path_param: user_id, claim: sub }
  - { path_param: tenant, claim: tenants, mode: member, deny_status: 403 }
cel:
  - 'request.method != "DELETE" || "admin" in identity.claims.realm_access.roles'
  - 'request.client_ip.startsWith("192.0.2.")'
"#,
    );
    let template = PathTemplate::parse("/tenants/{tenant}/users/{user_id}").unwrap();
    p.check_template(&template).unwrap();

    let id = identity(
        "orders:read orders:self",
        json!({
            "sub": "alice@example.com",
            "realm_access": {"roles": ["customer"]},
            "tenant": "acme",
            "groups": ["dev", "ops"],
            "org": "b",
            "amr": ["pwd", "otp"],
            "acr": "urn:example:acr:mfa",
            "auth_time": NOW - 60,
            "tenants": ["acme", "globex"],
        }),
    );
    let req = Req::routed(
        "/tenants/{tenant}/users/{user_id}",
        "/tenants/acme/users/alice%40example.com",
    )
    .unwrap();
    assert_eq!(decide(&p, &req, &id), Decision::Allow);
    let req = req.method("DELETE");
    assert_eq!(denied(&decide(&p, &req, &id)), (403, "cel[0]", "forbidden"));
}

#[test]
fn unknown_fields_are_refused() {
    assert!(serde_saphyr::from_str::<AuthzConfig>("scope_all: [a]\n").is_err());
    assert!(serde_saphyr::from_str::<AuthzConfig>("roles: { any_of: [a], claims: x }\n").is_err());
    assert!(serde_saphyr::from_str::<AuthzConfig>("claims: [{ claim: a, equal: b }]\n").is_err());
    assert!(serde_saphyr::from_str::<AuthzConfig>("mfa: { max_age: 1, amr: [mfa] }\n").is_err());
    assert!(
        serde_saphyr::from_str::<AuthzConfig>(
            "ownership: [{ path_param: a, claim: b, mode: owner }]\n"
        )
        .is_err()
    );
}

#[test]
fn empty_policy_allows_any_authenticated_caller() {
    let p = policy("{}");
    assert!(p.is_empty());
    assert_eq!(
        decide(&p, &Req::get("/"), &identity("", json!({}))),
        Decision::Allow
    );
}

#[test]
fn check_template_refuses_unknown_ownership_param() {
    let p = policy("ownership: [{ path_param: user_id, claim: sub }]");
    let err = p
        .check_template(&PathTemplate::parse("/users/{id}").unwrap())
        .unwrap_err();
    assert!(err.to_string().starts_with("ownership[0]:"), "{err}");
    assert!(err.to_string().contains("user_id"), "{err}");
}

// ---------------------------------------------------------------- scopes

#[test]
fn scopes_all() {
    let p = policy("scopes_all: [read, write]");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("write extra read", json!({}))).is_allow());

    let d = decide(&p, &req, &identity("read", json!({})));
    assert_eq!(denied(&d), (403, "scopes_all", "insufficient_scope"));
    let Decision::Deny { scope, .. } = &d else {
        unreachable!()
    };
    assert_eq!(scope.as_deref(), Some("read write"));
    assert_eq!(
        d.www_authenticate().unwrap(),
        r#"Bearer error="insufficient_scope", scope="read write""#
    );
    // A scope string is split into tokens: "readwrite" is neither.
    assert!(!decide(&p, &req, &identity("readwrite", json!({}))).is_allow());
    // Exact, case-sensitive tokens.
    assert!(!decide(&p, &req, &identity("READ WRITE", json!({}))).is_allow());
}

#[test]
fn scopes_any() {
    let p = policy("scopes_any: [admin, 'orders:self']");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("orders:self", json!({}))).is_allow());
    assert!(decide(&p, &req, &identity("x admin", json!({}))).is_allow());
    let d = decide(&p, &req, &identity("orders:read", json!({})));
    assert_eq!(denied(&d), (403, "scopes_any", "insufficient_scope"));
    assert_eq!(
        d.www_authenticate().unwrap(),
        r#"Bearer error="insufficient_scope", scope="admin orders:self""#
    );
    let d = decide(&p, &req, &identity("", json!({})));
    assert_eq!(d.status(), Some(403));
}

// ---------------------------------------------------------------- roles

#[test]
fn roles_top_level_array_and_string() {
    let p = policy("roles: { any_of: [admin, ops] }");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("", json!({"roles": ["dev", "ops"]}))).is_allow());
    assert!(decide(&p, &req, &identity("", json!({"roles": "admin"}))).is_allow());
    let d = decide(&p, &req, &identity("", json!({"roles": ["dev"]})));
    assert_eq!(denied(&d), (403, "roles", "forbidden"));
    assert_eq!(d.www_authenticate(), None);
    // Missing claim, wrong type, different case, substring: all deny.
    for claims in [
        json!({}),
        json!({"roles": 1}),
        json!({"roles": ["Admin"]}),
        json!({"roles": "administrators"}),
        json!({"roles": {"admin": true}}),
    ] {
        assert!(
            !decide(&p, &req, &identity("", claims.clone())).is_allow(),
            "{claims}"
        );
    }
}

#[test]
fn roles_nested_claim_path() {
    let p = policy("roles: { claim: realm_access.roles, any_of: [admin] }");
    let req = Req::get("/");
    assert!(
        decide(
            &p,
            &req,
            &identity("", json!({"realm_access": {"roles": ["user", "admin"]}}))
        )
        .is_allow()
    );
    assert!(
        decide(
            &p,
            &req,
            &identity("", json!({"realm_access": {"roles": "admin"}}))
        )
        .is_allow()
    );
    for claims in [
        json!({"realm_access": {"roles": ["user"]}}),
        json!({"realm_access": ["admin"]}),
        json!({"roles": ["admin"]}),
    ] {
        let d = decide(&p, &req, &identity("", claims.clone()));
        assert_eq!(denied(&d), (403, "roles", "forbidden"), "{claims}");
    }
    // A namespaced claim whose name contains dots is found by its exact name.
    let p = policy("roles: { claim: 'https://example.com/roles', any_of: [admin] }");
    assert!(
        decide(
            &p,
            &req,
            &identity("", json!({"https://example.com/roles": ["admin"]}))
        )
        .is_allow()
    );
}

// ---------------------------------------------------------------- claims

#[test]
fn claims_equals() {
    let p = policy(
        "claims: [{ claim: tenant, equals: acme }, { claim: email_verified, equals: true }]",
    );
    let req = Req::get("/");
    let ok = json!({"tenant": "acme", "email_verified": true});
    assert!(decide(&p, &req, &identity("", ok)).is_allow());
    let d = decide(
        &p,
        &req,
        &identity("", json!({"tenant": "globex", "email_verified": true})),
    );
    assert_eq!(denied(&d), (403, "claims[0]", "forbidden"));
    let d = decide(
        &p,
        &req,
        &identity("", json!({"tenant": "acme", "email_verified": "true"})),
    );
    assert_eq!(denied(&d), (403, "claims[1]", "forbidden"));
    let d = decide(&p, &req, &identity("", json!({"tenant": "acme"})));
    assert_eq!(denied(&d), (403, "claims[1]", "forbidden"));
    // An array holding the value is not equal to it.
    let d = decide(
        &p,
        &req,
        &identity("", json!({"tenant": ["acme"], "email_verified": true})),
    );
    assert_eq!(denied(&d), (403, "claims[0]", "forbidden"));
}

#[test]
fn claims_contains() {
    let p = policy("claims: [{ claim: groups, contains: ops }]");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("", json!({"groups": ["dev", "ops"]}))).is_allow());
    assert!(decide(&p, &req, &identity("", json!({"groups": "ops"}))).is_allow());
    for claims in [
        json!({"groups": ["dev"]}),
        json!({"groups": "devops"}),
        json!({"groups": []}),
        json!({}),
    ] {
        let d = decide(&p, &req, &identity("", claims.clone()));
        assert_eq!(denied(&d), (403, "claims[0]", "forbidden"), "{claims}");
    }
}

#[test]
fn claims_in() {
    let p = policy("claims: [{ claim: org.id, in: [a, b, 7] }]");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("", json!({"org": {"id": "b"}}))).is_allow());
    assert!(decide(&p, &req, &identity("", json!({"org": {"id": 7}}))).is_allow());
    for claims in [
        json!({"org": {"id": "c"}}),
        json!({"org": {"id": "7"}}),
        json!({"org": {"id": ["a"]}}),
        json!({"org": "a"}),
    ] {
        let d = decide(&p, &req, &identity("", claims.clone()));
        assert_eq!(denied(&d), (403, "claims[0]", "forbidden"), "{claims}");
    }
}

// ---------------------------------------------------------------- CEL

#[test]
fn cel_sees_request() {
    let p = policy(
        r#"
cel:
  - 'request.method == "POST"'
  - 'request.path == "/users/alice%40example.com/orders/7"'
  - 'request.path_params.user_id == "alice@example.com" && request.path_params.order_id == "7"'
  - 'request.query.tag == ["a", "b"] && request.query.tag[1] == "b"'
  - '"x-env" in request.headers && request.headers["x-env"] == "prod"'
  - 'request.client_ip == "10.1.2.3"'
  - 'request.path.matches("^/users/[^/]+/orders/[0-9]+$")'
"#,
    );
    let id = identity("", json!({"sub": "alice@example.com"}));
    let req = Req::routed(
        "/users/{user_id}/orders/{order_id}",
        "/users/alice%40example.com/orders/7",
    )
    .unwrap()
    .method("POST")
    .query("tag", &["a", "b"])
    .header("x-env", "prod")
    // An IPv4 client seen through a dual-stack socket is written as IPv4.
    .ip("::ffff:10.1.2.3");
    assert_eq!(decide(&p, &req, &id), Decision::Allow);

    let wrong_method = req.method("GET");
    assert_eq!(
        denied(&decide(&p, &wrong_method, &id)),
        (403, "cel[0]", "forbidden")
    );
    let req = wrong_method.method("POST").ip("10.1.2.4");
    assert_eq!(denied(&decide(&p, &req, &id)), (403, "cel[5]", "forbidden"));
}

#[test]
fn cel_sees_identity() {
    let p = policy(
        r#"
cel:
  - 'identity.principal == "alice"'
  - 'identity.method == "jwt"'
  - '"orders:read" in identity.scopes && size(identity.scopes) == 2'
  - 'identity.claims.level >= 2 && identity.claims.org.name == "acme"'
  - 'identity.claims.groups.exists(g, g.startsWith("team-"))'
  - 'identity.credential_id == "jti-1"'
"#,
    );
    let claims = json!({
        "sub": "alice",
        "level": 3,
        "org": {"name": "acme"},
        "groups": ["x", "team-blue"],
    });
    let id = identity("orders:read orders:write", claims.clone());
    let req = Req::get("/");
    assert_eq!(decide(&p, &req, &id), Decision::Allow);

    let mut low = claims.clone();
    low["level"] = json!(1);
    let d = decide(&p, &req, &identity("orders:read orders:write", low));
    assert_eq!(denied(&d), (403, "cel[3]", "forbidden"));

    let mut api_key = identity("orders:read orders:write", claims);
    api_key.method = AuthMethod::ApiKey;
    let d = decide(&p, &req, &api_key);
    assert_eq!(denied(&d), (403, "cel[1]", "forbidden"));

    // No credential id is `null`, which is not the string.
    let p = policy("cel: ['identity.credential_id == null']");
    let mut anon = identity("", json!({}));
    anon.credential_id = None;
    assert!(decide(&p, &req, &anon).is_allow());
}

#[test]
fn cel_compile_error_reports_index_and_parser_message() {
    let err = compile_err("cel: ['true', 'request.method ==', 'true']");
    let PolicyError::Cel { index, message } = &err else {
        panic!("expected a CEL error, got {err:?}")
    };
    assert_eq!(*index, 1);
    assert!(message.contains("ERROR: <input>:1:"), "{message}");
    assert!(err.to_string().starts_with("cel[1]: "), "{err}");

    let err = compile_err("cel: ['request.method == \"GET\"', 'reqest.path == \"/\"']");
    assert!(
        matches!(&err, PolicyError::Cel { index: 1, message } if message.contains("reqest")),
        "{err}"
    );
}

#[test]
fn cel_runtime_error_denies_with_cel_error() {
    // A header the client did not send is a missing key: an error, not `false`, and it denies.
    let p = policy("cel: ['request.headers[\"x-tenant\"] == \"acme\"']");
    let id = identity("", json!({}));
    let d = decide(&p, &Req::get("/"), &id);
    assert_eq!(denied(&d), (403, "cel[0]", "cel_error"));
    // `!` of an error is still an error: negation cannot turn a failure into an allow.
    let p = policy("cel: ['!(request.headers[\"x-tenant\"] == \"evil\")']");
    assert_eq!(
        denied(&decide(&p, &Req::get("/"), &id)),
        (403, "cel[0]", "cel_error")
    );
    let p = policy("cel: ['true', '1 / 0 == 1']");
    assert_eq!(
        denied(&decide(&p, &Req::get("/"), &id)),
        (403, "cel[1]", "cel_error")
    );
    let p = policy("cel: ['identity.claims.missing == 1']");
    assert_eq!(
        denied(&decide(&p, &Req::get("/"), &id)),
        (403, "cel[0]", "cel_error")
    );
    // A bad regex is found at run time.
    let p = policy("cel: ['request.path.matches(\"(\")']");
    assert_eq!(
        denied(&decide(&p, &Req::get("/"), &id)),
        (403, "cel[0]", "cel_error")
    );
}

#[test]
fn cel_non_bool_denies() {
    let id = identity("", json!({"sub": "alice"}));
    for expr in ["identity.principal", "1", "[true]", "null", "{'a': true}"] {
        let p = policy(&format!("cel: [{expr:?}]"));
        assert_eq!(
            denied(&decide(&p, &Req::get("/"), &id)),
            (403, "cel[0]", "cel_error"),
            "{expr}"
        );
    }
}

// ---------------------------------------------------------------- MFA / step-up

const MFA: &str = "mfa: { amr_any: [mfa, otp, hwk] }";

#[test]
fn mfa_amr_present_absent_wrong() {
    let p = policy(MFA);
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("", json!({"amr": ["pwd", "hwk"]}))).is_allow());
    assert!(decide(&p, &req, &identity("", json!({"amr": "otp"}))).is_allow());
    for claims in [
        json!({}),
        json!({"amr": ["pwd"]}),
        json!({"amr": []}),
        json!({"amr": "MFA"}),
    ] {
        let d = decide(&p, &req, &identity("", claims.clone()));
        let s = step_up(&d);
        assert_eq!(s.failed, "amr", "{claims}");
        assert_eq!(d.status(), Some(401));
        assert_eq!(d.reason(), Some("insufficient_user_authentication"));
        assert_eq!(
            s.rfc9470_challenge(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"Multi-factor authentication is required\""
        );
    }
}

#[test]
fn mfa_acr() {
    let p = policy("mfa: { acr_any: ['urn:example:gold', 'phr'] }");
    let req = Req::get("/");
    assert!(decide(&p, &req, &identity("", json!({"acr": "phr"}))).is_allow());
    for claims in [
        json!({}),
        json!({"acr": "urn:example:silver"}),
        json!({"acr": ["phr"]}),
    ] {
        let d = decide(&p, &req, &identity("", claims.clone()));
        assert_eq!(
            d,
            Decision::StepUp(StepUp {
                acr_values: "urn:example:gold phr".to_owned(),
                max_age: None,
                failed: "acr",
            }),
            "{claims}"
        );
        assert_eq!(
            d.www_authenticate().unwrap(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"urn:example:gold phr\""
        );
    }
}

#[test]
fn mfa_max_age() {
    let p = policy("mfa: { amr_any: [mfa], acr_any: [gold], max_age: 300 }");
    let req = Req::get("/");
    let claims = |auth_time: Value| json!({"amr": ["mfa"], "acr": "gold", "auth_time": auth_time});
    assert!(decide(&p, &req, &identity("", claims(json!(NOW - 300)))).is_allow());
    assert!(decide(&p, &req, &identity("", claims(json!(NOW)))).is_allow());
    // Fractional seconds, and a little clock skew, are fine.
    assert!(decide(&p, &req, &identity("", claims(json!(NOW as f64 - 10.5)))).is_allow());
    assert!(decide(&p, &req, &identity("", claims(json!(NOW + 30)))).is_allow());

    for auth_time in [
        json!(NOW - 301),
        json!(0),
        json!(NOW + 3600),
        json!(null),
        json!("1700000000"),
        json!(-5),
    ] {
        let d = decide(&p, &req, &identity("", claims(auth_time.clone())));
        assert_eq!(step_up(&d).failed, "max_age", "{auth_time}");
        assert_eq!(
            step_up(&d).rfc9470_challenge(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"More recent authentication is required\", \
             acr_values=\"gold\", max_age=\"300\"",
            "{auth_time}"
        );
    }
    let mut no_auth_time = claims(json!(NOW));
    no_auth_time.as_object_mut().unwrap().remove("auth_time");
    let d = decide(&p, &req, &identity("", no_auth_time));
    assert_eq!(step_up(&d).failed, "max_age");
}

#[test]
fn mfa_checks_amr_before_acr_before_age() {
    let p = policy("mfa: { amr_any: [mfa], acr_any: [gold], max_age: 60 }");
    let d = decide(&p, &Req::get("/"), &identity("", json!({"auth_time": 0})));
    assert_eq!(
        step_up(&d),
        &StepUp {
            acr_values: "gold".to_owned(),
            max_age: Some(60),
            failed: "amr"
        }
    );
    assert_eq!(
        step_up(&d).rfc9470_challenge(),
        "Bearer error=\"insufficient_user_authentication\", \
         error_description=\"Multi-factor authentication is required\", \
         acr_values=\"gold\", max_age=\"60\""
    );
}

#[test]
fn authorize_uses_the_real_clock() {
    let p = policy("mfa: { max_age: 300 }");
    let real_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = Req::get("/");
    let fresh = identity("", json!({"auth_time": real_now - 5}));
    assert!(p.authorize(&req.authz(), &fresh).is_allow());
    let stale = identity("", json!({"auth_time": real_now - 3600}));
    assert!(matches!(
        p.authorize(&req.authz(), &stale),
        Decision::StepUp(_)
    ));
}

// ---------------------------------------------------------------- ownership (BOLA)

const USERS: &str = "/users/{user_id}/orders/{order_id}";

#[test]
fn ownership_equals() {
    let p = policy("ownership: [{ path_param: user_id, claim: sub }]");
    let alice = identity("", json!({"sub": "alice"}));
    let own = Req::routed(USERS, "/users/alice/orders/1").unwrap();
    assert!(decide(&p, &own, &alice).is_allow());
    let other = Req::routed(USERS, "/users/bob/orders/1").unwrap();
    assert_eq!(
        denied(&decide(&p, &other, &alice)),
        (404, "ownership[0]", "not_owner")
    );
    // No case folding.
    let upper = Req::routed(USERS, "/users/Alice/orders/1").unwrap();
    assert_eq!(
        denied(&decide(&p, &upper, &alice)),
        (404, "ownership[0]", "not_owner")
    );
    // Missing claim denies.
    let nobody = identity("", json!({}));
    assert_eq!(
        denied(&decide(&p, &own, &nobody)),
        (404, "ownership[0]", "not_owner")
    );
    // Missing path parameter (route without a template) denies.
    assert_eq!(
        denied(&decide(&p, &Req::get("/users/alice/orders/1"), &alice)),
        (404, "ownership[0]", "not_owner")
    );
    // A claim that is an array is not "equal" to one of its elements.
    let listy = identity("", json!({"sub": ["alice"]}));
    assert_eq!(
        denied(&decide(&p, &own, &listy)),
        (404, "ownership[0]", "not_owner")
    );
}

#[test]
fn ownership_deny_status_403() {
    let p = policy("ownership: [{ path_param: user_id, claim: sub, deny_status: 403 }]");
    let other = Req::routed(USERS, "/users/bob/orders/1").unwrap();
    let d = decide(&p, &other, &identity("", json!({"sub": "alice"})));
    assert_eq!(denied(&d), (403, "ownership[0]", "not_owner"));
}

#[test]
fn ownership_member() {
    let p = policy(
        "ownership: [{ path_param: tenant, claim: tenants, mode: member }, { path_param: id, claim: org.ids, mode: member }]",
    );
    let tpl = "/tenants/{tenant}/things/{id}";
    let id = identity(
        "",
        json!({"tenants": ["acme", "globex"], "org": {"ids": [7, "x"]}}),
    );
    assert!(
        decide(
            &p,
            &Req::routed(tpl, "/tenants/globex/things/7").unwrap(),
            &id
        )
        .is_allow()
    );
    assert!(
        decide(
            &p,
            &Req::routed(tpl, "/tenants/acme/things/x").unwrap(),
            &id
        )
        .is_allow()
    );
    let d = decide(
        &p,
        &Req::routed(tpl, "/tenants/initech/things/7").unwrap(),
        &id,
    );
    assert_eq!(denied(&d), (404, "ownership[0]", "not_owner"));
    // Numeric ids compare by their canonical text only.
    let d = decide(
        &p,
        &Req::routed(tpl, "/tenants/acme/things/07").unwrap(),
        &id,
    );
    assert_eq!(denied(&d), (404, "ownership[1]", "not_owner"));
    // A substring of a string claim is not membership.
    let single = identity("", json!({"tenants": "acme-corp", "org": {"ids": [7]}}));
    let d = decide(
        &p,
        &Req::routed(tpl, "/tenants/acme/things/7").unwrap(),
        &single,
    );
    assert_eq!(denied(&d), (404, "ownership[0]", "not_owner"));
}

#[test]
fn ownership_url_encoded_param() {
    let p = policy("ownership: [{ path_param: user_id, claim: sub }]");
    let id = identity("", json!({"sub": "alice@example.com"}));
    let req = Req::routed(USERS, "/users/alice%40example.com/orders/1").unwrap();
    assert!(decide(&p, &req, &id).is_allow());
    let req = Req::routed(USERS, "/users/alice@example.com/orders/1").unwrap();
    assert!(decide(&p, &req, &id).is_allow());
    // Decoded once: `%2540` is the literal text `%40`, not `@`.
    let req = Req::routed(USERS, "/users/alice%2540example.com/orders/1").unwrap();
    assert_eq!(req.params["user_id"], "alice%40example.com");
    assert!(!decide(&p, &req, &id).is_allow());
}

#[test]
fn ownership_traversal_and_encoded_separators_never_match() {
    for path in [
        "/users/%2e%2e/orders/1",
        "/users/..%2Fadmin/orders/1",
        "/users/alice%2F..%2Fbob/orders/1",
        "/users/a%2Fb/orders/1",
        "/users/a%5cb/orders/1",
        "/users/alice%00/orders/1",
        "/users/../orders/1",
        "/users/alice/orders/..",
        "/users/alice/orders/%2e",
        "/users/alice/../bob/orders/1",
    ] {
        assert!(Req::routed(USERS, path).is_none(), "{path}");
    }
    // Double encoding survives as text and is compared as text, never decoded again.
    let req = Req::routed(USERS, "/users/%252e%252e/orders/1").unwrap();
    assert_eq!(req.params["user_id"], "%2e%2e");
    let p = policy("ownership: [{ path_param: user_id, claim: sub }]");
    let d = decide(&p, &req, &identity("", json!({"sub": ".."})));
    assert_eq!(denied(&d), (404, "ownership[0]", "not_owner"));
}

// ---------------------------------------------------------------- evaluation order

#[test]
fn mfa_is_checked_before_ownership() {
    let p = policy(
        "ownership: [{ path_param: user_id, claim: sub }]\nmfa: { amr_any: [mfa], max_age: 300 }",
    );
    let req = Req::routed(USERS, "/users/bob/orders/1").unwrap();
    // Not the owner and no MFA: step up first, not a 404.
    let d = decide(
        &p,
        &req,
        &identity("", json!({"sub": "alice", "amr": ["pwd"]})),
    );
    assert_eq!(step_up(&d).failed, "amr");
    // With MFA done, the ownership check answers.
    let mfa_done = json!({"sub": "alice", "amr": ["mfa"], "auth_time": NOW});
    let d = decide(&p, &req, &identity("", mfa_done));
    assert_eq!(denied(&d), (404, "ownership[0]", "not_owner"));
}

#[test]
fn cheap_checks_come_first() {
    let p = policy(
        r#"
scopes_all: [read]
roles: { any_of: [admin] }
claims: [{ claim: tenant, equals: acme }]
mfa: { amr_any: [mfa] }
ownership: [{ path_param: user_id, claim: sub }]
cel: ['false']
"#,
    );
    let req = Req::routed(USERS, "/users/bob/orders/1").unwrap();
    let mut claims = json!({"sub": "alice"});
    let expect = |scope: &str, claims: &Value| {
        denied(&decide(&p, &req, &identity(scope, claims.clone())))
            .1
            .to_owned()
    };

    assert_eq!(expect("", &claims), "scopes_all");
    assert_eq!(expect("read", &claims), "roles");
    claims["roles"] = json!(["admin"]);
    assert_eq!(expect("read", &claims), "claims[0]");
    claims["tenant"] = json!("acme");
    let d = decide(&p, &req, &identity("read", claims.clone()));
    assert!(matches!(d, Decision::StepUp(_)));
    claims["amr"] = json!(["mfa"]);
    assert_eq!(expect("read", &claims), "ownership[0]");
    claims["sub"] = json!("bob");
    assert_eq!(expect("read", &claims), "cel[0]");
}
