//! Configuration and bounded work: detectors and families can be disabled, unknown names
//! are rejected, value and byte caps stop inspection and are reported, scores add up per
//! distinct detector, and clean requests produce nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::{AttackConfig, AttackDetector, InspectError, detector_ids};
use serde_json::json;
use support::request::*;

#[test]
fn disabling_a_family_or_a_detector() {
    let det = AttackDetector::new(&AttackConfig {
        disabled: vec!["xss".into()],
        ..Default::default()
    })
    .unwrap();
    assert!(
        query_value(&det, "<script>alert(1)</script>")
            .findings
            .iter()
            .all(|f| f.id.split('.').next() != Some("xss"))
    );
    let det = AttackDetector::new(&AttackConfig {
        disabled: vec!["sqli.tautology".into()],
        ..Default::default()
    })
    .unwrap();
    assert!(!ids(&query_value(&det, "' or '1'='1")).contains(&"sqli.tautology"));
    let det = AttackDetector::new(&AttackConfig {
        disabled: vec!["ssrf".into()],
        ..Default::default()
    })
    .unwrap();
    assert!(
        json(&det, &json!({"u": "http://169.254.169.254/"}))
            .findings
            .iter()
            .all(|f| !f.id.starts_with("ssrf"))
    );
}

#[test]
fn unknown_names_and_zero_limits_are_rejected() {
    let err = AttackDetector::new(&AttackConfig {
        disabled: vec!["sqli.nope".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, InspectError::UnknownDetector(_)));
    let err = AttackDetector::new(&AttackConfig {
        max_values: 0,
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, InspectError::InvalidLimit(_)));
}

#[test]
fn every_detector_id_is_unique_and_namespaced() {
    let ids = detector_ids();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    assert!(ids.iter().all(|id| id.contains('.')));
    assert!(ids.len() >= 60, "{}", ids.len());
}

#[test]
fn value_cap_stops_inspection_and_is_reported() {
    let det = AttackDetector::new(&AttackConfig {
        max_values: 5,
        ..Default::default()
    })
    .unwrap();
    let mut items: Vec<serde_json::Value> = (0..20).map(|i| json!(format!("item {i}"))).collect();
    items.push(json!("<script>alert(1)</script>"));
    let i = json(&det, &json!({ "items": items }));
    assert!(i.capped);
    assert!(i.findings.is_empty());
    assert!(i.values_inspected <= 5);
}

#[test]
fn byte_cap_is_reported() {
    let det = AttackDetector::new(&AttackConfig {
        max_bytes: 64,
        ..Default::default()
    })
    .unwrap();
    let i = json(&det, &json!({ "a": "x".repeat(100) }));
    assert!(i.capped);
}

#[test]
fn score_counts_each_detector_once() {
    let det = detector();
    let i = query(&det, "a=%3Cscript%3E&b=%3Cscript%3E&c=%3Cscript%3E");
    let script: Vec<_> = i
        .findings
        .iter()
        .filter(|f| f.id == "xss.script_tag")
        .collect();
    assert_eq!(script.len(), 3);
    assert_eq!(
        i.score,
        i.findings
            .iter()
            .map(|f| f.id)
            .collect::<std::collections::HashSet<_>>()
            .len() as u32
            * 5
    );
}

#[test]
fn locations_never_contain_attack_text() {
    let det = detector();
    let i = query(&det, "%3Cscript%3Ealert(1)%3C/script%3E=1");
    assert!(!i.findings.is_empty());
    assert!(
        i.findings.iter().all(|f| !f.location.contains("script")),
        "{:?}",
        i.findings
    );
}

#[test]
fn clean_realistic_json_has_no_findings() {
    let det = detector();
    let i = json(
        &det,
        &json!({
            "name": "Siobhán O'Brien",
            "email": "o'brien@example.ie",
            "comment": "```js\nif (a < b) { return; }\n```",
            "links": ["https://github.com/OWASP/crAPI", "https://example.com/a?b=c&d=e"],
            "created": "2024-03-15T10:20:30Z",
            "id": "8f14e45f-ceea-467f-a0e4-a2d6b8e1f0c3",
            "tags": ["union station", "1=1 is a math fact"],
        }),
    );
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
    assert!(!i.capped);
}

#[test]
fn engines_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AttackDetector>();
    assert_send_sync::<portcullis_inspect::SecretScanner>();
}

#[test]
fn a_pre_parsed_json_body_is_inspected_instead_of_the_raw_bytes() {
    let det = detector();
    let headers = http::HeaderMap::new();
    let parsed = json!({"q": "' or '1'='1"});
    let view = portcullis_inspect::RequestView {
        path: "/api",
        path_params: &[],
        query: None,
        headers: &headers,
        content_type: Some("application/json"),
        body: Some(b"{\"q\": \"harmless\"}"),
        json: Some(&parsed),
    };
    let i = det.inspect(&view);
    assert!(ids(&i).contains(&"sqli.tautology"), "{:?}", ids(&i));
    assert_eq!(i.findings[0].location, "/body/q");
}

#[test]
fn decoded_path_parameters_are_inspected() {
    let det = detector();
    let headers = http::HeaderMap::new();
    let params = [("id", "1 union select password from users".to_owned())];
    let view = portcullis_inspect::RequestView {
        path: "/api/items/1%20union%20select%20password%20from%20users",
        path_params: &params,
        query: None,
        headers: &headers,
        content_type: None,
        body: None,
        json: None,
    };
    let i = det.inspect(&view);
    assert!(
        i.findings.iter().any(|f| f.location == "/path_param/id"),
        "{:?}",
        i.findings
    );
    assert!(
        i.findings.iter().any(|f| f.location == "/path/2"),
        "{:?}",
        i.findings
    );
}
