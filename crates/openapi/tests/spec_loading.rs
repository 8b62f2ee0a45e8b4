#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Spec loading: 3.0 and 3.1 documents, relative-file references, refused references, and errors
//! that name the file, the line and the JSON pointer.

use std::path::{Path, PathBuf};

use portcullis_openapi::{ApiSpec, RouteMatch};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

const CRAPI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/specs/crapi-openapi.json"
);

#[test]
fn openapi_30_yaml_loads_every_operation() {
    let spec = ApiSpec::load(&fixture("shop30.yaml")).unwrap();
    let ops = spec.operations();
    assert_eq!(spec.operation_count(), 11);
    assert!(
        ops.iter()
            .any(|(m, t, id)| m == "DELETE" && *t == "/users/{id}" && *id == Some("deleteUser"))
    );
}

#[test]
fn crapi_spec_loads_all_its_operations() {
    let spec = ApiSpec::load(Path::new(CRAPI)).unwrap();
    let text = std::fs::read_to_string(CRAPI).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut expected = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                expected += 1;
                let raw = template
                    .replace("{video_id}", "7")
                    .replace("{vehicleId}", "abc")
                    .replace("{postId}", "p1")
                    .replace("{order_id}", "3");
                match spec.match_request(method, &raw) {
                    RouteMatch::Operation(op) => {
                        assert_eq!(op.path_template, template, "{method} {raw}")
                    }
                    other => panic!("{method} {raw}: {other:?}"),
                }
            }
        }
    }
    assert_eq!(spec.operation_count(), expected);
    assert_eq!(expected, 44);
}

#[test]
fn openapi_31_with_relative_file_ref_loads_and_validates() {
    use portcullis_openapi::{RequestInput, ValidationOptions};
    let spec = ApiSpec::load(&fixture("v31/api.yaml")).unwrap();
    let RouteMatch::Operation(op) = spec.match_request("POST", "/api/widgets") else {
        panic!()
    };
    let headers = {
        let mut h = http::HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h
    };
    let check = |body: &str| {
        let req = RequestInput {
            query: None,
            headers: &headers,
            body: Some(body.as_bytes()),
            json: None,
        };
        spec.validate_request(&op, &req, &ValidationOptions::default())
    };
    assert!(
        check(r#"{"label": null, "weight": 1.5, "part": {"sub": {"serial": "a"}}}"#).is_empty()
    );
    let v = check(r#"{"label": "x", "weight": 0}"#);
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].pointer.as_str(), v[0].rule.as_str()),
        ("/body/weight", "exclusiveMinimum")
    );
    let v = check(r#"{"part": {"sub": {"serial": 5}}}"#);
    let rules: Vec<_> = v
        .iter()
        .map(|v| (v.pointer.as_str(), v.rule.as_str()))
        .collect();
    assert!(rules.contains(&("/body/label", "required")), "{rules:?}");
    assert!(
        rules.contains(&("/body/part/sub/serial", "type")),
        "{rules:?}"
    );
    // The path parameter came through a $ref to the other file.
    let RouteMatch::Operation(get) = spec.match_request("GET", "/api/widgets/not-a-uuid") else {
        panic!()
    };
    let req = RequestInput {
        query: None,
        headers: &headers,
        body: None,
        json: None,
    };
    let v = spec.validate_request(&get, &req, &ValidationOptions::default());
    assert_eq!(v[0].rule, "format");
    assert_eq!(v[0].pointer, "/path/wid");
}

#[test]
fn ref_escaping_the_spec_folder_is_refused() {
    let err = ApiSpec::load(&fixture("escape/inner/api.yaml"))
        .err()
        .unwrap();
    assert!(err.message.contains("escapes"), "{err}");
    assert_eq!(
        err.pointer,
        "/paths/~1x/post/requestBody/content/application~1json/schema/$ref"
    );
    assert!(err.file.ends_with("escape/inner/api.yaml"));
}

fn spec_with_schema_ref(reference: &str) -> String {
    format!(
        "openapi: 3.0.3\ninfo: {{title: t, version: '1'}}\npaths:\n  /x:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema:\n              $ref: '{reference}'\n      responses:\n        '200': {{description: ok}}\n"
    )
}

#[test]
fn http_and_absolute_refs_are_refused() {
    let origin = fixture("virtual.yaml");
    for reference in [
        "https://evil.example/schema.json#/X",
        "http://10.0.0.1/s.yaml",
        "/etc/passwd#/x",
    ] {
        let err = ApiSpec::from_str(&spec_with_schema_ref(reference), &origin)
            .err()
            .unwrap();
        assert!(err.message.contains("refused"), "{reference}: {err}");
        assert_eq!(err.line, Some(10), "{reference}: {err}");
    }
}

#[test]
fn missing_ref_target_names_file_line_and_pointer() {
    let origin = fixture("virtual.yaml");
    let err = ApiSpec::from_str(&spec_with_schema_ref("#/components/schemas/Nope"), &origin)
        .err()
        .unwrap();
    assert_eq!(err.line, Some(10));
    assert_eq!(
        err.pointer,
        "/paths/~1x/post/requestBody/content/application~1json/schema/$ref"
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{}:10: at /paths/~1x/post/", origin.display())),
        "{shown}"
    );
    let err = ApiSpec::from_str(&spec_with_schema_ref("schemas/none.yaml#/X"), &origin)
        .err()
        .unwrap();
    assert!(err.message.contains("not found"), "{err}");
}

