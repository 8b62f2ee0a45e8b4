//! The engine's needle gates: rules whose every match needs a literal in some field (path
//! prefixes and suffixes, user-agent substrings, exact values) are skipped when one shared scan
//! per field finds none of their literals. These tests pin the cases where a gate that skipped
//! too eagerly would lose matches: overlapping needles of different rules, case, list values,
//! alternatives over several fields, and negated items.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{engine_from, ids};
use portcullis_sigma::FieldMapping;
use serde_json::{Value, json};

fn request(path: &str, ua: &str) -> Value {
    json!({"http_request": {"url": {"path": path}, "user_agent": ua}})
}

fn rule(id: &str, detection: &str) -> String {
    common::rule_yaml(id, detection) + "---\n"
}

#[test]
fn prefixes_suffixes_and_substrings_of_one_rule_match_in_any_case() {
    let yaml = rule(
        "probe",
        "secret:\n    cs-uri-stem|contains: '/.git/'\nfiles:\n    cs-uri-stem|endswith: ['/.env', '/id_rsa']\nprefixes:\n    cs-uri-stem|startswith: ['/admin', '/actuator']\ncondition: secret or files or prefixes",
    );
    let mut e = engine_from(&yaml, FieldMapping::web_to_ocsf());
    for (path, hit) in [
        ("/repo/.GIT/config", true),
        ("/app/.Env", true),
        ("/home/x/id_rsa", true),
        ("/ADMIN/users", true),
        ("/actuator", true),
        // The needle occurs but not where the rule wants it: the gate passes, the rule says no.
        ("/v1/admin", false),
        ("/.env/x", false),
        ("/v1/orders/7", false),
    ] {
        let matched = !e.evaluate(&request(path, "curl/8"), 0).is_empty();
        assert_eq!(matched, hit, "{path}");
    }
}

#[test]
fn rules_sharing_a_field_each_see_their_own_overlapping_needles() {
    let yaml = rule(
        "short",
        "sel:\n    cs-user-agent|contains: 'map'\ncondition: sel",
    ) + &rule(
        "long",
        "sel:\n    cs-user-agent|contains: 'Nmap Scripting Engine'\ncondition: sel",
    ) + &rule(
        "other",
        "sel:\n    cs-user-agent|contains: 'sqlmap/'\ncondition: sel",
    );
    let mut e = engine_from(&yaml, FieldMapping::web_to_ocsf());
    let mut hits = ids(&e.evaluate(&request("/", "Mozilla/5.0 (nmap scripting engine)"), 0));
    hits.sort();
    assert_eq!(hits, vec!["long", "short"]);
    let mut hits = ids(&e.evaluate(&request("/", "sqlmap/1.8"), 0));
    hits.sort();
    assert_eq!(hits, vec!["other", "short"]);
    assert!(e.evaluate(&request("/", "okhttp/4.12"), 0).is_empty());
}

#[test]
fn list_values_are_left_to_the_rule() {
    // A list is not scanned: the gate cannot decide and must let the rule test each element.
    let yaml = rule(
        "sqli",
        "sel:\n    unmapped.findings.id|startswith: 'sqli.'\ncondition: sel",
    );
    let mut e = engine_from(&yaml, FieldMapping::web_to_ocsf());
    let event = json!({"unmapped": {"findings": [{"id": "xss.tag"}, {"id": "sqli.union"}]}});
    assert_eq!(ids(&e.evaluate(&event, 0)), vec!["sqli"]);
    let event = json!({"unmapped": {"findings": [{"id": "xss.tag"}]}});
    assert!(e.evaluate(&event, 0).is_empty());
}

#[test]
fn alternatives_over_several_fields_pass_on_any_of_them() {
    let yaml = rule(
        "either",
        "by_reason:\n    unmapped.reason: credential_in_url\nby_finding:\n    unmapped.findings.kind: credential_in_url\ncondition: 1 of by_*",
    );
    let mut e = engine_from(&yaml, FieldMapping::web_to_ocsf());
    let reason = json!({"unmapped": {"reason": "Credential_In_URL"}});
    let finding = json!({"unmapped": {"findings": [{"kind": "credential_in_url"}]}});
    let neither = json!({"unmapped": {"reason": "rate_limited"}});
    assert_eq!(ids(&e.evaluate(&reason, 0)), vec!["either"]);
    assert_eq!(ids(&e.evaluate(&finding, 0)), vec!["either"]);
    assert!(e.evaluate(&neither, 0).is_empty());
}

#[test]
fn negated_literals_are_not_needles() {
    // Matches precisely when the literal is absent: gating on it would invert the rule.
    let yaml = rule(
        "not_api",
        "sel:\n    cs-uri-stem|exists: true\napi:\n    cs-uri-stem|startswith: '/api/'\ncondition: sel and not api",
    ) + &rule(
        "neq",
        "sel:\n    cs-uri-stem|neq: '/health'\ncondition: sel",
    );
    let mut e = engine_from(&yaml, FieldMapping::web_to_ocsf());
    let mut hits = ids(&e.evaluate(&request("/login", "x"), 0));
    hits.sort();
    assert_eq!(hits, vec!["neq", "not_api"]);
    assert!(
        e.evaluate(&request("/health", "x"), 0)
            .iter()
            .all(|m| m.rule_id != "neq")
    );
    assert!(
        e.evaluate(&request("/api/x", "x"), 0)
            .iter()
            .all(|m| m.rule_id != "not_api")
    );
}
