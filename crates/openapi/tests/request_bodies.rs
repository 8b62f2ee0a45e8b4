#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Request bodies: JSON (and `+json`), URL-encoded and multipart forms, required bodies,
//! undeclared content types, and the mass-assignment defence through `allOf` and `$ref`.

use std::path::Path;

use http::HeaderMap;
use portcullis_openapi::{ApiSpec, RequestInput, RouteMatch, ValidationOptions};
use serde_json::json;

fn shop() -> ApiSpec {
    ApiSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop30.yaml"))
        .unwrap()
}

const STRICT: ValidationOptions = ValidationOptions {
    reject_unknown_properties: true,
    reject_unknown_query_params: false,
};

fn post(
    spec: &ApiSpec,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
    opts: ValidationOptions,
) -> Vec<(String, String)> {
    let RouteMatch::Operation(op) = spec.match_request("POST", path) else {
        panic!("{path}")
    };
    let mut h = HeaderMap::new();
    if let Some(ct) = content_type {
        h.insert("content-type", ct.parse().unwrap());
    }
    let req = RequestInput {
        query: None,
        headers: &h,
        body: Some(body),
        json: None,
    };
    let mut out: Vec<_> = spec
        .validate_request(&op, &req, &opts)
        .into_iter()
        .map(|v| (v.pointer, v.rule))
        .collect();
    out.sort();
    out
}

fn v(pointer: &str, rule: &str) -> (String, String) {
    (pointer.to_owned(), rule.to_owned())
}

#[test]
fn json_body_nested_array_violations_point_inside() {
    let spec = shop();
    let ok = br#"{"items": [{"sku": "ABC-123", "qty": 2}]}"#;
    assert_eq!(
        post(&spec, "/v1/orders", Some("application/json"), ok, STRICT),
        vec![]
    );
    let bad = br#"{"items": [{"sku": "ABC-123", "qty": 2}, {"sku": "abc", "qty": 0}, {"qty": 1}]}"#;
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            Some("application/json; charset=utf-8"),
            bad,
            Default::default()
        ),
        vec![
            v("/body/items/1/qty", "minimum"),
            v("/body/items/1/sku", "pattern"),
            v("/body/items/2/sku", "required")
        ]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            Some("application/json"),
            b"{\"items\": [",
            Default::default()
        ),
        vec![v("/body", "json")]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            Some("application/json"),
            br#"{"items": []}"#,
            Default::default()
        ),
        vec![v("/body/items", "minItems")]
    );
}

#[test]
fn pre_parsed_json_is_used_and_plus_json_counts_as_json() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /p:\n    post:\n      requestBody:\n        content:\n          application/merge-patch+json:\n            schema: {type: object, properties: {n: {type: integer}}}\n      responses: {}\n";
    let spec = ApiSpec::from_str(text, Path::new("p.yaml")).unwrap();
    let RouteMatch::Operation(op) = spec.match_request("POST", "/p") else {
        panic!()
    };
    let mut h = HeaderMap::new();
    h.insert(
        "content-type",
        "application/merge-patch+json".parse().unwrap(),
    );
    let parsed = json!({"n": "seven"});
    // The raw bytes are valid; the pre-parsed value is what must be checked.
    let req = RequestInput {
        query: None,
        headers: &h,
        body: Some(br#"{"n": 7}"#),
        json: Some(&parsed),
    };
    let v = spec.validate_request(&op, &req, &Default::default());
    assert_eq!(
        (v[0].pointer.as_str(), v[0].rule.as_str()),
        ("/body/n", "type")
    );
}

#[test]
fn missing_required_body_and_undeclared_content_type() {
    let spec = shop();
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("application/json"),
            b"",
            Default::default()
        ),
        vec![v("/body", "required")]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("text/xml"),
            b"<a/>",
            Default::default()
        ),
        vec![v("/body", "content_type")]
    );
    assert_eq!(
        post(&spec, "/v1/users", None, b"{}", Default::default()),
        vec![v("/body", "content_type")]
    );
    // /orders has an optional body: no body is fine.
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            Some("application/json"),
            b"",
            Default::default()
        ),
        vec![]
    );
}

#[test]
fn urlencoded_form_fields_are_coerced_and_validated() {
    let spec = shop();
    let ct = Some("application/x-www-form-urlencoded");
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            ct,
            b"sku=ABC-123&qty=3&gift=true&colors=red&colors=blue",
            STRICT
        ),
        vec![]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            ct,
            b"sku=ABC-12&qty=zero&gift=maybe",
            Default::default()
        ),
        vec![
            v("/body/gift", "type"),
            v("/body/qty", "type"),
            v("/body/sku", "pattern")
        ]
    );
    assert_eq!(
        post(&spec, "/v1/orders", ct, b"qty=3", Default::default()),
        vec![v("/body/sku", "required")]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            ct,
            b"sku=ABC-123&qty=3&role=admin",
            STRICT
        ),
        vec![v("/body/role", "additionalProperties")]
    );
}

