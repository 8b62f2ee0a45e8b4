//! Helpers shared by the integration tests: rules built from a detection fragment, engines over
//! the identity mapping, and match lists.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, Match, RuleSet};
use serde_json::Value;

/// A complete rule around a `detection:` body (given without the `detection:` line, indented
/// by 4 spaces in the result).
pub fn rule_yaml(id: &str, detection: &str) -> String {
    let body: String = detection.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "title: Test rule {id}\nid: {id}\nstatus: test\nlogsource:\n    category: webserver\ndetection:\n{body}level: high\n"
    )
}

pub fn engine_from(yaml: &str, mapping: FieldMapping) -> Engine {
    let mut set = RuleSet::new();
    set.add_yaml(yaml, Path::new("test.yml"))
        .unwrap_or_else(|e| panic!("rule does not load: {e}\n{yaml}"));
    let problems = set.resolve();
    assert!(problems.is_empty(), "reference problems: {problems:?}");
    Engine::new(set, mapping, CorrelationLimits::default())
}

/// Does a detection (fragment) match the event, with identity field mapping?
pub fn detects(detection: &str, event: &Value) -> bool {
    let mut engine = engine_from(&rule_yaml("r1", detection), FieldMapping::identity());
    let hits = engine.evaluate(event, 0);
    hits.iter().any(|m| m.rule_id == "r1")
}

pub fn ids(matches: &[Match]) -> Vec<String> {
    matches.iter().map(|m| m.rule_id.clone()).collect()
}

/// The error `add_yaml` gives for a text.
pub fn load_error(yaml: &str) -> String {
    let mut set = RuleSet::new();
    match set.add_yaml(yaml, Path::new("rules/bad.yml")) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string(),
    }
}
