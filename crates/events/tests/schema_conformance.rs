//! Every record class validates against its published JSON Schema
//! (`docs/schemas/`), with all optional parts present and absent, both as
//! built in memory and as the file sink writes it; and the schemas refuse
//! unknown top-level properties, so code and documentation cannot drift
//! apart silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;

use portcullis_events::{
    Emitter, EmitterConfig, Redactor, authentication_json, detection_json, lifecycle_json,
    to_ocsf_json,
};
use serde_json::Value;
use support::{
    TestResult, auth_events, bare_http_event, detection_events, file_sink, full_http_event,
    read_json_lines,
};

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/schemas/");

fn validator(file: &str) -> TestResult<jsonschema::Validator> {
    let schema: Value = serde_json::from_str(&fs::read_to_string(format!("{SCHEMAS}{file}"))?)?;
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{file} must declare draft 2020-12"
    );
    assert_eq!(
        schema["additionalProperties"], false,
        "{file} must forbid unknown top-level properties"
    );
    Ok(jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| format!("{file}: {e}"))?)
}

fn assert_valid(validator: &jsonschema::Validator, file: &str, record: &Value) {
    let errors: Vec<String> = validator
        .iter_errors(record)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}\nrecord: {record}");
}

fn schema_for(class_uid: &Value) -> &'static str {
    match class_uid.as_u64() {
        Some(4002) => "ocsf-4002-http-activity.json",
        Some(3002) => "ocsf-3002-authentication.json",
        Some(2004) => "ocsf-2004-detection-finding.json",
        Some(6002) => "ocsf-6002-application-lifecycle.json",
        other => panic!("unexpected class_uid {other:?}"),
    }
}

fn representative_records() -> Vec<Value> {
    let mut records = vec![
        to_ocsf_json(&full_http_event(1)),
        to_ocsf_json(&bare_http_event(2)),
    ];
    records.extend(auth_events().iter().map(authentication_json));
    records.extend(detection_events().iter().map(detection_json));
    for kind in [
        "start",
        "stop",
        "reload_ok",
        "reload_failed",
        "fail_mode_switch",
        "something-else",
    ] {
        records.push(lifecycle_json(1_700_000_000_000, kind, "message"));
    }
    records
}

#[test]
fn every_class_validates_with_optional_parts_present_and_absent() -> TestResult {
    let mut seen = std::collections::BTreeSet::new();
    for record in representative_records() {
        let file = schema_for(&record["class_uid"]);
        assert_valid(&validator(file)?, file, &record);
        seen.insert(file);
    }
    assert_eq!(seen.len(), 4, "all four classes must be exercised");

    // Optional parts really are present in one record and absent in the other.
    let records = representative_records();
    assert!(records[0].get("tls").is_some() && records[1].get("tls").is_none());
    assert!(records[2].get("user").is_none() && records[3].get("user").is_some());
    assert!(records[4].get("evidences").is_none() && records[5].get("evidences").is_some());
    assert_eq!(
        records[5]["finding_info"]["attacks"][0]["sub_technique"]["uid"],
        "T1110.003"
    );
    Ok(())
}

#[test]
fn what_the_file_sink_writes_validates_too() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = Emitter::start(
        EmitterConfig {
            sinks: vec![file_sink(&path)],
            queue_capacity: 64,
        },
        Redactor::default(),
    )?;
    emitter.emit(full_http_event(1));
    emitter.emit(bare_http_event(2));
    for ev in auth_events() {
        emitter.emit_authentication(ev);
    }
    for ev in detection_events() {
        emitter.emit_detection(ev);
    }
    emitter.emit_lifecycle(
        "fail_mode_switch",
        "rate-limit store unreachable: fail-open",
    );
    emitter.shutdown(std::time::Duration::from_secs(30));

    let lines = read_json_lines(&path)?;
    assert_eq!(lines.len(), 7);
    for line in &lines {
        let file = schema_for(&line["class_uid"]);
        assert_valid(&validator(file)?, file, line);
    }
    Ok(())
}

#[test]
fn schemas_reject_unknown_top_level_properties_and_wrong_types() -> TestResult {
    for record in representative_records() {
        let file = schema_for(&record["class_uid"]);
        let validator = validator(file)?;
        let mut extra = record.clone();
        extra["surprise_field"] = Value::from(1);
        assert!(
            !validator.is_valid(&extra),
            "{file} accepted an unknown property"
        );
        let mut wrong = record.clone();
        wrong["time"] = Value::from("yesterday");
        assert!(!validator.is_valid(&wrong), "{file} accepted a string time");
        let mut missing = record;
        missing.as_object_mut().unwrap().remove("metadata");
        assert!(
            !validator.is_valid(&missing),
            "{file} accepted a record without metadata"
        );
    }
    Ok(())
}

#[test]
fn the_credential_never_appears_in_an_authentication_record() {
    // The model has no field for it; the record carries only the id.
    let record = authentication_json(&auth_events()[1]);
    assert_eq!(record["unmapped"]["credential_id"], "htpasswd:alice");
    assert_eq!(record["user"]["name"], "alice");
    assert_eq!(record["auth_protocol_id"], 11);
    assert_eq!(record["status_id"], 1);
    let failed = authentication_json(&auth_events()[0]);
    assert_eq!(
        (failed["status_id"].clone(), failed["severity_id"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(failed["unmapped"]["auth_method"], "api_key");
}

/// The examples in `docs/events.md` are records too: they must validate.
#[test]
fn the_documented_examples_validate() -> TestResult {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md"))?;
    let mut checked = std::collections::BTreeSet::new();
    for block in doc.split("```json\n").skip(1) {
        let text = block.split("```").next().unwrap_or("");
        // Examples are wrapped for reading; each is one line in the file.
        let joined: String = text.lines().collect();
        let Ok(record) = serde_json::from_str::<Value>(&joined) else {
            continue;
        };
        if record.get("class_uid").is_none() {
            continue;
        }
        let file = schema_for(&record["class_uid"]);
        assert_valid(&validator(file)?, file, &record);
        checked.insert(file);
    }
    assert_eq!(checked.len(), 4, "every class has a documented example");
    Ok(())
}