#[test]
fn multipart_form_fields_are_validated() {
    let spec = shop();
    let ct = Some("multipart/form-data; boundary=----b0undary");
    let body = b"------b0undary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n------b0undary\r\nContent-Disposition: form-data; name=\"qty\"\r\n\r\n2\r\n------b0undary\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n------b0undary--\r\n";
    assert_eq!(post(&spec, "/v1/orders", ct, body, STRICT), vec![]);
    let body = b"------b0undary\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nmuch too long a title\r\n------b0undary\r\nContent-Disposition: form-data; name=\"qty\"\r\n\r\n0\r\n------b0undary--\r\n";
    assert_eq!(
        post(&spec, "/v1/orders", ct, body, Default::default()),
        vec![v("/body/qty", "minimum"), v("/body/title", "maxLength")]
    );
    assert_eq!(
        post(&spec, "/v1/orders", ct, b"garbage", Default::default()),
        vec![v("/body", "multipart")]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/orders",
            Some("multipart/form-data"),
            b"x",
            Default::default()
        ),
        vec![v("/body", "multipart")]
    );
}

#[test]
fn mass_assignment_admin_flag_is_refused_through_allof() {
    let spec = shop();
    let body = br#"{"name": "Ann", "password": "longenough", "admin": true, "address": {"city": "Oslo", "isStaff": true}}"#;
    // Without strictness the schema (no additionalProperties) lets it through ...
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("application/json"),
            body,
            Default::default()
        ),
        vec![]
    );
    // ... with it, both the top-level and the nested ($ref) intruders are refused.
    assert_eq!(
        post(&spec, "/v1/users", Some("application/json"), body, STRICT),
        vec![
            v("/body/address/isStaff", "additionalProperties"),
            v("/body/admin", "additionalProperties")
        ]
    );
}

#[test]
fn read_only_properties_are_not_required_but_refused_when_strict() {
    let spec = shop();
    // `id` is required but readOnly: a request need not send it.
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("application/json"),
            br#"{"name": "Ann"}"#,
            Default::default()
        ),
        vec![]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("application/json"),
            br#"{"name": "Ann", "id": 1}"#,
            STRICT
        ),
        vec![v("/body/id", "additionalProperties")]
    );
    assert_eq!(
        post(
            &spec,
            "/v1/users",
            Some("application/json"),
            br#"{"name": "Ann", "email": "nope"}"#,
            Default::default()
        ),
        vec![v("/body/email", "format")]
    );
}

#[test]
fn explicit_additional_properties_false_is_reported_once() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /p:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {type: object, additionalProperties: false, properties: {a: {type: string}}}\n      responses: {}\n";
    let spec = ApiSpec::from_str(text, Path::new("p.yaml")).unwrap();
    assert_eq!(
        post(
            &spec,
            "/p",
            Some("application/json"),
            br#"{"a": "x", "b": 1}"#,
            Default::default()
        ),
        vec![v("/body/b", "additionalProperties")]
    );
    assert_eq!(
        post(
            &spec,
            "/p",
            Some("application/json"),
            br#"{"a": "x", "b": 1}"#,
            STRICT
        ),
        vec![v("/body/b", "additionalProperties")]
    );
}

#[test]
fn body_on_operation_without_request_body_is_refused() {
    let spec = shop();
    let RouteMatch::Operation(op) = spec.match_request("GET", "/v1/tree") else {
        panic!()
    };
    let h = HeaderMap::new();
    let req = RequestInput {
        query: None,
        headers: &h,
        body: Some(b"{}"),
        json: None,
    };
    let v = spec.validate_request(&op, &req, &Default::default());
    assert_eq!(v[0].rule, "content_type");
}

#[test]
fn openapi_30_nullable_accepts_null_only_where_declared() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /p:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              type: object\n              properties:\n                zip: {type: string, nullable: true}\n                name: {type: string}\n                color: {type: string, enum: [red], nullable: true}\n                home: {nullable: true, allOf: [{$ref: '#/components/schemas/A'}]}\n      responses: {}\ncomponents:\n  schemas:\n    A: {type: object, required: [city], properties: {city: {type: string}}}\n";
    let spec = ApiSpec::from_str(text, Path::new("n.yaml")).unwrap();
    let ct = Some("application/json");
    assert_eq!(
        post(
            &spec,
            "/p",
            ct,
            br#"{"zip": null, "color": null, "home": null}"#,
            STRICT
        ),
        vec![]
    );
    assert_eq!(
        post(&spec, "/p", ct, br#"{"home": {"city": "x"}}"#, STRICT),
        vec![]
    );
    assert_eq!(
        post(&spec, "/p", ct, br#"{"name": null}"#, Default::default()),
        vec![v("/body/name", "type")]
    );
    assert_eq!(
        post(&spec, "/p", ct, br#"{"home": {}}"#, Default::default()),
        vec![v("/body/home", "anyOf")]
    );
    assert_eq!(
        post(
            &spec,
            "/p",
            ct,
            br#"{"home": {"city": "x", "evil": 1}}"#,
            STRICT
        ),
        vec![v("/body/home/evil", "additionalProperties")]
    );
}
