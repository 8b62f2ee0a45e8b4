//! The HTTP sinks on the wire, against in-process hyper receivers: Splunk
//! HEC (path, `Authorization: Splunk`, the concatenated event envelopes,
//! batching, retry of 5xx and refusal of 4xx) and the `_bulk` API (NDJSON
//! action/document pairs, content type, credentials, and a partial failure
//! where only the failed items are sent again).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use portcullis_events::{
    BatchConfig, ElasticAuth, ElasticBulkConfig, Emitter, EmitterConfig, Redactor, Secret,
    SinkConfig, SinkStats, SplunkHecConfig,
};
use serde_json::{Value, json};
use support::http_receiver::{Captured, Receiver};
use support::{TestResult, auth_events, detection_events, event, request_number};

const SHUTDOWN: Duration = Duration::from_secs(30);

fn quick_batch() -> BatchConfig {
    BatchConfig {
        flush_interval: Duration::from_millis(100),
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
        ..BatchConfig::default()
    }
}

fn hec(receiver: &Receiver) -> SplunkHecConfig {
    SplunkHecConfig {
        url: receiver.url(),
        token: Secret::new("hec-secret-token"),
        index: Some("security".to_owned()),
        source: "portcullis".to_owned(),
        sourcetype: "ocsf:json".to_owned(),
        host: Some("gw-1".to_owned()),
        batch: quick_batch(),
        ..SplunkHecConfig::default()
    }
}

fn run(sink: SinkConfig, emit: impl FnOnce(&Emitter)) -> TestResult<SinkStats> {
    let emitter = Emitter::start(
        EmitterConfig {
            sinks: vec![sink],
            queue_capacity: 1024,
        },
        Redactor::default(),
    )?;
    emit(&emitter);
    emitter.shutdown(SHUTDOWN);
    Ok(emitter.sink_stats().remove(0))
}

/// The concatenated JSON objects of a HEC body.
fn envelopes(request: &Captured) -> Vec<Value> {
    serde_json::Deserializer::from_slice(&request.body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("HEC body is not concatenated JSON: {e}"))
}

#[test]
fn hec_receives_authorized_envelopes_in_one_batch() -> TestResult {
    let receiver = Receiver::start(
        Box::new(|_, _| (200, r#"{"text":"Success","code":0}"#.to_owned())),
        None,
    )?;
    let stats = run(SinkConfig::SplunkHec(hec(&receiver)), |emitter| {
        for n in 0..5 {
            emitter.emit(event(n));
        }
        emitter.emit_authentication(auth_events().remove(0));
        emitter.emit_detection(detection_events().remove(1));
    })?;
    assert_eq!(
        (stats.kind, stats.delivered, stats.dropped, stats.retries),
        ("splunk_hec", 7, 0, 0)
    );
    assert!(!stats.name.contains("hec-secret-token"));

    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        1,
        "seven events within the flush interval make one batch"
    );
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/services/collector/event");
    assert_eq!(
        request.header("authorization"),
        Some("Splunk hec-secret-token")
    );
    let envelopes = envelopes(request);
    assert_eq!(envelopes.len(), 7);
    for (n, envelope) in envelopes.iter().take(5).enumerate() {
        let keys: Vec<&str> = envelope
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["event", "host", "index", "source", "sourcetype", "time"]
        );
        // time is epoch seconds with millisecond decimals: event(n) is at ...000 + n ms.
        let time = envelope["time"].as_f64().unwrap();
        assert!(
            (time - (1_700_000_000.0 + n as f64 / 1000.0)).abs() < 1e-6,
            "{time}"
        );
        assert_eq!(envelope["host"], "gw-1");
        assert_eq!(envelope["source"], "portcullis");
        assert_eq!(envelope["sourcetype"], "ocsf:json");
        assert_eq!(envelope["index"], "security");
        assert_eq!(envelope["event"]["class_uid"], 4002);
        assert_eq!(request_number(&envelope["event"])?, n);
    }
    assert_eq!(envelopes[5]["event"]["class_uid"], 3002);
    assert_eq!(envelopes[6]["event"]["class_uid"], 2004);
    // The raw text carries the decimal form HEC documents (`secs.millis`).
    assert!(String::from_utf8_lossy(&request.body).starts_with("{\"time\":1700000000.000,"));
    Ok(())
}

