//! Helpers building a [`RequestView`] around one value in one place of a request.

use portcullis_inspect::{AttackConfig, AttackDetector, Inspection, RequestView};

pub fn detector() -> AttackDetector {
    AttackDetector::new(&AttackConfig::default()).expect("default detector builds")
}

pub fn inspect(
    det: &AttackDetector,
    path: &str,
    query: Option<&str>,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> Inspection {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    det.inspect(&RequestView {
        path,
        path_params: &[],
        query,
        headers: &map,
        content_type,
        body,
        json: None,
    })
}

/// Inspects a raw (already encoded) query string.
pub fn query(det: &AttackDetector, raw_query: &str) -> Inspection {
    inspect(det, "/api/items", Some(raw_query), &[], None, None)
}

/// Inspects `q=<value>` with the value form-encoded.
pub fn query_value(det: &AttackDetector, value: &str) -> Inspection {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    query(det, &format!("q={encoded}"))
}

pub fn json(det: &AttackDetector, value: &serde_json::Value) -> Inspection {
    let body = serde_json::to_vec(value).expect("serialises");
    inspect(
        det,
        "/api/items",
        None,
        &[],
        Some("application/json"),
        Some(&body),
    )
}

pub fn header(det: &AttackDetector, name: &str, value: &str) -> Inspection {
    inspect(det, "/api/items", None, &[(name, value)], None, None)
}

pub fn path(det: &AttackDetector, path: &str) -> Inspection {
    inspect(det, path, None, &[], None, None)
}

pub fn ids(inspection: &Inspection) -> Vec<&'static str> {
    inspection.findings.iter().map(|f| f.id).collect()
}

/// Asserts every value reaches the blocking threshold when sent as `q`.
#[track_caller]
pub fn assert_blocked(det: &AttackDetector, values: &[&str]) {
    for v in values {
        let i = query_value(det, v);
        assert!(i.score >= 5, "not blocked: {v:?} -> {:?}", ids(&i));
    }
}

/// Asserts no value produces any finding when sent as `q`.
#[track_caller]
pub fn assert_clean(det: &AttackDetector, values: &[&str]) {
    for v in values {
        let i = query_value(det, v);
        assert!(
            i.findings.is_empty(),
            "false positive: {v:?} -> {:?}",
            ids(&i)
        );
    }
}
