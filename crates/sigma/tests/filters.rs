//! Sigma filters (meta-filters): a filter rule suppresses the matches of the rules it names (by
//! id or by name), only where its own detection matches, and only for rules whose log source it
//! covers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{engine_from, ids};
use portcullis_sigma::FieldMapping;
use serde_json::json;

const RULES: &str = "\
title: Admin path
id: 11111111-1111-4111-8111-111111111111
name: admin_path
logsource:
    category: webserver
detection:
    sel:
        cs-uri-stem|startswith: '/admin'
    condition: sel
---
title: Debug path
id: 22222222-2222-4222-8222-222222222222
logsource:
    category: webserver
detection:
    sel:
        cs-uri-stem|startswith: '/debug'
    condition: sel
---
title: Proxy admin path
id: 33333333-3333-4333-8333-333333333333
logsource:
    category: proxy
detection:
    sel:
        c-uri|contains: '/admin'
    condition: sel
";

fn event(path: &str, ip: &str) -> serde_json::Value {
    json!({
        "src_endpoint": {"ip": ip},
        "http_request": {"url": {"path": path}}
    })
}

#[test]
fn filter_by_id_and_name_suppresses_only_where_it_matches() {
    let filter = "\
---
title: Office network is fine
logsource:
    category: webserver
filter:
    rules:
        - admin_path
        - 22222222-2222-4222-8222-222222222222
    office:
        c-ip|cidr: '10.1.0.0/16'
    condition: office
";
    let mut engine = engine_from(&format!("{RULES}{filter}"), FieldMapping::web_to_ocsf());
    assert_eq!(
        ids(&engine.evaluate(&event("/admin/users", "203.0.113.9"), 0)),
        vec!["11111111-1111-4111-8111-111111111111"]
    );
    assert!(
        engine
            .evaluate(&event("/admin/users", "10.1.2.3"), 0)
            .is_empty()
    );
    assert!(
        engine
            .evaluate(&event("/debug/vars", "10.1.2.3"), 0)
            .is_empty()
    );
    assert_eq!(
        ids(&engine.evaluate(&event("/debug/vars", "10.2.0.1"), 0)),
        vec!["22222222-2222-4222-8222-222222222222"]
    );
}

#[test]
fn filter_does_not_apply_to_rules_of_another_log_source() {
    let filter = "\
---
title: Office network is fine
logsource:
    category: webserver
filter:
    rules:
        - admin_path
        - 33333333-3333-4333-8333-333333333333
    office:
        c-ip|cidr: '10.1.0.0/16'
    condition: office
";
    let mut engine = engine_from(&format!("{RULES}{filter}"), FieldMapping::web_to_ocsf());
    // The webserver rule is filtered, the proxy rule is not (its log source differs).
    let mut both = event("/admin/users", "10.1.2.3");
    both["http_request"]["url"]["url_string"] = json!("/admin/users");
    assert_eq!(
        ids(&engine.evaluate(&both, 0)),
        vec!["33333333-3333-4333-8333-333333333333"]
    );
}

#[test]
fn filter_conditions_combine_selections() {
    let filter = "\
---
title: Health checks of the admin UI
logsource:
    category: webserver
filter:
    rules:
        - admin_path
    probe:
        cs-user-agent|startswith: 'kube-probe/'
    internal:
        c-ip|cidr: '10.0.0.0/8'
    condition: probe and internal
";
    let mut engine = engine_from(&format!("{RULES}{filter}"), FieldMapping::web_to_ocsf());
    let mut with_ua = event("/admin/health", "10.0.0.5");
    with_ua["http_request"]["user_agent"] = json!("kube-probe/1.30");
    assert!(engine.evaluate(&with_ua, 0).is_empty());
    with_ua["src_endpoint"]["ip"] = json!("198.51.100.1");
    assert_eq!(engine.evaluate(&with_ua, 0).len(), 1);
    let without_ua = event("/admin/health", "10.0.0.5");
    assert_eq!(engine.evaluate(&without_ua, 0).len(), 1);
}
