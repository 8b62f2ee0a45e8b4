//! Loading rules: multi-document files, metadata, the parsed AST, the specification's example
//! rules, and error messages that name the file, the line and the problem.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{load_error, rule_yaml};
use portcullis_sigma::ast::{CorrelationType, Modifier, RuleBody, Value};
use portcullis_sigma::{Level, RuleSet, attack_ids};

const SPEC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sigma/spec"
);

#[test]
fn multi_document_file_with_correlation_and_metadata() {
    let text = "\
title: Correlation - Multiple Failed Logins Followed by Successful Login
id: b180ead8-d58f-40b2-ae54-c8940995b9b6
status: experimental
author: Florian Roth (Nextron Systems)
correlation:
    type: temporal_ordered
    rules:
        - multiple_failed_login
        - successful_login
    group-by:
        - User
    timespan: 10m
level: high
---
title: Multiple failed logons
id: a8418a5a-5fc4-46b5-b23b-6c73beb19d41
name: multiple_failed_login
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - User
    timespan: 10m
    condition:
        gte: 10
---
title: Single failed login
id: 53ba33fd-3a50-4468-a5ef-c583635cfa92
name: failed_login
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID:
            - 529
            - 4625
    condition: selection
---
title: Successful login
id: 4d0a2c83-c62c-4ed4-b475-c7e23a9269b8
name: successful_login
tags:
    - attack.credential_access
    - attack.t1110.001
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID|gte: 4624
    condition: selection
";
    let mut set = RuleSet::new();
    let ids = set.add_yaml(text, Path::new("mr_login.yml")).unwrap();
    assert_eq!(
        ids,
        vec![
            "b180ead8-d58f-40b2-ae54-c8940995b9b6",
            "a8418a5a-5fc4-46b5-b23b-6c73beb19d41",
            "53ba33fd-3a50-4468-a5ef-c583635cfa92",
            "4d0a2c83-c62c-4ed4-b475-c7e23a9269b8"
        ]
    );
    assert!(set.resolve().is_empty());
    let metas: Vec<_> = set.rules().collect();
    assert_eq!(metas[0].level, Some(Level::High));
    assert_eq!(
        metas[0].author.as_deref(),
        Some("Florian Roth (Nextron Systems)")
    );
    assert_eq!(metas[2].line, 28, "documents keep their line in the file");
    assert_eq!(metas[3].logsource.service.as_deref(), Some("security"));
    let parsed: Vec<_> = set.parsed().collect();
    let RuleBody::Correlation(c) = &parsed[0].body else {
        panic!("not a correlation")
    };
    assert_eq!(c.kind, CorrelationType::TemporalOrdered);
    assert_eq!(c.timespan_ms, 600_000);
    let RuleBody::Detection(d) = &parsed[3].body else {
        panic!("not a detection")
    };
    let item = &d.searches[0].alternatives[0][0];
    assert_eq!(item.field.as_deref(), Some("EventID"));
    assert_eq!(item.modifiers, vec![Modifier::Gte]);
    assert_eq!(item.values, vec![Value::Int(4624)]);
    assert_eq!(item.line, 52);
    let (tactics, techniques) = attack_ids(&metas[3].tags);
    assert_eq!(tactics, vec!["credential-access"]);
    assert_eq!(techniques, vec!["T1110.001"]);
}

#[test]
fn spec_example_rules_load() {
    let (set, problems) = RuleSet::load_dir(&Path::new(SPEC).join("tests")).unwrap();
    // value_percentile is in the specification's examples but not implemented.
    let unsupported: Vec<String> = problems
        .iter()
        .filter(|p| p.reason.contains("unsupported"))
        .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(unsupported, vec!["value_percentile.yml"]);
    // The examples refer to rules that are not part of them: reported, with file and line.
    let dangling: Vec<&str> = problems
        .iter()
        .filter(|p| p.reason.contains("unknown rule") || p.reason.contains("names no loaded rule"))
        .map(|p| p.reason.as_str())
        .collect();
    assert!(!dangling.is_empty());
    assert!(problems.iter().all(|p| p.line.is_some()), "{problems:?}");
    let titles: Vec<&str> = set.rules().map(|m| m.title.as_str()).collect();
    assert!(titles.contains(&"A Title"));
    assert!(titles.contains(&"Filter Administrator account"));
    // rule_ecs.yml and event_count_ecs.yml reuse the ids of rule_1.yml and event_count.yml.
    let duplicates: Vec<String> = problems
        .iter()
        .filter(|p| p.reason.starts_with("duplicate rule id"))
        .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(duplicates, vec!["event_count_ecs.yml", "rule_ecs.yml"]);
    // 1 detection rule + 2 filters load; correlations to missing rules are dropped.
    assert_eq!(set.len(), 3, "{titles:?}");
}

#[test]
fn every_spec_correlation_example_parses_standalone() {
    let dir = Path::new(SPEC).join("tests/schema/correlation");
    let mut parsed = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut set = RuleSet::new();
        let result = set.add_yaml(&text, &path);
        if path.ends_with("value_percentile.yml") {
            let err = result.unwrap_err().to_string();
            assert!(
                err.contains("unsupported correlation type 'value_percentile'"),
                "{err}"
            );
        } else {
            result.unwrap_or_else(|e| panic!("{e}"));
            parsed += 1;
        }
    }
    assert_eq!(parsed, 7);
}