#[test]
fn yaml_syntax_error_reports_parser_line() {
    let text =
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: [unclosed\n";
    let err = ApiSpec::from_str(text, Path::new("bad.yaml"))
        .err()
        .unwrap();
    assert!(err.message.starts_with("invalid YAML"), "{err}");
    assert!(err.line.is_some_and(|l| l >= 5), "{err}");
    let json = "{\n  \"openapi\": \"3.0.3\",\n  \"paths\": {,}\n}";
    let err = ApiSpec::from_str(json, Path::new("bad.json"))
        .err()
        .unwrap();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn unknown_version_and_bad_structure_are_errors() {
    let err = ApiSpec::from_str("openapi: 2.9.0\npaths: {}\n", Path::new("v.yaml"))
        .err()
        .unwrap();
    assert_eq!((err.pointer.as_str(), err.line), ("/openapi", Some(1)));
    let err = ApiSpec::from_str("swagger: '2.0'\npaths: {}\n", Path::new("v.yaml"))
        .err()
        .unwrap();
    assert!(err.message.contains("Swagger"), "{err}");
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      parameters:\n        - name: a\n          in: body\n      responses: {}\n";
    let err = ApiSpec::from_str(text, Path::new("s.yaml")).err().unwrap();
    assert_eq!(err.pointer, "/paths/~1x/get/parameters/0");
    assert_eq!(err.line, Some(6));
    let err = ApiSpec::from_str("openapi: 3.0.3\npaths:\n  x: {}\n", Path::new("s.yaml"))
        .err()
        .unwrap();
    assert_eq!(err.pointer, "/paths/x");
}

#[test]
fn patterns_needing_backtracking_are_refused_at_load() {
    // Look-around is not available on the linear-time engine: the spec must fail to load rather
    // than run a backtracking matcher on attacker input.
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {type: string, pattern: '^(?=a)a+$'}}\n      responses: {}\n";
    let err = ApiSpec::from_str(text, Path::new("p.yaml")).err().unwrap();
    assert!(err.message.contains("invalid schema"), "{err}");
    assert_eq!(err.pointer, "/paths/~1x/get/parameters/0/schema");
}

#[test]
fn ref_cycle_between_parameters_is_an_error_but_recursive_schemas_load() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      parameters:\n        - $ref: '#/components/parameters/A'\n      responses: {}\ncomponents:\n  parameters:\n    A: {$ref: '#/components/parameters/B'}\n    B: {$ref: '#/components/parameters/A'}\n";
    let err = ApiSpec::from_str(text, Path::new("c.yaml")).err().unwrap();
    assert!(err.message.contains("cycle"), "{err}");
    // Mutual recursion A -> B -> A in schemas is legal and compiles.
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/A'}\n      responses: {}\ncomponents:\n  schemas:\n    A: {type: object, properties: {b: {$ref: '#/components/schemas/B'}}}\n    B: {type: object, properties: {a: {$ref: '#/components/schemas/A'}, n: {type: integer}}}\n";
    let spec = ApiSpec::from_str(text, Path::new("c.yaml")).unwrap();
    let RouteMatch::Operation(op) = spec.match_request("POST", "/x") else {
        panic!()
    };
    let mut h = http::HeaderMap::new();
    h.insert("content-type", "application/json".parse().unwrap());
    let json = serde_json::json!({"b": {"a": {"b": {"n": "x"}}}});
    let req = portcullis_openapi::RequestInput {
        query: None,
        headers: &h,
        body: None,
        json: Some(&json),
    };
    let v = spec.validate_request(&op, &req, &Default::default());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].pointer, "/body/b/a/b/n");
}

#[test]
fn schema_ref_cycle_that_never_descends_is_an_error() {
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    post:\n      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '#/components/schemas/A'}\n      responses: {}\ncomponents:\n  schemas:\n    A: {allOf: [{$ref: '#/components/schemas/B'}]}\n    B: {$ref: '#/components/schemas/A'}\n";
    let err = ApiSpec::from_str(text, Path::new("c.yaml")).err().unwrap();
    assert!(err.message.contains("cycle"), "{err}");
    assert!(
        err.pointer == "/components/schemas/A" || err.pointer == "/components/schemas/B",
        "{err}"
    );
    assert!(err.line.is_some(), "{err}");
}

#[test]
fn yaml_is_read_with_yaml_12_scalars_and_no_duplicate_keys() {
    // `n` and `no` are strings in YAML 1.2: a schema listing them must keep them as names.
    let text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      parameters:\n        - {name: a, in: query, schema: {type: string, enum: [yes, no]}}\n      responses: {}\n";
    let spec = ApiSpec::from_str(text, Path::new("b.yaml")).unwrap();
    let RouteMatch::Operation(op) = spec.match_request("GET", "/x") else {
        panic!()
    };
    let h = http::HeaderMap::new();
    let req = |q: &'static str| portcullis_openapi::RequestInput {
        query: Some(q),
        headers: &h,
        body: None,
        json: None,
    };
    assert!(
        spec.validate_request(&op, &req("a=no"), &Default::default())
            .is_empty()
    );
    assert_eq!(
        spec.validate_request(&op, &req("a=false"), &Default::default())[0].rule,
        "enum"
    );
    let dup = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get: {responses: {}}\n  /x:\n    post: {responses: {}}\n";
    let err = ApiSpec::from_str(dup, Path::new("d.yaml")).err().unwrap();
    assert!(err.message.contains("invalid YAML"), "{err}");
}
