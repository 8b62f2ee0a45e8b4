//! SSRF: URLs and host references to loopback, private, link-local and metadata
//! destinations in any spelling; public URLs are clean.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::Family;
use support::request::*;

#[test]
fn internal_destinations_are_blocked() {
    let det = detector();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://localhost:8080/admin",
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[fd00::1]/",
        "http://10.0.0.5/internal",
        "http://192.168.1.1/",
        "gopher://127.0.0.1:6379/_INFO",
        "http://user@localhost/",
    ] {
        let i = json(&det, &serde_json::json!({ "callback": url }));
        let f = i.findings.iter().find(|f| f.family == Family::Ssrf);
        assert!(f.is_some(), "{url}: {:?}", ids(&i));
        assert_eq!(f.unwrap().location, "/body/callback");
        assert!(i.score >= 5);
    }
}

#[test]
fn public_urls_and_numbers_are_clean() {
    let det = detector();
    for v in [
        "https://www.example.com/",
        "http://8.8.8.8/",
        "2130706433",
        "00:30",
        "10.0.0.5",
        "https://localhost.example.com/",
    ] {
        let i = json(&det, &serde_json::json!({ "v": v }));
        assert!(
            !i.findings.iter().any(|f| f.family == Family::Ssrf),
            "{v}: {:?}",
            ids(&i)
        );
    }
}

#[test]
fn referer_to_an_internal_host_is_not_ssrf() {
    let det = detector();
    let i = header(&det, "referer", "http://localhost:3000/dashboard");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}
