//! Benchmarks of the per-request work: operation matching on a 500-path spec, JSON body
//! validation (1 KB and 100 KB, pre-parsed) and response filtering of a 100 KB body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use portcullis_openapi::{ApiSpec, RequestInput, RouteMatch, ValidationOptions};
use serde_json::{Value, json};

/// A JSON spec with 500 paths: 100 resources, each with a collection, an item, two sub-resources
/// and a literal that competes with the item template.
fn generated_spec() -> String {
    let mut paths = String::new();
    for i in 0..100 {
        for (suffix, param) in [
            ("", false),
            ("/{id}", true),
            ("/{id}/history", true),
            ("/{id}/owners/{owner}", true),
            ("/search", false),
        ] {
            if !paths.is_empty() {
                paths.push(',');
            }
            let mut params = String::from("[");
            if param {
                params.push_str(
                    r#"{"name":"id","in":"path","required":true,"schema":{"type":"integer"}}"#,
                );
            }
            if suffix.contains("{owner}") {
                params.push_str(
                    r#",{"name":"owner","in":"path","required":true,"schema":{"type":"string"}}"#,
                );
            }
            params.push(']');
            let _ = write!(
                paths,
                r#""/api/res{i}{suffix}":{{"get":{{"operationId":"op{i}{}","parameters":{params},"responses":{{"200":{{"description":"ok"}}}}}}}}"#,
                suffix.replace(['/', '{', '}'], "_")
            );
        }
    }
    format!(
        r#"{{"openapi":"3.0.3","info":{{"title":"gen","version":"1"}},"servers":[{{"url":"https://h.example/v1"}}],"paths":{{{paths}}}}}"#
    )
}

const ORDER_SPEC: &str = r#"
openapi: 3.0.3
info: {title: bench, version: "1"}
paths:
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Order'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Order'}
components:
  schemas:
    Line:
      type: object
      required: [sku, qty]
      properties:
        sku: {type: string, pattern: '^[A-Z]{3}-[0-9]{3}$'}
        qty: {type: integer, minimum: 1, maximum: 99}
        note: {type: string, maxLength: 40}
    Order:
      allOf:
        - type: object
          properties:
            id: {type: integer}
        - type: object
          required: [items]
          properties:
            customer: {type: string, format: email}
            items: {type: array, items: {$ref: '#/components/schemas/Line'}}
"#;

/// An order of about `bytes` bytes of JSON.
fn order(bytes: usize, with_extras: bool) -> Value {
    let line = if with_extras {
        json!({"sku": "ABC-123", "qty": 5, "note": "gift wrap please", "internal_cost": 12.5})
    } else {
        json!({"sku": "ABC-123", "qty": 5, "note": "gift wrap please"})
    };
    let per = line.to_string().len() + 1;
    let n = (bytes / per).max(1);
    json!({"id": 7, "customer": "a@example.com", "items": vec![line; n]})
}

fn benches(c: &mut Criterion) {
    let spec = ApiSpec::from_str(&generated_spec(), Path::new("gen.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.operation_count(), 500);
    let probes = [
        "/v1/api/res57/123/owners/bob",
        "/v1/api/res99/search",
        "/v1/api/res3",
        "/v1/api/res42/9/history",
    ];
    for p in probes {
        assert!(
            matches!(spec.match_request("GET", p), RouteMatch::Operation(_)),
            "{p}"
        );
    }
    c.bench_function("match_500_paths", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % probes.len();
            black_box(spec.match_request("GET", black_box(probes[i])));
        })
    });

    let orders =
        ApiSpec::from_str(ORDER_SPEC, Path::new("bench.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let RouteMatch::Operation(op) = orders.match_request("POST", "/orders") else {
        panic!()
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let strict = ValidationOptions {
        reject_unknown_properties: true,
        reject_unknown_query_params: true,
    };
    for (name, size) in [
        ("validate_json_1k", 1024),
        ("validate_json_100k", 100 * 1024),
    ] {
        let body = order(size, false);
        let req = RequestInput {
            query: None,
            headers: &headers,
            body: None,
            json: Some(&body),
        };
        assert!(orders.validate_request(&op, &req, &strict).is_empty());
        c.bench_function(name, |b| {
            b.iter(|| black_box(orders.validate_request(&op, black_box(&req), &strict)))
        });
        // The same without the undeclared-property walk: the JSON Schema part alone.
        let lenient = ValidationOptions::default();
        c.bench_function(&format!("{name}_schema_only"), |b| {
            b.iter(|| black_box(orders.validate_request(&op, black_box(&req), &lenient)))
        });
    }

    let big = order(100 * 1024, true);
    let mut probe = big.clone();
    let report = orders.filter_response(&op, 200, Some("application/json"), &mut probe);
    assert!(!report.removed.is_empty());
    c.bench_function("filter_response_100k", |b| {
        b.iter_batched_ref(
            || big.clone(),
            |body| black_box(orders.filter_response(&op, 200, Some("application/json"), body)),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(openapi, benches);
criterion_main!(openapi);