fn assert_error(yaml: &str, line: usize, wanted: &str) {
    let err = load_error(yaml);
    assert!(
        err.starts_with(&format!("rules/bad.yml:{line}: ")),
        "wrong place: {err}"
    );
    assert!(err.contains(wanted), "wrong message: {err}");
}

#[test]
fn errors_name_file_line_and_problem() {
    assert_error(
        &rule_yaml("r1", "sel:\n    f|startswith|bogus: x\ncondition: sel"),
        8,
        "unknown modifier 'bogus'",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f|hour: 3\ncondition: sel"),
        8,
        "time modifiers are not supported",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f: x\ncondition: sel and nope"),
        9,
        "undefined search identifier 'nope'",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f: x\ncondition: sel and and"),
        9,
        "bad condition",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f: x\ncondition: 1 of filter_*"),
        9,
        "matches no search identifier",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f|re: '[z-a]'\ncondition: sel"),
        8,
        "bad regular expression",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f: x\ncondition: sel | count() > 5"),
        9,
        "obsolete",
    );
    assert_error(
        &rule_yaml("r1", "sel:\n    f: x\n"),
        6,
        "detection has no condition",
    );
    assert_error(
        "title: no detection\nlogsource:\n    category: x\n",
        1,
        "has no detection",
    );
    assert_error(
        "title: x\ndetection:\n    sel:\n        f: [a, [b]]\n    condition: sel\n",
        4,
        "expected a value",
    );
    assert_error(
        "title: x\nlevel: severe\ndetection:\n    sel:\n        f: a\n    condition: sel\n",
        2,
        "unknown level 'severe'",
    );
    assert_error(
        "title: c\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 10x\n    condition:\n        gte: 3\n",
        5,
        "bad timespan '10x'",
    );
    assert_error(
        "title: c\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 10m\n    condition:\n        lt: 3\n",
        2,
        "unsupported event_count condition: without gt, gte or eq",
    );
    assert_error(
        "title: c\ncorrelation:\n    type: value_count\n    rules: [a]\n    timespan: 10m\n    condition:\n        gte: 3\n",
        2,
        "needs 'field'",
    );
    assert_error(
        "title: c\ncorrelation:\n    type: event_count\n    rules: [a]\n    timespan: 10m\n    condition:\n        above: 3\n",
        7,
        "unknown correlation condition operator 'above'",
    );
    assert_error(
        "title: x\ndetection: [\n",
        2,
        "invalid YAML: line 2 column 12: unclosed bracket",
    );
}

#[test]
fn errors_in_a_later_document_point_into_it() {
    let text = format!(
        "{}---\n{}",
        rule_yaml("r1", "sel:\n    f: x\ncondition: sel"),
        rule_yaml("r2", "sel:\n    f|nope: x\ncondition: sel")
    );
    assert_error(&text, 19, "unknown modifier 'nope'");
}

#[test]
fn duplicate_ids_are_rejected() {
    let text = format!(
        "{}---\n{}",
        rule_yaml("r1", "sel:\n    f: x\ncondition: sel"),
        rule_yaml("r1", "sel:\n    f: y\ncondition: sel")
    );
    assert_error(&text, 12, "duplicate rule id 'r1'");
}

#[test]
fn correlation_to_unknown_rule_is_reported_with_its_line() {
    let mut set = RuleSet::new();
    set.add_yaml(
        "title: c\nid: c1\ncorrelation:\n    type: event_count\n    rules: [ghost]\n    group-by: [ip]\n    timespan: 1m\n    condition:\n        gte: 2\n",
        Path::new("rules/corr.yml"),
    )
    .unwrap();
    let problems = set.resolve();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].to_string(),
        "rules/corr.yml:3: correlation 'c' refers to unknown rule 'ghost'"
    );
    assert!(set.is_empty(), "the broken correlation is dropped");
}

#[test]
fn load_dir_reports_bad_files_and_keeps_the_good_ones() {
    let dir = std::env::temp_dir().join(format!("sigma-load-{}", std::process::id()));
    let sub = dir.join("nested");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        dir.join("good.yml"),
        rule_yaml("g1", "sel:\n    f: x\ncondition: sel"),
    )
    .unwrap();
    std::fs::write(
        sub.join("bad.yaml"),
        rule_yaml("b1", "sel:\n    f|what: x\ncondition: sel"),
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a rule").unwrap();
    let (set, problems) = RuleSet::load_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(set.rules().map(|m| m.key()).collect::<Vec<_>>(), vec!["g1"]);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].file.ends_with("nested/bad.yaml"));
    assert_eq!(problems[0].line, Some(8));
    assert!(problems[0].reason.contains("unknown modifier 'what'"));
    assert!(RuleSet::load_dir(Path::new("/nonexistent/sigma")).is_err());
}

#[test]
fn attack_tags() {
    let tags: Vec<String> = [
        "attack.initial-access",
        "attack.t1190",
        "attack.credential_access",
        "attack.T1110.003",
        "attack.g0016",
        "cve.2021-44228",
        "attack.t1190",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (tactics, techniques) = attack_ids(&tags);
    assert_eq!(tactics, vec!["initial-access", "credential-access"]);
    assert_eq!(techniques, vec!["T1190", "T1110.003"]);
}
