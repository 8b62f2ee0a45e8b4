//! Live detection reads the redacted event the sinks write — the emitter redacts it once and
//! shares that copy with the engine — so a rule never sees a credential the event file would
//! not show, and a reload that changes what is secret applies to the rules at once, even when
//! the engine itself is kept (same detection settings: its correlation windows stay open).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;

const RULE_ID: &str = "5b8f2f0e-3a64-4c1e-9a53-0c9b1d7e2a41";

/// Fires only on a query whose `session_id` value was replaced by the redactor.
const RULE: &str = r#"title: Redacted Session Parameter Seen By Detection
id: 5b8f2f0e-3a64-4c1e-9a53-0c9b1d7e2a41
status: test
logsource:
    product: portcullis
    category: webserver
detection:
    selection:
        cs-uri-query|contains: 'session_id=[REDACTED]'
    condition: selection
level: high
"#;

/// `{credential_params}` decides whether `session_id` is a secret.
const CONFIG: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
    request:
      credential_params: [{credential_params}]
events:
  file: "{dir}/events.jsonl"
detection:
  rules: ["{rules}"]
"#;

fn config(rules: &std::path::Path, credential_params: &str) -> String {
    CONFIG
        .replace("{rules}", rules.to_str().unwrap())
        .replace("{credential_params}", credential_params)
}

fn findings(gw: &TestGateway) -> Vec<Value> {
    read_all_records(&gw.events_path)
        .into_iter()
        .filter(|r| r["class_uid"] == 2004 && r.to_string().contains(RULE_ID))
        .collect()
}

/// Waits until the events written so far include the request `marker` (the detection thread
/// has had its poll interval and more to see it too), then returns the findings.
async fn findings_after(gw: &TestGateway, marker: &str) -> Vec<Value> {
    for _ in 0..100 {
        let records = read_all_records(&gw.events_path);
        if records.iter().any(|r| r.to_string().contains(marker)) {
            // The request's event is in the file; give detection well over its poll interval.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return findings(gw);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the event of {marker} was never written");
}

#[tokio::test]
async fn rules_see_the_redacted_event_also_after_a_reload_that_keeps_the_engine() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("redacted_session.yml"), RULE).unwrap();
    let upstream = Upstream::start().await;
    let gw = TestGateway::start(&config(rules.path(), "other_param"), &upstream).await;
    let engine_before = gw.gateway().detection.load_full().unwrap();

    // session_id is not a secret yet: the rule reads the value as sent and does not fire.
    assert_eq!(get(&gw.url("/a?session_id=s3cr3t-1")).await.status, 200);
    assert!(findings_after(&gw, "s3cr3t-1").await.is_empty());

    // Now it is: the reload changes the redactor but not the detection settings.
    gw.write_config(&config(rules.path(), "session_id"), &upstream);
    gw.gateway().reload().await.unwrap();
    let engine_after = gw.gateway().detection.load_full().unwrap();
    assert!(
        Arc::ptr_eq(&engine_before, &engine_after),
        "the reload should have kept the running engine"
    );

    // A credential in the URL is now refused (400); its event, redacted, still goes to the sinks
    // and to detection.
    assert_eq!(
        get(&gw.url("/second-request?session_id=s3cr3t-2"))
            .await
            .status,
        400
    );
    let found = findings_after(&gw, "/second-request").await;
    assert_eq!(found.len(), 1, "{found:?}");
    // Neither the finding nor any other record carries the new secret.
    let all = read_all_records(&gw.events_path);
    assert!(all.iter().all(|r| !r.to_string().contains("s3cr3t-2")));
}
