#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Parameters in every location and the common styles: coercion from text, schema keywords,
//! required parameters, unknown query parameters and parameter pollution.

use std::path::Path;

use http::HeaderMap;
use portcullis_openapi::{ApiSpec, RequestInput, RouteMatch, ValidationOptions, Violation};

fn shop() -> ApiSpec {
    ApiSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop30.yaml"))
        .unwrap()
}

const TRACE: &str = "3f2b8c1e-9d4a-4e6b-8f0a-1c2d3e4f5a6b";

fn base_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-trace", TRACE.parse().unwrap());
    h.insert("cookie", "session=Abcd1234".parse().unwrap());
    h
}

fn search(
    spec: &ApiSpec,
    query: &str,
    headers: &HeaderMap,
    opts: ValidationOptions,
) -> Vec<(String, String)> {
    let RouteMatch::Operation(op) = spec.match_request("GET", "/v1/search") else {
        panic!()
    };
    let req = RequestInput {
        query: Some(query),
        headers,
        body: None,
        json: None,
    };
    spec.validate_request(&op, &req, &opts)
        .into_iter()
        .map(|Violation { pointer, rule, .. }| (pointer, rule))
        .collect()
}

fn v(pointer: &str, rule: &str) -> (String, String) {
    (pointer.to_owned(), rule.to_owned())
}

#[test]
fn valid_search_has_no_violation() {
    let spec = shop();
    let q = "limit=10&tags=red&tags=blue&ids=1,2,3&words=a%20bc&codes=1|2&filter[name]=x&filter[age]=3&exact=true&since=2024-02-29&price=0.5&note=hi";
    assert_eq!(
        search(&spec, q, &base_headers(), ValidationOptions::default()),
        vec![]
    );
}

#[test]
fn query_integer_is_coerced_then_bounded() {
    let spec = shop();
    let h = base_headers();
    assert_eq!(
        search(&spec, "limit=abc", &h, Default::default()),
        vec![v("/query/limit", "type")]
    );
    assert_eq!(
        search(&spec, "limit=0", &h, Default::default()),
        vec![v("/query/limit", "minimum")]
    );
    assert_eq!(
        search(&spec, "limit=101", &h, Default::default()),
        vec![v("/query/limit", "maximum")]
    );
    assert_eq!(
        search(&spec, "", &h, Default::default()),
        vec![v("/query/limit", "required")]
    );
    assert_eq!(
        search(&spec, "limit=1&limit=2", &h, Default::default()),
        vec![v("/query/limit", "duplicate_parameter")]
    );
}

#[test]
fn form_explode_true_and_false_arrays() {
    let spec = shop();
    let h = base_headers();
    assert_eq!(
        search(&spec, "limit=1&tags=red&tags=pink", &h, Default::default()),
        vec![v("/query/tags/1", "enum")]
    );
    assert_eq!(
        search(
            &spec,
            "limit=1&tags=red&tags=red&tags=red&tags=red",
            &h,
            Default::default()
        ),
        vec![v("/query/tags", "maxItems")]
    );
    assert_eq!(
        search(&spec, "limit=1&ids=1,x,3", &h, Default::default()),
        vec![v("/query/ids/1", "type")]
    );
}

#[test]
fn space_and_pipe_delimited_arrays() {
    let spec = shop();
    let h = base_headers();
    assert_eq!(
        search(&spec, "limit=1&words=ok%20toolong", &h, Default::default()),
        vec![v("/query/words/1", "maxLength")]
    );
    assert_eq!(
        search(&spec, "limit=1&codes=1|22|3", &h, Default::default()),
        vec![v("/query/codes/1", "maximum")]
    );
}

#[test]
fn deep_object_properties_are_coerced() {
    let spec = shop();
    let h = base_headers();
    assert_eq!(
        search(&spec, "limit=1&filter[age]=-1", &h, Default::default()),
        vec![v("/query/filter/age", "minimum")]
    );
    assert_eq!(
        search(&spec, "limit=1&filter%5Bage%5D=old", &h, Default::default()),
        vec![v("/query/filter/age", "type")]
    );
}

#[test]
fn boolean_date_exclusive_minimum_and_nullable() {
    let spec = shop();
    let h = base_headers();
    assert_eq!(
        search(&spec, "limit=1&exact=yes", &h, Default::default()),
        vec![v("/query/exact", "type")]
    );
    assert_eq!(
        search(&spec, "limit=1&since=2023-02-30", &h, Default::default()),
        vec![v("/query/since", "format")]
    );
    assert_eq!(
        search(&spec, "limit=1&price=0", &h, Default::default()),
        vec![v("/query/price", "exclusiveMinimum")]
    );
    assert_eq!(
        search(&spec, "limit=1&note=123456789", &h, Default::default()),
        vec![v("/query/note", "maxLength")]
    );
}

#[test]
fn unknown_query_parameters_refused_only_when_asked() {
    let spec = shop();
    let h = base_headers();
    let strict = ValidationOptions {
        reject_unknown_query_params: true,
        ..Default::default()
    };
    assert_eq!(
        search(&spec, "limit=1&debug=1", &h, Default::default()),
        vec![]
    );
    assert_eq!(
        search(&spec, "limit=1&debug=1&filter[name]=a", &h, strict),
        vec![v("/query/debug", "unknown_parameter")]
    );
}

