//! The written lines have the documented OCSF shape (docs/events.md).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use portcullis_events::{
    Action, Emitter, EmitterConfig, EventsError, Finding, Redactor, Severity, SinkConfig, TlsInfo,
    to_ocsf_json, write_ocsf_json,
};
use serde_json::{Value, json};
use support::{TestResult, event, file_emitter, read_json_lines, strings};

const SHUTDOWN: Duration = Duration::from_secs(30);

/// Emits `events` through a file sink and returns the parsed lines.
fn write_and_read(events: Vec<portcullis_events::HttpActivity>) -> TestResult<Vec<Value>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 1024, Redactor::new(&[], &strings(&["token"])))?;
    for ev in events {
        emitter.emit(ev);
    }
    emitter.shutdown(SHUTDOWN);
    read_json_lines(&path)
}

#[test]
fn every_line_is_an_ocsf_http_activity_with_the_documented_fields() -> TestResult {
    let mut denied = event(1);
    denied.client_ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    denied.tls = Some(TlsInfo {
        version: "TLSv1.3".to_owned(),
        cipher: "TLS_AES_128_GCM_SHA256".to_owned(),
    });
    denied.http_version = "HTTP/2".to_owned();
    denied.method = "POST".to_owned();
    denied.scheme = "https".to_owned();
    denied.query = Some("token=abc&x=1".to_owned());
    denied.status = 413;
    denied.bytes_in = 10_485_760;
    denied.bytes_out = 64;
    denied.duration_us = 2_750;
    denied.action = Action::Denied;
    denied.reason = Some("body_too_large".to_owned());
    denied.findings = vec![Finding {
        kind: "size_limit".to_owned(),
        id: "body.max_bytes".to_owned(),
        location: Some("body".to_owned()),
        detail: Some("10485760 > 1048576".to_owned()),
        severity: Severity::Low,
    }];

    let lines = write_and_read(vec![event(0), denied])?;
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert_eq!(line["class_uid"], 4002);
        assert_eq!(line["class_name"], "HTTP Activity");
        assert_eq!(line["category_uid"], 4);
        assert_eq!(line["category_name"], "Network Activity");
        assert_eq!(line["metadata"]["version"], "1.3.0");
        assert_eq!(line["metadata"]["product"]["name"], "Portcullis");
        assert_eq!(line["metadata"]["product"]["vendor_name"], "Portcullis");
        assert_eq!(
            line["metadata"]["product"]["version"],
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(line["metadata"]["uid"], line["http_request"]["uid"]);
        assert_eq!(line["metadata"]["uid"], line["unmapped"]["request_id"]);
    }

    let allowed = &lines[0];
    assert_eq!(allowed["activity_id"], 3);
    assert_eq!(allowed["activity_name"], "Get");
    assert_eq!(allowed["type_uid"], 400203);
    assert_eq!(allowed["type_name"], "HTTP Activity: Get");
    assert_eq!(allowed["time"], 1_700_000_000_000_u64);
    assert_eq!(
        (allowed["severity_id"].clone(), allowed["severity"].clone()),
        (json!(1), json!("Informational"))
    );
    assert_eq!(
        (allowed["status_id"].clone(), allowed["status"].clone()),
        (json!(1), json!("Success"))
    );
    assert_eq!(
        (allowed["action_id"].clone(), allowed["action"].clone()),
        (json!(1), json!("Allowed"))
    );
    assert_eq!(allowed["duration"], 1);
    assert_eq!(
        allowed["src_endpoint"],
        json!({"ip": "198.51.100.23", "port": 40000})
    );
    assert_eq!(
        allowed["http_request"],
        json!({
            "http_method": "GET",
            "version": "HTTP/1.1",
            "user_agent": "test-client/1.0",
            "length": 0,
            "uid": "req-000000",
            "url": {"scheme": "http", "hostname": "api.example.com", "path": "/v1/items", "query_string": "page=2", "url_string": "/v1/items?page=2"},
            "http_headers": [
                {"name": "accept", "value": "application/json"},
                {"name": "user-agent", "value": "test-client/1.0"}
            ]
        })
    );
    assert_eq!(
        allowed["http_response"],
        json!({"code": 200, "length": 512})
    );
    assert!(allowed.get("tls").is_none());
    assert_eq!(
        allowed["unmapped"],
        json!({
            "route": "items",
            "upstream": "10.0.0.5:8080",
            "request_id": "req-000000",
            "duration_us": 1500,
            "findings": []
        })
    );

    let denied = &lines[1];
    assert_eq!(
        (denied["activity_id"].clone(), denied["type_uid"].clone()),
        (json!(6), json!(400206))
    );
    assert_eq!(
        (denied["severity_id"].clone(), denied["severity"].clone()),
        (json!(3), json!("Medium"))
    );
    assert_eq!(
        (denied["status_id"].clone(), denied["status"].clone()),
        (json!(2), json!("Failure"))
    );
    assert_eq!(
        (denied["action_id"].clone(), denied["action"].clone()),
        (json!(2), json!("Denied"))
    );
    assert_eq!(denied["duration"], 2);
    assert_eq!(denied["src_endpoint"]["ip"], "::1");
    assert_eq!(
        denied["tls"],
        json!({"version": "TLSv1.3", "cipher": "TLS_AES_128_GCM_SHA256"})
    );
    assert_eq!(denied["http_request"]["version"], "HTTP/2");
    assert_eq!(denied["http_request"]["length"], 10_485_760);
    assert_eq!(denied["http_request"]["url"]["scheme"], "https");
    assert_eq!(
        denied["http_request"]["url"]["query_string"],
        "token=[REDACTED]&x=1"
    );
    assert_eq!(denied["http_response"], json!({"code": 413, "length": 64}));
    assert_eq!(denied["unmapped"]["reason"], "body_too_large");
    assert_eq!(denied["unmapped"]["duration_us"], 2750);
    assert_eq!(
        denied["unmapped"]["findings"],
        json!([{
            "kind": "size_limit",
            "id": "body.max_bytes",
            "location": "body",
            "detail": "10485760 > 1048576",
            "severity": "Low",
            "severity_id": 2
        }])
    );
    Ok(())
}

