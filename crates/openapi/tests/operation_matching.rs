#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Operation matching: server base paths, literal-over-template precedence, 404 versus 405,
//! percent-decoding once per segment, and the exact trailing-slash policy.

use std::path::Path;

use portcullis_openapi::{ApiSpec, OperationMatch, RouteMatch};

fn shop() -> ApiSpec {
    ApiSpec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop30.yaml"))
        .unwrap()
}

fn op<'a>(spec: &'a ApiSpec, method: &str, path: &str) -> OperationMatch<'a> {
    match spec.match_request(method, path) {
        RouteMatch::Operation(op) => op,
        other => panic!("{method} {path}: {other:?}"),
    }
}

#[test]
fn server_url_base_path_with_variable_default_is_the_prefix() {
    let spec = shop();
    assert_eq!(op(&spec, "GET", "/v1/users/me").operation_id, Some("getMe"));
    assert!(matches!(
        spec.match_request("GET", "/users/me"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1x/users/me"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1"),
        RouteMatch::NotFound
    ));
}

#[test]
fn literal_segment_beats_template() {
    let spec = shop();
    assert_eq!(op(&spec, "GET", "/v1/users/me").operation_id, Some("getMe"));
    let user = op(&spec, "GET", "/v1/users/42");
    assert_eq!(user.operation_id, Some("getUser"));
    assert_eq!(user.path_params, vec![("id", "42".to_owned())]);
    // /users/me declares only GET: DELETE falls through to the template that declares it.
    assert_eq!(
        op(&spec, "DELETE", "/v1/users/me").operation_id,
        Some("deleteUser")
    );
    // Backtracking: "meta" is literal below the parameter, not the first level.
    let meta = op(&spec, "GET", "/v1/files/report/meta");
    assert_eq!(meta.operation_id, Some("getFileMeta"));
    assert_eq!(meta.path_params, vec![("name", "report".to_owned())]);
}

#[test]
fn crapi_literal_recent_beats_post_id_template() {
    let spec = ApiSpec::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/specs/crapi-openapi.json"
    )))
    .unwrap();
    assert_eq!(
        op(&spec, "GET", "/community/api/v2/community/posts/recent").path_template,
        "/community/api/v2/community/posts/recent"
    );
    assert_eq!(
        op(&spec, "GET", "/community/api/v2/community/posts/abc").path_template,
        "/community/api/v2/community/posts/{postId}"
    );
}

#[test]
fn unknown_path_is_not_found_and_undeclared_method_is_not_allowed() {
    let spec = shop();
    assert!(matches!(
        spec.match_request("GET", "/v1/nothing"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1/users/42/extra"),
        RouteMatch::NotFound
    ));
    match spec.match_request("PATCH", "/v1/users/42") {
        RouteMatch::MethodNotAllowed { allowed } => assert_eq!(allowed, vec!["GET", "DELETE"]),
        other => panic!("{other:?}"),
    }
    match spec.match_request("PROPFIND", "/v1/search") {
        RouteMatch::MethodNotAllowed { allowed } => assert_eq!(allowed, vec!["GET"]),
        other => panic!("{other:?}"),
    }
    // HEAD is served by GET.
    assert_eq!(op(&spec, "HEAD", "/v1/search").operation_id, Some("search"));
    assert_eq!(op(&spec, "get", "/v1/search").operation_id, Some("search"));
}

#[test]
fn encoded_slash_stays_inside_the_parameter() {
    let spec = shop();
    let m = op(&spec, "GET", "/v1/files/a%2Fb");
    assert_eq!(m.operation_id, Some("getFile"));
    assert_eq!(m.path_params, vec![("name", "a/b".to_owned())]);
    // a%2Fmeta is one segment: it must not reach /files/{name}/meta.
    assert_eq!(
        op(&spec, "GET", "/v1/files/x%2Fmeta").operation_id,
        Some("getFile")
    );
    // Literal segments compare after decoding.
    assert_eq!(
        op(&spec, "GET", "/v1/users/m%65").operation_id,
        Some("getMe")
    );
}

#[test]
fn double_encoding_is_decoded_only_once() {
    let spec = shop();
    let m = op(&spec, "GET", "/v1/files/a%252Fb");
    assert_eq!(m.path_params, vec![("name", "a%2Fb".to_owned())]);
    let m = op(&spec, "GET", "/v1/files/%252e%252e");
    assert_eq!(m.path_params, vec![("name", "%2e%2e".to_owned())]);
}

#[test]
fn trailing_slash_is_exact() {
    let spec = shop();
    assert!(matches!(
        spec.match_request("GET", "/v1/users/me/"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1/search/"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1//search"),
        RouteMatch::NotFound
    ));
    assert!(matches!(
        spec.match_request("GET", "/v1/files/"),
        RouteMatch::NotFound
    ));
}

#[test]
fn relative_server_and_no_server_prefixes() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a/{x}.{ext}:\n    get: {responses: {}}\n";
    let spec = ApiSpec::from_str(text, Path::new("x.yaml")).unwrap();
    let m = op(&spec, "GET", "/a/report.tar.gz");
    assert_eq!(
        m.path_params,
        vec![("x", "report".to_owned()), ("ext", "tar.gz".to_owned())]
    );
    let text = "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: /api/}, {url: 'https://h.example/v2'}]\npaths:\n  /a:\n    get: {responses: {}}\n";
    let spec = ApiSpec::from_str(text, Path::new("x.yaml")).unwrap();
    op(&spec, "GET", "/api/a");
    op(&spec, "GET", "/v2/a");
    assert!(matches!(
        spec.match_request("GET", "/a"),
        RouteMatch::NotFound
    ));
}
