#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Violation messages never contain the offending value: a distinctive payload sent in every
//! location must not appear in any message.

use std::path::Path;

use http::HeaderMap;
use portcullis_openapi::{ApiSpec, RequestInput, RouteMatch, ValidationOptions};

const PAYLOAD: &str = "ZqXpayload7731";

#[test]
fn messages_never_echo_the_payload() {
    let spec =
        ApiSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop30.yaml"))
            .unwrap();
    let opts = ValidationOptions {
        reject_unknown_properties: true,
        reject_unknown_query_params: true,
    };
    let mut h = HeaderMap::new();
    h.insert("x-trace", PAYLOAD.parse().unwrap());
    h.insert("x-tags", "a".parse().unwrap());
    h.insert(
        "cookie",
        format!("session={PAYLOAD}; prefs={PAYLOAD}")
            .parse()
            .unwrap(),
    );
    let query = format!(
        "limit={PAYLOAD}&tags={PAYLOAD}&ids={PAYLOAD}&filter[age]={PAYLOAD}&since={PAYLOAD}&exact={PAYLOAD}&note={PAYLOAD}&{PAYLOAD}=1"
    );
    let RouteMatch::Operation(op) = spec.match_request("GET", "/v1/search") else {
        panic!()
    };
    let req = RequestInput {
        query: Some(&query),
        headers: &h,
        body: None,
        json: None,
    };
    let mut all = spec.validate_request(&op, &req, &opts);
    assert!(all.len() >= 9, "{all:?}");

    let RouteMatch::Operation(op) = spec.match_request("GET", &format!("/v1/users/{PAYLOAD}"))
    else {
        panic!()
    };
    all.extend(spec.validate_request(
        &op,
        &RequestInput {
            query: None,
            headers: &h,
            body: None,
            json: None,
        },
        &opts,
    ));

    let mut jh = HeaderMap::new();
    jh.insert("content-type", "application/json".parse().unwrap());
    let body = format!(
        r#"{{"name": "{PAYLOAD}!", "email": "{PAYLOAD}", "password": 5, "{PAYLOAD}": true, "address": {{"zip": ["{PAYLOAD}"]}}}}"#
    );
    let RouteMatch::Operation(op) = spec.match_request("POST", "/v1/users") else {
        panic!()
    };
    all.extend(spec.validate_request(
        &op,
        &RequestInput {
            query: None,
            headers: &jh,
            body: Some(body.as_bytes()),
            json: None,
        },
        &opts,
    ));
    let bad_json = format!("{{\"name\": \"{PAYLOAD}");
    all.extend(spec.validate_request(
        &op,
        &RequestInput {
            query: None,
            headers: &jh,
            body: Some(bad_json.as_bytes()),
            json: None,
        },
        &opts,
    ));

    let rules: std::collections::BTreeSet<&str> = all.iter().map(|v| v.rule.as_str()).collect();
    for rule in [
        "type",
        "format",
        "pattern",
        "enum",
        "additionalProperties",
        "unknown_parameter",
        "json",
        "minLength",
    ] {
        assert!(rules.contains(rule), "{rule} not exercised: {rules:?}");
    }
    for v in &all {
        assert!(!v.message.contains(PAYLOAD), "payload echoed: {v:?}");
        assert!(
            !v.message.to_lowercase().contains(&PAYLOAD.to_lowercase()),
            "payload echoed: {v:?}"
        );
    }
}