#[test]
fn activity_ids_follow_the_http_method() -> TestResult {
    let expected = [
        ("CONNECT", 1, "Connect"),
        ("DELETE", 2, "Delete"),
        ("GET", 3, "Get"),
        ("HEAD", 4, "Head"),
        ("OPTIONS", 5, "Options"),
        ("POST", 6, "Post"),
        ("PUT", 7, "Put"),
        ("TRACE", 8, "Trace"),
        ("PATCH", 99, "PATCH"),
        ("PROPFIND", 99, "PROPFIND"),
        ("get", 99, "get"),
    ];
    let events = expected
        .iter()
        .enumerate()
        .map(|(n, (method, _, _))| {
            let mut ev = event(n);
            (*method).clone_into(&mut ev.method);
            ev
        })
        .collect();
    let lines = write_and_read(events)?;
    assert_eq!(lines.len(), expected.len());
    for (line, (method, id, name)) in lines.iter().zip(expected) {
        assert_eq!(line["http_request"]["http_method"], method);
        assert_eq!(line["activity_id"], id, "{method}");
        assert_eq!(line["activity_name"], name, "{method}");
        assert_eq!(line["type_uid"], 400_200 + id, "{method}");
        let type_name = if id == 99 {
            "HTTP Activity: Other".to_owned()
        } else {
            format!("HTTP Activity: {name}")
        };
        assert_eq!(line["type_name"], type_name.as_str(), "{method}");
    }
    Ok(())
}

