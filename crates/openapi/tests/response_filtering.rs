#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Response filtering: undeclared properties removed in place through nested arrays, `allOf` and
//! `$ref`; `additionalProperties` respected; writeOnly removed; status ranges and flags.

use std::path::Path;

use portcullis_openapi::{ApiSpec, OperationMatch, RouteMatch};
use serde_json::json;

fn shop() -> ApiSpec {
    ApiSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop30.yaml"))
        .unwrap()
}

fn op<'a>(spec: &'a ApiSpec, method: &str, path: &str) -> OperationMatch<'a> {
    let RouteMatch::Operation(op) = spec.match_request(method, path) else {
        panic!("{path}")
    };
    op
}

#[test]
fn nested_arrays_and_allof_keep_only_declared_properties() {
    let spec = shop();
    let get = op(&spec, "GET", "/v1/users/1");
    let mut body = json!({
        "id": 1, "name": "Ann", "password": "hash", "ssn": "123",
        "roles": [{"name": "a", "internal": 1, "grants": [[{"scope": "r", "token": "t"}], []]}],
        "address": {"city": "Oslo", "lat": 1.0}
    });
    let report = spec.filter_response(&get, 200, Some("application/json"), &mut body);
    assert_eq!(
        body,
        json!({"id": 1, "name": "Ann", "roles": [{"name": "a", "grants": [[{"scope": "r"}], []]}], "address": {"city": "Oslo"}})
    );
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(
        removed,
        vec![
            "/address/lat",
            "/password",
            "/roles/0/grants/0/0/token",
            "/roles/0/internal",
            "/ssn"
        ]
    );
    assert!(!report.undeclared_status && !report.undeclared_content_type);
}

#[test]
fn status_range_then_default_then_undeclared() {
    let spec = shop();
    let get = op(&spec, "GET", "/v1/users/1");
    let mut body = json!({"code": 404, "message": "no", "stack": "trace"});
    let report = spec.filter_response(&get, 404, Some("application/problem+json"), &mut body);
    assert_eq!(report.removed, vec!["/stack"]);
    let mut body = json!({"message": "x", "debug": 1});
    let report = spec.filter_response(&get, 503, Some("application/json"), &mut body);
    assert_eq!(report.removed, vec!["/debug"]);
    let me = op(&spec, "GET", "/v1/users/me");
    let mut body = json!({"a": 1});
    let report = spec.filter_response(&me, 500, Some("application/json"), &mut body);
    assert!(report.undeclared_status);
    assert_eq!(body, json!({"a": 1}));
    assert!(!spec.response_status_declared(&me, 500));
}

#[test]
fn undeclared_content_type_is_flagged() {
    let spec = shop();
    let get = op(&spec, "GET", "/v1/users/1");
    let mut body = json!({"id": 1});
    let report = spec.filter_response(&get, 200, Some("text/html"), &mut body);
    assert!(report.undeclared_content_type);
    assert!(spec.response_is_json_declared(&get, 200, Some("application/json; charset=utf-8")));
    assert!(!spec.response_is_json_declared(&get, 200, Some("text/html")));
    assert!(!spec.response_is_json_declared(
        &op(&spec, "GET", "/v1/users/me"),
        200,
        Some("application/json")
    ));
}

#[test]
fn additional_properties_true_or_schema_keeps_extras() {
    let spec = shop();
    let get = op(&spec, "GET", "/v1/settings");
    let mut body = json!({
        "theme": "dark", "secret": 1,
        "labels": {"work": {"color": "red", "owner": "x"}, "home": {"color": "blue"}},
        "extra": {"a": "1", "anything": {"deep": true}}
    });
    let report = spec.filter_response(&get, 200, Some("application/json"), &mut body);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, vec!["/labels/work/owner", "/secret"]);
    assert_eq!(body["extra"]["anything"], json!({"deep": true}));
    assert_eq!(body["labels"]["home"], json!({"color": "blue"}));
}

#[test]
fn recursive_schema_is_filtered_at_every_depth() {
    let spec = shop();
    let get = op(&spec, "GET", "/v1/tree");
    let mut body = json!({"name": "r", "children": [{"name": "a", "children": [{"name": "b", "x": 1, "children": []}]}]});
    let report = spec.filter_response(&get, 200, Some("application/json"), &mut body);
    assert_eq!(report.removed, vec!["/children/0/children/0/x"]);
}

#[test]
fn one_of_and_any_of_are_a_union() {
    let text = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /p:\n    get:\n      responses:\n        '200':\n          description: ok\n          content:\n            application/json:\n              schema:\n                type: array\n                items:\n                  oneOf:\n                    - {type: object, properties: {cat: {type: string}}}\n                    - {type: object, properties: {dog: {type: string}}}\n";
    let spec = ApiSpec::from_str(text, Path::new("p.yaml")).unwrap();
    let get = op(&spec, "GET", "/p");
    let mut body = json!([{"cat": "a", "owner": "x"}, {"dog": "b"}]);
    let report = spec.filter_response(&get, 200, Some("application/json"), &mut body);
    assert_eq!(report.removed, vec!["/0/owner"]);
    assert_eq!(body, json!([{"cat": "a"}, {"dog": "b"}]));
}
