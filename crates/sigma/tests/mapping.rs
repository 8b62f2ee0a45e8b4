//! Field mapping and event access: the default Sigma web → OCSF mapping on a Portcullis event,
//! fields without a mapping used as event paths, mappings from configuration, the derived
//! extension field, header selection, and keyword search limited to some fields.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{engine_from, rule_yaml};
use portcullis_sigma::mapping::{Derive, FieldTarget};
use portcullis_sigma::{Event, FieldMapping, FieldValue, KeywordFields};
use serde_json::json;

fn portcullis_event() -> serde_json::Value {
    json!({"time":1767225600123_i64,"metadata":{"uid":"REQ-ID"},
        "src_endpoint":{"ip":"203.0.113.42","port":51522},
        "http_request":{"http_method":"GET","version":"HTTP/1.1","user_agent":"curl/8.5.0","referrer":"https://x",
            "length":0,"url":{"scheme":"https","hostname":"api.example.com","path":"/v1/orders.json",
            "query_string":"a=1&b=2","url_string":"/v1/orders.json?a=1&b=2"},
            "http_headers":[{"name":"accept","value":"*/*"},{"name":"Cookie","value":"sid=42"}]},
        "http_response":{"code":403,"length":61},
        "actor":{"user":{"uid":"alice","name":"alice"}},
        "unmapped":{"route":"orders","reason":"credential_in_url","auth":{"method":"jwt"},
            "findings":[{"kind":"attack","id":"sqli.union","severity":"High"}]}})
}

fn read(mapping: &FieldMapping, event: &serde_json::Value, sigma: &str) -> Option<String> {
    let target = mapping.resolve(sigma);
    let value = event.field(&target.path).and_then(|v| target.derive(v))?;
    match value {
        FieldValue::List(items) => Some(
            items
                .iter()
                .map(|i| i.as_text().unwrap().into_owned())
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => other.as_text().map(|t| t.into_owned()),
    }
}

#[test]
fn web_to_ocsf_reads_every_sigma_web_field() {
    let m = FieldMapping::web_to_ocsf();
    let e = portcullis_event();
    let expected = [
        ("cs-method", "GET"),
        ("cs-uri-stem", "/v1/orders.json"),
        ("c-uri-stem", "/v1/orders.json"),
        ("cs-uri-query", "a=1&b=2"),
        ("c-uri-query", "a=1&b=2"),
        ("cs-uri", "/v1/orders.json?a=1&b=2"),
        ("c-uri", "/v1/orders.json?a=1&b=2"),
        ("sc-status", "403"),
        ("c-ip", "203.0.113.42"),
        ("src_ip", "203.0.113.42"),
        ("cs-user-agent", "curl/8.5.0"),
        ("c-useragent", "curl/8.5.0"),
        ("cs-referer", "https://x"),
        ("cs-referrer", "https://x"),
        ("cs-host", "api.example.com"),
        ("r-dns", "api.example.com"),
        ("cs-bytes", "0"),
        ("sc-bytes", "61"),
        ("cs-version", "HTTP/1.1"),
        ("cs-cookie", "sid=42"),
        ("c-uri-extension", "json"),
        ("cs-username", "alice"),
        // Unmapped names are event paths.
        ("unmapped.reason", "credential_in_url"),
        ("unmapped.findings.id", "sqli.union"),
    ];
    for (sigma, want) in expected {
        assert_eq!(read(&m, &e, sigma).as_deref(), Some(want), "{sigma}");
    }
    assert_eq!(read(&m, &e, "dst_ip"), None);
}

#[test]
fn extension_is_absent_without_one() {
    let t = FieldTarget {
        path: "p".into(),
        derive: Derive::Extension,
    };
    let ext = |s: &str| {
        t.derive(FieldValue::Str(s.to_string().into()))
            .and_then(|v| v.as_text().map(|c| c.into_owned()))
    };
    assert_eq!(ext("/a/b.tar.gz").as_deref(), Some("gz"));
    assert_eq!(ext("/a.d/b").as_deref(), None);
    assert_eq!(ext("/a/b.exe?x=1.2").as_deref(), Some("exe"));
    assert_eq!(ext("/a/b."), None);
}

#[test]
fn mapping_from_yaml_and_pairs() {
    let m = FieldMapping::identity()
        .from_yaml("User: actor.user.name\nImageExt: ext(file.path)\nevent_id_field: request.id\n")
        .unwrap();
    assert_eq!(m.resolve("User"), FieldTarget::path("actor.user.name"));
    assert_eq!(m.resolve("ImageExt").derive, Derive::Extension);
    assert_eq!(m.resolve("Other"), FieldTarget::path("Other"));
    assert_eq!(m.event_id_field, "request.id");
    assert!(FieldMapping::identity().from_yaml("- not a map").is_err());

    let m = FieldMapping::web_to_ocsf().with_pairs([("c-ip", "unmapped.client_ip")]);
    assert_eq!(m.resolve("c-ip").path, "unmapped.client_ip");

    // A rule written with Sigma names matches through the mapping.
    let yaml = rule_yaml("r1", "sel:\n    User: alice\ncondition: sel");
    let mapped = FieldMapping::identity()
        .from_yaml("User: actor.user.name")
        .unwrap();
    let mut engine = engine_from(&yaml, mapped);
    assert_eq!(engine.evaluate(&portcullis_event(), 0).len(), 1);
    let mut unmapped = engine_from(&yaml, FieldMapping::identity());
    assert!(unmapped.evaluate(&portcullis_event(), 0).is_empty());
}

#[test]
fn keyword_search_can_be_limited_to_some_fields() {
    let yaml = rule_yaml("r1", "kw:\n    - 'credential_in_url'\ncondition: kw");
    let mut engine = engine_from(&yaml, FieldMapping::web_to_ocsf());
    let event = portcullis_event();
    assert_eq!(
        engine.evaluate(&event, 0).len(),
        1,
        "all strings by default"
    );
    let fields = vec![
        "http_request.url.url_string".to_string(),
        "http_request.user_agent".to_string(),
    ];
    let limited = KeywordFields {
        event: &event,
        fields: &fields,
    };
    assert!(engine.evaluate(&limited, 0).is_empty());
    let yaml = rule_yaml("r2", "kw:\n    - 'CURL/'\ncondition: kw");
    let mut engine = engine_from(&yaml, FieldMapping::web_to_ocsf());
    assert_eq!(engine.evaluate(&limited, 0).len(), 1);
}