#[test]
fn severity_and_status_follow_action_status_and_findings() -> TestResult {
    let finding = |severity| Finding {
        kind: "k".to_owned(),
        id: "i".to_owned(),
        location: None,
        detail: None,
        severity,
    };
    let mut upstream_error = event(0);
    upstream_error.status = 502;
    let mut allowed_with_high = event(1);
    allowed_with_high.findings = vec![finding(Severity::Low), finding(Severity::High)];
    let mut denied_with_low = event(2);
    denied_with_low.action = Action::Denied;
    denied_with_low.status = 403;
    denied_with_low.findings = vec![finding(Severity::Low)];
    let mut denied_critical = event(3);
    denied_critical.action = Action::Denied;
    denied_critical.status = 401;
    denied_critical.findings = vec![finding(Severity::Critical)];

    let lines = write_and_read(vec![
        upstream_error,
        allowed_with_high,
        denied_with_low,
        denied_critical,
    ])?;
    let summary: Vec<(Value, Value, Value)> = lines
        .iter()
        .map(|l| {
            (
                l["severity"].clone(),
                l["status"].clone(),
                l["action"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("Informational"), json!("Failure"), json!("Allowed")),
            (json!("High"), json!("Success"), json!("Allowed")),
            (json!("Medium"), json!("Failure"), json!("Denied")),
            (json!("Critical"), json!("Failure"), json!("Denied")),
        ]
    );
    let finding_line = &lines[1]["unmapped"]["findings"][0];
    assert_eq!(
        *finding_line,
        json!({"kind": "k", "id": "i", "severity": "Low", "severity_id": 2})
    );
    Ok(())
}

#[test]
fn to_ocsf_json_matches_the_bytes_the_sink_writes() -> TestResult {
    let mut ev = event(7);
    ev.tls = Some(TlsInfo {
        version: "TLSv1.2".to_owned(),
        cipher: "ECDHE-RSA-AES128-GCM-SHA256".to_owned(),
    });
    ev.headers.push((
        "x-quote".to_owned(),
        "a \"quoted\"\n\u{1}value\\".to_owned(),
    ));
    let mut bytes = Vec::new();
    write_ocsf_json(&ev, &mut bytes)?;
    assert!(!bytes.contains(&b'\n'), "one event must stay on one line");
    let parsed: Value = serde_json::from_slice(&bytes)?;
    assert_eq!(parsed, to_ocsf_json(&ev));
    assert_eq!(
        parsed["http_request"]["http_headers"][2]["value"],
        "a \"quoted\"\n\u{1}value\\"
    );
    Ok(())
}

#[test]
fn lifecycle_events_are_written_as_application_lifecycle() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, Redactor::default())?;
    emitter.emit_lifecycle("start", "listening on 0.0.0.0:8443");
    emitter.emit(event(0));
    emitter.emit_lifecycle("reload_ok", "config v2 applied");
    emitter.emit_lifecycle("Reload failed", "config v3 rejected: unknown field");
    emitter.emit_lifecycle("stop", "shutting down");
    emitter.emit_lifecycle("mystery", "something else");
    emitter.shutdown(SHUTDOWN);
    assert_eq!(emitter.emitted(), 6);

    let lines = read_json_lines(&path)?;
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[1]["class_uid"], 4002);
    let lifecycle: Vec<&Value> = lines.iter().filter(|l| l["class_uid"] == 6002).collect();
    assert_eq!(lifecycle.len(), 5);
    let expected = [
        (
            3,
            "Start",
            1,
            "Success",
            1,
            "listening on 0.0.0.0:8443",
            "start",
        ),
        (
            99,
            "Reload",
            1,
            "Success",
            1,
            "config v2 applied",
            "reload_ok",
        ),
        (
            99,
            "Reload",
            2,
            "Failure",
            3,
            "config v3 rejected: unknown field",
            "Reload failed",
        ),
        (4, "Stop", 1, "Success", 1, "shutting down", "stop"),
        (99, "Other", 0, "Unknown", 1, "something else", "mystery"),
    ];
    for (line, (activity_id, activity_name, status_id, status, severity_id, message, kind)) in
        lifecycle.iter().zip(expected)
    {
        assert_eq!(line["class_name"], "Application Lifecycle");
        assert_eq!(line["category_uid"], 6);
        assert_eq!(line["category_name"], "Application Activity");
        assert_eq!(line["activity_id"], activity_id);
        assert_eq!(line["activity_name"], activity_name);
        assert_eq!(line["type_uid"], 600_200 + activity_id);
        assert_eq!(line["status_id"], status_id);
        assert_eq!(line["status"], status);
        assert_eq!(line["severity_id"], severity_id);
        assert_eq!(line["message"], message);
        assert_eq!(line["unmapped"]["kind"], kind);
        assert_eq!(line["metadata"]["version"], "1.3.0");
        assert_eq!(line["app"]["name"], "Portcullis");
        assert!(line["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
    }
    Ok(())
}

#[test]
fn an_unopenable_file_sink_fails_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("missing-dir").join("events.jsonl");
    let cfg = EmitterConfig {
        sinks: vec![
            SinkConfig::Stdout,
            SinkConfig::File {
                path: path.clone(),
                max_bytes: 1024,
                max_files: 2,
            },
        ],
        queue_capacity: 16,
    };
    match Emitter::start(cfg, Redactor::default()) {
        Err(EventsError::OpenSink { path: reported, .. }) => assert_eq!(reported, path),
        other => return Err(format!("expected OpenSink, got {other:?}").into()),
    }

    let zero_size = EmitterConfig {
        sinks: vec![SinkConfig::File {
            path: dir.path().join("ok.jsonl"),
            max_bytes: 0,
            max_files: 2,
        }],
        queue_capacity: 16,
    };
    assert!(matches!(
        Emitter::start(zero_size, Redactor::default()),
        Err(EventsError::InvalidConfig(_))
    ));
    Ok(())
}

#[test]
fn an_authenticated_caller_is_the_actor_and_the_credential_id_is_unmapped() {
    let mut ev = support::event(1);
    ev.actor = Some(portcullis_events::Actor {
        auth_method: "api_key".into(),
        principal: "svc-orders".into(),
        credential_id: Some("key-7".into()),
        scopes: vec!["orders:read".into()],
    });
    let json = portcullis_events::to_ocsf_json(&ev);
    assert_eq!(json["actor"]["user"]["uid"], "svc-orders");
    assert_eq!(json["unmapped"]["auth"]["method"], "api_key");
    assert_eq!(json["unmapped"]["auth"]["credential_id"], "key-7");
    assert_eq!(json["unmapped"]["auth"]["scopes"][0], "orders:read");
    ev.actor = None;
    let json = portcullis_events::to_ocsf_json(&ev);
    assert!(json.get("actor").is_none());
    assert!(json["unmapped"].get("auth").is_none());
}