#[test]
fn header_parameters_required_format_and_simple_arrays() {
    let spec = shop();
    let mut h = base_headers();
    h.remove("x-trace");
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/header/x-trace", "required")]
    );
    h.insert("x-trace", "not-a-uuid".parse().unwrap());
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/header/x-trace", "format")]
    );
    let mut h = base_headers();
    h.insert("x-tags", "ab, c".parse().unwrap());
    h.append("x-tags", "de".parse().unwrap());
    // simple style: "ab, c,de" -> ["ab", " c", "de"]; " c" has 2 characters, so all pass minLength 2.
    assert_eq!(search(&spec, "limit=1", &h, Default::default()), vec![]);
    h.insert("x-tags", "ab,c".parse().unwrap());
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/header/x-tags/1", "minLength")]
    );
}

#[test]
fn cookie_parameters_form_style() {
    let spec = shop();
    let mut h = HeaderMap::new();
    h.insert("x-trace", TRACE.parse().unwrap());
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/cookie/session", "required")]
    );
    h.insert("cookie", "theme=dark; session=short".parse().unwrap());
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/cookie/session", "pattern")]
    );
    h.insert("cookie", "session=Abcd1234; prefs=1,x".parse().unwrap());
    assert_eq!(
        search(&spec, "limit=1", &h, Default::default()),
        vec![v("/cookie/prefs/1", "type")]
    );
}

#[test]
fn path_parameters_simple_style_and_operation_override() {
    let spec = shop();
    let h = HeaderMap::new();
    let check = |method: &str, path: &str| -> Vec<(String, String)> {
        let RouteMatch::Operation(op) = spec.match_request(method, path) else {
            panic!("{path}")
        };
        let req = RequestInput {
            query: None,
            headers: &h,
            body: None,
            json: None,
        };
        spec.validate_request(&op, &req, &Default::default())
            .into_iter()
            .map(|x| (x.pointer, x.rule))
            .collect()
    };
    assert_eq!(check("GET", "/v1/users/7"), vec![]);
    assert_eq!(check("GET", "/v1/users/0"), vec![v("/path/id", "minimum")]);
    assert_eq!(check("GET", "/v1/users/abc"), vec![v("/path/id", "type")]);
    // The DELETE operation redefines `id` as a lowercase string.
    assert_eq!(check("DELETE", "/v1/users/abc"), vec![]);
    assert_eq!(
        check("DELETE", "/v1/users/7"),
        vec![v("/path/id", "pattern")]
    );
    assert_eq!(check("GET", "/v1/coords/3,4"), vec![]);
    assert_eq!(
        check("GET", "/v1/coords/3,4,5"),
        vec![v("/path/point", "maxItems")]
    );
    assert_eq!(
        check("GET", "/v1/coords/3,y"),
        vec![v("/path/point/1", "type")]
    );
    // int64 bounds: past i64 is refused by `maximum`, past u64 it is no integer at all.
    assert_eq!(
        check("GET", "/v1/users/10000000000000000000"),
        vec![v("/path/id", "maximum")]
    );
    assert_eq!(
        check("GET", "/v1/users/99999999999999999999"),
        vec![v("/path/id", "type")]
    );
}

#[test]
fn json_content_query_parameter_and_label_matrix_path_styles() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /m/{pt}/{ids}:\n    get:\n      parameters:\n        - {name: pt, in: path, required: true, style: label, schema: {type: array, items: {type: integer}}}\n        - {name: ids, in: path, required: true, style: matrix, schema: {type: array, items: {type: integer, maximum: 5}}}\n        - name: q\n          in: query\n          content:\n            application/json:\n              schema: {type: object, required: [n], properties: {n: {type: integer}}}\n      responses: {}\n";
    let spec = ApiSpec::from_str(text, Path::new("m.yaml")).unwrap();
    let h = HeaderMap::new();
    let check = |path: &str, query: &str| -> Vec<(String, String)> {
        let RouteMatch::Operation(op) = spec.match_request("GET", path) else {
            panic!("{path}")
        };
        let req = RequestInput {
            query: Some(query),
            headers: &h,
            body: None,
            json: None,
        };
        spec.validate_request(&op, &req, &Default::default())
            .into_iter()
            .map(|x| (x.pointer, x.rule))
            .collect()
    };
    assert_eq!(check("/m/.1,2/;ids=3,4", "q=%7B%22n%22%3A1%7D"), vec![]);
    assert_eq!(
        check("/m/.1,x/;ids=3,9", ""),
        vec![v("/path/pt/1", "type"), v("/path/ids/1", "maximum")]
    );
    assert_eq!(
        check("/m/.1/;ids=1", "q=%7B%22n%22%3A%22a%22%7D"),
        vec![v("/query/q/n", "type")]
    );
    assert_eq!(
        check("/m/.1/;ids=1", "q=%7Bbroken"),
        vec![v("/query/q", "type")]
    );
}
