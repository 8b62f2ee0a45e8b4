//! Criterion benchmarks: `AuthzPolicy::authorize` per rule kind, and `PathTemplate::match_path`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Every case is an allowed request (the common path; a denial additionally allocates its rule
// name). The identity looks like one the JWT stage produces from a typical access token.
//
// - `authorize/scopes_all`: `scopes_all: [read, write]`.
// - `authorize/ownership`: `ownership: [{path_param: user_id, claim: sub}]`, with the path
//   parameters matched once in setup; `authorize/ownership_with_match` also runs
//   `PathTemplate::match_path` per iteration, as the gateway does for such a route.
// - `authorize/cel`: one rule, `request.method == "GET" && identity.principal ==
//   request.path_params.user_id`, parameters matched in setup.
// - `path_template/match_path`: `/users/{user_id}/orders/{order_id}` alone.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_identity::AuthMethod;
use portcullis_policy::{
    AuthzConfig, AuthzPolicy, AuthzRequest, Identity, OwnershipConfig, OwnershipMode, PathTemplate,
};
use serde_json::{Value, json};

const TEMPLATE: &str = "/users/{user_id}/orders/{order_id}";
const PATH: &str = "/users/alice/orders/42";

fn identity() -> Identity {
    let Value::Object(claims) = json!({
        "iss": "https://idp.bench",
        "aud": "portcullis-api",
        "sub": "alice",
        "exp": 1_900_000_000u64,
        "iat": 1_800_000_000u64,
        "jti": "bench-token-0",
        "scope": "read write profile",
    }) else {
        panic!("claims must be an object")
    };
    Identity {
        method: AuthMethod::Jwt,
        principal: "alice".to_owned(),
        credential_id: Some("bench-token-0".to_owned()),
        scopes: vec!["read".to_owned(), "write".to_owned(), "profile".to_owned()],
        claims: claims.into_iter().collect(),
        tier: None,
    }
}

fn compile(config: AuthzConfig) -> AuthzPolicy {
    AuthzPolicy::compile(&config).unwrap()
}

fn authorize(c: &mut Criterion) {
    let identity = identity();
    let template = PathTemplate::parse(TEMPLATE).unwrap();
    let params = template.match_path(PATH).unwrap();
    let query = BTreeMap::new();
    let headers: BTreeMap<String, String> = [
        ("accept", "application/json"),
        ("host", "api.example.test"),
        ("user-agent", "bench/1.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let client_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let request = AuthzRequest {
        method: "GET",
        path: PATH,
        path_params: &params,
        query: &query,
        headers: &headers,
        client_ip,
    };

    let scopes = compile(AuthzConfig {
        scopes_all: Some(vec!["read".to_owned(), "write".to_owned()]),
        ..AuthzConfig::default()
    });
    let ownership = compile(AuthzConfig {
        ownership: vec![OwnershipConfig {
            path_param: "user_id".to_owned(),
            claim: "sub".to_owned(),
            mode: OwnershipMode::Equals,
            deny_status: 404,
        }],
        ..AuthzConfig::default()
    });
    ownership.check_template(&template).unwrap();
    let cel = compile(AuthzConfig {
        cel: vec![
            r#"request.method == "GET" && identity.principal == request.path_params.user_id"#
                .to_owned(),
        ],
        ..AuthzConfig::default()
    });
    for policy in [&scopes, &ownership, &cel] {
        assert!(policy.authorize(&request, &identity).is_allow());
    }

    let mut group = c.benchmark_group("authorize");
    group.bench_function("scopes_all", |b| {
        b.iter(|| scopes.authorize(black_box(&request), black_box(&identity)));
    });
    group.bench_function("ownership", |b| {
        b.iter(|| ownership.authorize(black_box(&request), black_box(&identity)));
    });
    group.bench_function("ownership_with_match", |b| {
        b.iter(|| {
            let params = template.match_path(black_box(PATH)).unwrap();
            let request = AuthzRequest {
                path_params: &params,
                ..request
            };
            ownership.authorize(black_box(&request), black_box(&identity))
        });
    });
    group.bench_function("cel", |b| {
        b.iter(|| cel.authorize(black_box(&request), black_box(&identity)));
    });
    group.finish();

    c.bench_function("path_template/match_path", |b| {
        b.iter(|| template.match_path(black_box(PATH)).unwrap());
    });
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
    targets = authorize
}
criterion_main!(benches);