#[test]
fn hec_retries_server_errors_with_backoff_and_drops_what_it_refuses() -> TestResult {
    // 503, 429, then success for the first batch; then 400 for the second.
    let receiver = Receiver::start(
        Box::new(|_, seen| match seen {
            0 => (503, r#"{"text":"Server is busy","code":9}"#.to_owned()),
            1 => (429, String::new()),
            2 => (200, r#"{"text":"Success","code":0}"#.to_owned()),
            _ => (400, r#"{"text":"Invalid data format","code":6}"#.to_owned()),
        }),
        None,
    )?;
    let stats = run(SinkConfig::SplunkHec(hec(&receiver)), |emitter| {
        emitter.emit(event(1));
        emitter.emit(event(2));
        // Let the first batch go (and be retried) before the second is formed.
        let deadline = std::time::Instant::now() + SHUTDOWN;
        while emitter.sink_stats()[0].delivered < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        emitter.emit(event(3));
    })?;
    assert_eq!((stats.delivered, stats.dropped, stats.retries), (2, 1, 2));
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        4,
        "three tries of the first batch, one of the refused one"
    );
    assert_eq!(
        requests[0].body, requests[2].body,
        "a retry resends the same batch"
    );
    Ok(())
}

fn bulk(receiver: &Receiver, auth: ElasticAuth) -> SinkConfig {
    SinkConfig::ElasticBulk(ElasticBulkConfig {
        url: receiver.url(),
        index: "portcullis-events".to_owned(),
        auth,
        batch: quick_batch(),
        ..ElasticBulkConfig::default()
    })
}

/// Parses a `_bulk` body into (action, document) pairs.
fn bulk_pairs(request: &Captured) -> Vec<(Value, Value)> {
    let text = String::from_utf8(request.body.clone()).unwrap();
    assert!(text.ends_with('\n'), "NDJSON must end with a newline");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(
        lines.len() % 2,
        0,
        "action and document lines come in pairs"
    );
    lines
        .chunks(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

fn item(status: u16) -> Value {
    if status < 300 {
        json!({"create": {"_index": "portcullis-events", "status": status, "result": "created"}})
    } else {
        json!({"create": {"_index": "portcullis-events", "status": status,
            "error": {"type": if status == 429 { "es_rejected_execution_exception" } else { "mapper_parsing_exception" }, "reason": "test"}}})
    }
}

#[test]
fn bulk_sends_ndjson_pairs_and_retries_only_the_failed_items() -> TestResult {
    // First answer: items 1 (429) and 4 (503) must be retried, item 2 (400) is refused.
    let receiver = Receiver::start(
        Box::new(|_, seen| {
            let body = if seen == 0 {
                json!({"took": 3, "errors": true,
                    "items": [item(201), item(429), item(400), item(201), item(503)]})
            } else {
                json!({"took": 1, "errors": false, "items": [item(201), item(201)]})
            };
            (200, body.to_string())
        }),
        None,
    )?;
    let stats = run(
        bulk(&receiver, ElasticAuth::ApiKey(Secret::new("aWQ6a2V5"))),
        |emitter| {
            for n in 0..5 {
                emitter.emit(event(n));
            }
        },
    )?;
    assert_eq!(
        (stats.kind, stats.delivered, stats.dropped, stats.retries),
        ("elastic_bulk", 4, 1, 1)
    );

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/_bulk");
        assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(request.header("authorization"), Some("ApiKey aWQ6a2V5"));
    }
    let first = bulk_pairs(&requests[0]);
    assert_eq!(first.len(), 5);
    for (n, (action, doc)) in first.iter().enumerate() {
        assert_eq!(action, &json!({"create": {"_index": "portcullis-events"}}));
        assert_eq!(request_number(doc)?, n);
    }
    let retried: Vec<usize> = bulk_pairs(&requests[1])
        .iter()
        .map(|(_, doc)| request_number(doc).unwrap())
        .collect();
    assert_eq!(retried, [1, 4], "only the 429 and 503 items are sent again");
    Ok(())
}

#[test]
fn bulk_basic_auth_and_whole_request_failures() -> TestResult {
    // 502 for the whole request (retry everything), then a 401 (refused for good).
    let receiver = Receiver::start(
        Box::new(|_, seen| match seen {
            0 => (502, "bad gateway".to_owned()),
            1 => (
                200,
                json!({"errors": false, "items": [item(201)]}).to_string(),
            ),
            _ => (401, "unauthorized".to_owned()),
        }),
        None,
    )?;
    let auth = ElasticAuth::Basic {
        username: "elastic".to_owned(),
        password: Secret::new("pa:ss word"),
    };
    let stats = run(bulk(&receiver, auth), |emitter| {
        emitter.emit(event(7));
        let deadline = std::time::Instant::now() + SHUTDOWN;
        while emitter.sink_stats()[0].delivered < 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        emitter.emit(event(8));
    })?;
    assert_eq!((stats.delivered, stats.dropped, stats.retries), (1, 1, 1));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:pa:ss word")
    );
    assert_eq!(requests[0].header("authorization"), Some(expected.as_str()));
    assert_eq!(requests[0].body, requests[1].body);
    Ok(())
}

#[test]
fn batches_are_cut_by_event_count() -> TestResult {
    let receiver = Receiver::start(
        Box::new(|_, _| (200, r#"{"text":"Success","code":0}"#.to_owned())),
        None,
    )?;
    let mut cfg = hec(&receiver);
    cfg.batch.max_events = 4;
    cfg.batch.flush_interval = Duration::from_secs(5);
    let stats = run(SinkConfig::SplunkHec(cfg), |emitter| {
        for n in 0..10 {
            emitter.emit(event(n));
        }
    })?;
    assert_eq!(stats.delivered, 10);
    let sizes: Vec<usize> = receiver
        .requests()
        .iter()
        .map(|r| envelopes(r).len())
        .collect();
    assert_eq!(sizes, [4, 4, 2]);
    Ok(())
}

#[test]
fn https_endpoints_are_verified_against_the_configured_ca() -> TestResult {
    let pki = tempfile::tempdir()?;
    let (ca, cert, key) = support::write_test_pki(pki.path())?;
    let ok = |_: &Captured, _| (200, r#"{"text":"Success","code":0}"#.to_owned());
    let receiver = Receiver::start_tls(Box::new(ok), &cert, &key)?;

    let mut trusted = hec(&receiver);
    trusted.url = receiver.https_url();
    trusted.tls.ca_file = Some(ca);
    let stats = run(SinkConfig::SplunkHec(trusted), |emitter| {
        emitter.emit(event(1))
    })?;
    assert_eq!((stats.delivered, stats.dropped), (1, 0));
    assert_eq!(receiver.requests().len(), 1);

    // Another CA did not sign the receiver's certificate: nothing may be sent.
    let other = tempfile::tempdir()?;
    let (other_ca, _, _) = support::write_test_pki(other.path())?;
    let mut untrusted = hec(&receiver);
    untrusted.url = receiver.https_url();
    untrusted.tls.ca_file = Some(other_ca);
    untrusted.batch.max_retries = 1;
    let stats = run(SinkConfig::SplunkHec(untrusted), |emitter| {
        emitter.emit(event(2))
    })?;
    assert_eq!((stats.delivered, stats.dropped, stats.retries), (0, 1, 1));
    assert_eq!(
        receiver.requests().len(),
        1,
        "no request over an unverified connection"
    );
    Ok(())
}
