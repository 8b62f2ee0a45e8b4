//! Correlation rules over event streams: each type (`event_count`, `value_count`, `temporal`,
//! `temporal_ordered`, `value_sum`, `value_avg`), grouping, sliding windows and their expiry,
//! chained correlations, aliases, `generate`, contributing event ids, and the memory bounds
//! (group cap with eviction, per-group event cap, both counted).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use portcullis_sigma::ast::CorrelationType;
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, Match, MatchKind, RuleSet};
use serde_json::{Value, json};

const FAILED_LOGIN: &str = "\
title: Failed login
id: 0f0f0f0f-0000-4000-8000-000000000001
name: failed_login
logsource:
    category: webserver
detection:
    sel:
        sc-status: 401
    condition: sel
";

const SUCCESS_LOGIN: &str = "\
title: Successful login
id: 0f0f0f0f-0000-4000-8000-000000000002
name: success_login
logsource:
    category: webserver
detection:
    sel:
        cs-uri-stem: '/login'
        sc-status: 200
    condition: sel
";

fn engine(yaml: &str, limits: CorrelationLimits) -> Engine {
    let mut set = RuleSet::new();
    set.add_yaml(yaml, Path::new("corr.yml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let problems = set.resolve();
    assert!(problems.is_empty(), "{problems:?}");
    Engine::new(set, FieldMapping::web_to_ocsf(), limits)
}

fn login(uid: &str, ip: &str, user: &str, status: i64) -> Value {
    json!({
        "metadata": {"uid": uid},
        "src_endpoint": {"ip": ip},
        "http_request": {"http_method": "POST", "url": {"path": "/login"}},
        "http_response": {"code": status, "length": 100},
        "unmapped": {"auth": {"attempted_user": user}}
    })
}

fn correlations(matches: &[Match]) -> Vec<&Match> {
    matches
        .iter()
        .filter(|m| matches!(m.kind, MatchKind::Correlation { .. }))
        .collect()
}

fn corr(kind: &str, group_by: &str, timespan: &str, condition: &str, rules: &[&str]) -> String {
    let rules: String = rules.iter().map(|r| format!("        - {r}\n")).collect();
    format!(
        "title: Correlation {kind}\nid: c0c0c0c0-0000-4000-8000-000000000000\nlevel: high\n\
         correlation:\n    type: {kind}\n    rules:\n{rules}    group-by:\n        - {group_by}\n\
         \x20   timespan: {timespan}\n{condition}---\n"
    )
}

#[test]
fn event_count_per_group_within_the_window() {
    let yaml = corr(
        "event_count",
        "c-ip",
        "1m",
        "    condition:\n        gte: 3\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    // Two failures from each of two addresses: below the threshold for both.
    for (t, ip) in [
        (0, "192.0.2.1"),
        (1_000, "192.0.2.2"),
        (2_000, "192.0.2.1"),
        (3_000, "192.0.2.2"),
    ] {
        let uid = format!("e{t}");
        assert!(correlations(&e.evaluate(&login(&uid, ip, "bob", 401), t)).is_empty());
    }
    // The third from 192.0.2.1, within a minute of the first: fires, for that group only.
    let hits = e.evaluate(&login("e4000", "192.0.2.1", "bob", 401), 4_000);
    let fired = correlations(&hits);
    assert_eq!(fired.len(), 1);
    let MatchKind::Correlation {
        correlation,
        group,
        value,
        first_ms,
        last_ms,
    } = &fired[0].kind
    else {
        unreachable!()
    };
    assert_eq!(*correlation, CorrelationType::EventCount);
    assert_eq!(group, &vec![("c-ip".to_string(), "192.0.2.1".to_string())]);
    assert_eq!(*value, 3.0);
    assert_eq!((*first_ms, *last_ms), (0, 4_000));
    assert_eq!(fired[0].event_ids, vec!["e0", "e2000", "e4000"]);
    assert_eq!(fired[0].level, portcullis_sigma::Level::High);
    // The referenced rule is not reported on its own (no `generate`).
    assert_eq!(hits.len(), 1);
    // The group starts afresh after firing.
    assert!(correlations(&e.evaluate(&login("e5", "192.0.2.1", "bob", 401), 5_000)).is_empty());
}

#[test]
fn events_outside_the_timespan_do_not_count() {
    let yaml = corr(
        "event_count",
        "c-ip",
        "10s",
        "    condition:\n        gte: 3\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    for t in [0, 6_000, 12_000, 18_000, 24_000] {
        // Never three within 10 s.
        assert!(
            correlations(&e.evaluate(&login("x", "192.0.2.1", "bob", 401), t)).is_empty(),
            "{t}"
        );
    }
    assert_eq!(
        correlations(&e.evaluate(&login("x", "192.0.2.1", "bob", 401), 26_000)).len(),
        1
    );
}

#[test]
fn value_count_counts_distinct_values() {
    let yaml = corr(
        "value_count",
        "c-ip",
        "5m",
        "    condition:\n        field: unmapped.auth.attempted_user\n        gte: 3\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    for (t, user) in [(0, "ann"), (1, "ann"), (2, "bob"), (3, "bob")] {
        assert!(correlations(&e.evaluate(&login("x", "192.0.2.1", user, 401), t)).is_empty());
    }
    let fired = e.evaluate(&login("x", "192.0.2.1", "cid", 401), 4);
    let MatchKind::Correlation { value, .. } = &correlations(&fired)[0].kind else {
        unreachable!()
    };
    assert_eq!(*value, 3.0);
}

#[test]
fn a_value_seen_twice_counts_until_its_last_event_leaves() {
    let yaml = corr(
        "value_count",
        "c-ip",
        "1m",
        "    condition:\n        field: unmapped.auth.attempted_user\n        gte: 3\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    // At 61 s the first "ann" leaves the window but the second is still in it.
    for (t, user) in [(0, "ann"), (30_000, "ann"), (61_000, "bob")] {
        assert!(correlations(&e.evaluate(&login("x", "192.0.2.1", user, 401), t)).is_empty());
    }
    let fired = e.evaluate(&login("x", "192.0.2.1", "cid", 401), 62_000);
    assert_eq!(correlations(&fired).len(), 1, "ann, bob, cid");
}

#[test]
fn group_keys_of_several_fields_cannot_run_into_each_other() {
    // Joined naively, ("a␟b", "c") and ("a", "b␟c") would be the same group.
    let yaml = corr(
        "event_count",
        "c-ip\n        - unmapped.auth.attempted_user",
        "1m",
        "    condition:\n        gte: 2\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    assert!(e.evaluate(&login("1", "a\u{1f}b", "c", 401), 0).is_empty());
    assert!(e.evaluate(&login("2", "a", "b\u{1f}c", 401), 1).is_empty());
    assert_eq!(e.stats().groups_open, 2);
    let fired = e.evaluate(&login("3", "a\u{1f}b", "c", 401), 2);
    let MatchKind::Correlation { group, .. } = &correlations(&fired)[0].kind else {
        unreachable!()
    };
    assert_eq!(
        group,
        &vec![
            ("c-ip".to_string(), "a\u{1f}b".to_string()),
            ("unmapped.auth.attempted_user".to_string(), "c".to_string())
        ]
    );
    assert_eq!(fired[0].event_ids, vec!["1", "3"]);
}

#[test]
fn values_leaving_the_window_stop_counting() {
    let yaml = corr(
        "value_count",
        "c-ip",
        "1m",
        "    condition:\n        field: unmapped.auth.attempted_user\n        gte: 3\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    for (t, user) in [(0, "ann"), (1_000, "bob"), (61_000, "cid"), (62_000, "dan")] {
        assert!(
            correlations(&e.evaluate(&login("x", "192.0.2.1", user, 401), t)).is_empty(),
            "{user} at {t}: never three distinct users within a minute"
        );
    }
    assert_eq!(
        correlations(&e.evaluate(&login("x", "192.0.2.1", "eve", 401), 63_000)).len(),
        1,
        "cid, dan, eve"
    );
}

#[test]
fn value_sum_and_value_avg() {
    let export = "\
title: Export
id: 0f0f0f0f-0000-4000-8000-000000000003
name: export
logsource:
    category: webserver
detection:
    sel:
        cs-method: GET
    condition: sel
";
    let sum = corr(
        "value_sum",
        "cs-username",
        "1h",
        "    condition:\n        field: sc-bytes\n        gt: 1000\n",
        &["export"],
    ) + export;
    let mut e = engine(&sum, CorrelationLimits::default());
    let ev = |bytes: i64| {
        json!({"http_request": {"http_method": "GET"}, "actor": {"user": {"name": "eve"}},
               "http_response": {"length": bytes}})
    };
    assert!(correlations(&e.evaluate(&ev(600), 0)).is_empty());
    let fired = e.evaluate(&ev(600), 1_000);
    let MatchKind::Correlation { value, group, .. } = &correlations(&fired)[0].kind else {
        panic!("value_sum did not fire")
    };
    assert_eq!(*value, 1200.0);
    assert_eq!(group[0].1, "eve");

    let avg = corr(
        "value_avg",
        "cs-username",
        "1h",
        "    condition:\n        field: sc-bytes\n        gt: 500\n",
        &["export"],
    ) + export;
    let mut e = engine(&avg, CorrelationLimits::default());
    assert!(correlations(&e.evaluate(&ev(100), 0)).is_empty());
    assert!(correlations(&e.evaluate(&ev(800), 1)).is_empty(), "avg 450");
    assert_eq!(correlations(&e.evaluate(&ev(700), 2)).len(), 1, "avg 533");
}

#[test]
fn temporal_needs_every_rule_in_any_order() {
    let yaml = corr(
        "temporal",
        "c-ip",
        "1m",
        "",
        &["failed_login", "success_login"],
    ) + FAILED_LOGIN
        + "---\n"
        + SUCCESS_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    assert!(correlations(&e.evaluate(&login("a", "192.0.2.1", "bob", 200), 0)).is_empty());
    // Same rule again does not complete the set; a failure from another IP neither.
    assert!(correlations(&e.evaluate(&login("b", "192.0.2.1", "bob", 200), 1)).is_empty());
    assert!(correlations(&e.evaluate(&login("c", "192.0.2.9", "bob", 401), 2)).is_empty());
    let fired = e.evaluate(&login("d", "192.0.2.1", "bob", 401), 3);
    assert_eq!(
        correlations(&fired).len(),
        1,
        "success then failure, any order"
    );
}

#[test]
fn temporal_ordered_needs_the_order() {
    let yaml = corr(
        "temporal_ordered",
        "c-ip",
        "1m",
        "",
        &["failed_login", "success_login"],
    ) + FAILED_LOGIN
        + "---\n"
        + SUCCESS_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    assert!(correlations(&e.evaluate(&login("a", "192.0.2.1", "bob", 200), 0)).is_empty());
    assert!(
        correlations(&e.evaluate(&login("b", "192.0.2.1", "bob", 401), 1)).is_empty(),
        "success before failure is not the order"
    );
    let fired = e.evaluate(&login("c", "192.0.2.1", "bob", 200), 2);
    assert_eq!(correlations(&fired).len(), 1);
    assert_eq!(correlations(&fired)[0].event_ids, vec!["a", "b", "c"]);
}

#[test]
fn chained_correlation_with_generate_and_names() {
    // The spec's example: many failures (a correlation) followed by a success.
    let yaml = format!(
        "\
title: Brute force then success
id: c1c1c1c1-0000-4000-8000-000000000001
level: critical
correlation:
    type: temporal_ordered
    rules:
        - many_failed
        - success_login
    group-by:
        - unmapped.auth.attempted_user
    timespan: 10m
---
title: Many failed logins
id: c1c1c1c1-0000-4000-8000-000000000002
name: many_failed
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - unmapped.auth.attempted_user
    timespan: 10m
    condition:
        gte: 3
---
{FAILED_LOGIN}---
{SUCCESS_LOGIN}"
    );
    let mut e = engine(&yaml, CorrelationLimits::default());
    let mut all = Vec::new();
    for t in 0..3 {
        all.extend(e.evaluate(&login(&format!("f{t}"), "192.0.2.1", "bob", 401), t * 1000));
    }
    // The intermediate correlation fired but is not reported itself.
    assert!(all.is_empty(), "{all:?}");
    let fired = e.evaluate(&login("s", "192.0.2.7", "bob", 200), 5_000);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule_id, "c1c1c1c1-0000-4000-8000-000000000001");
    assert_eq!(fired[0].level, portcullis_sigma::Level::Critical);
    // Another user's success does not complete bob's sequence.
    let mut e2 = engine(&yaml, CorrelationLimits::default());
    for t in 0..3 {
        e2.evaluate(&login("f", "192.0.2.1", "bob", 401), t);
    }
    assert!(
        e2.evaluate(&login("s", "192.0.2.1", "eve", 200), 10)
            .is_empty()
    );

    // generate: true reports the referenced rules' own matches too.
    let generating = corr(
        "event_count",
        "c-ip",
        "1m",
        "    condition:\n        gte: 2\n",
        &["failed_login"],
    )
    .replace("level: high\n", "level: high\ngenerate: true\n")
        + FAILED_LOGIN;
    let mut g = engine(&generating, CorrelationLimits::default());
    let first = g.evaluate(&login("a", "192.0.2.1", "bob", 401), 0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, MatchKind::Event);
    assert_eq!(g.evaluate(&login("b", "192.0.2.1", "bob", 401), 1).len(), 2);
}

#[test]
fn aliases_group_different_fields_together() {
    let yaml = "\
title: Scan then login from the probed address
id: a1a1a1a1-0000-4000-8000-000000000001
correlation:
    type: temporal
    rules:
        - probe
        - callback
    group-by:
        - peer
    timespan: 1m
    aliases:
        peer:
            probe: c-ip
            callback: dst_ip
---
title: Probe
id: a1a1a1a1-0000-4000-8000-000000000002
name: probe
logsource:
    category: webserver
detection:
    sel:
        cs-uri-stem: '/.env'
    condition: sel
---
title: Callback
id: a1a1a1a1-0000-4000-8000-000000000003
name: callback
logsource:
    category: proxy
detection:
    sel:
        cs-method: CONNECT
    condition: sel
";
    let mut e = engine(yaml, CorrelationLimits::default());
    let probe =
        json!({"src_endpoint": {"ip": "198.51.100.5"}, "http_request": {"url": {"path": "/.env"}}});
    let other =
        json!({"dst_endpoint": {"ip": "198.51.100.6"}, "http_request": {"http_method": "CONNECT"}});
    let same =
        json!({"dst_endpoint": {"ip": "198.51.100.5"}, "http_request": {"http_method": "CONNECT"}});
    assert!(e.evaluate(&probe, 0).is_empty());
    assert!(e.evaluate(&other, 1).is_empty());
    let fired = e.evaluate(&same, 2);
    assert_eq!(fired.len(), 1);
    let MatchKind::Correlation { group, .. } = &fired[0].kind else {
        unreachable!()
    };
    assert_eq!(
        group,
        &vec![("peer".to_string(), "198.51.100.5".to_string())]
    );
}

#[test]
fn group_cap_evicts_the_oldest_group_and_counts_it() {
    let yaml = corr(
        "event_count",
        "c-ip",
        "1h",
        "    condition:\n        gte: 2\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let limits = CorrelationLimits {
        max_groups: 3,
        max_events_per_group: 100,
        max_event_ids: 10,
    };
    let mut e = engine(&yaml, limits);
    for (t, ip) in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
        .iter()
        .enumerate()
    {
        e.evaluate(&login("x", ip, "u", 401), t as i64);
    }
    let stats = e.stats();
    assert_eq!(stats.groups_open, 3);
    assert_eq!(stats.groups_evicted, 1);
    // 10.0.0.1 was evicted: its second event starts a new group instead of firing…
    assert!(correlations(&e.evaluate(&login("x", "10.0.0.1", "u", 401), 10)).is_empty());
    assert_eq!(e.stats().groups_evicted, 2);
    // …while 10.0.0.4 (kept) fires on its second event.
    assert_eq!(
        correlations(&e.evaluate(&login("x", "10.0.0.4", "u", 401), 11)).len(),
        1
    );
}

#[test]
fn per_group_event_cap_drops_and_counts_and_caps_ids() {
    let yaml = corr(
        "event_count",
        "c-ip",
        "1h",
        "    condition:\n        gte: 1000\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let limits = CorrelationLimits {
        max_groups: 10,
        max_events_per_group: 5,
        max_event_ids: 2,
    };
    let mut e = engine(&yaml, limits);
    for t in 0..8 {
        e.evaluate(&login("x", "10.0.0.1", "u", 401), t);
    }
    assert_eq!(e.stats().events_dropped, 3);

    let yaml = corr(
        "event_count",
        "c-ip",
        "1h",
        "    condition:\n        gte: 4\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, limits);
    let mut fired = Vec::new();
    for t in 0..4 {
        fired.extend(e.evaluate(&login(&format!("id{t}"), "10.0.0.1", "u", 401), t));
    }
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].event_ids, vec!["id2", "id3"], "newest ids, capped");
}

#[test]
fn idle_groups_expire() {
    let yaml = corr(
        "event_count",
        "c-ip",
        "1m",
        "    condition:\n        gte: 5\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    for i in 0..50 {
        e.evaluate(&login("x", &format!("10.0.1.{i}"), "u", 401), i);
    }
    assert_eq!(e.stats().groups_open, 50);
    e.evaluate(&login("x", "10.0.2.1", "u", 401), 120_000);
    let stats = e.stats();
    assert_eq!(stats.groups_open, 1);
    assert_eq!(stats.groups_expired, 50);
    assert_eq!(stats.groups_evicted, 0);
}

#[test]
fn engine_is_send_and_keeps_rule_metadata() {
    fn assert_send<T: Send + Sync>() {}
    assert_send::<Engine>();
    let e = engine(FAILED_LOGIN, CorrelationLimits::default());
    let meta = e.rule("0f0f0f0f-0000-4000-8000-000000000001").unwrap();
    assert_eq!(meta.title, "Failed login");
    assert_eq!(meta.logsource.category.as_deref(), Some("webserver"));
    assert!(e.rule("nope").is_none());
}

#[test]
fn events_without_the_group_by_field_are_not_correlated() {
    let yaml = corr(
        "event_count",
        "cs-username",
        "1m",
        "    condition:\n        gte: 2\n",
        &["failed_login"],
    ) + FAILED_LOGIN;
    let mut e = engine(&yaml, CorrelationLimits::default());
    for t in 0..5 {
        assert!(e.evaluate(&login("x", "10.0.0.1", "u", 401), t).is_empty());
    }
    assert_eq!(e.stats().groups_open, 0);
}
