//! Secrets never reach a sink, even when the caller does not redact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::time::Duration;

use portcullis_events::{Redactor, to_ocsf_json};
use support::{TestResult, event, file_emitter, read_json_lines, strings};

const SHUTDOWN: Duration = Duration::from_secs(30);

fn gateway_redactor() -> Redactor {
    Redactor::new(
        &strings(&["X-Api-Key", "x-upstream-secret"]),
        &strings(&["api_key", "token", "password"]),
    )
}

#[test]
fn secret_headers_never_reach_the_file_in_any_case() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, gateway_redactor())?;

    let mut ev = event(0);
    // Names are lowercase per the API contract, but the redactor must not
    // rely on it, so mixed case is used deliberately.
    ev.headers = vec![
        (
            "Authorization".to_owned(),
            "Bearer SECRET-authorization".to_owned(),
        ),
        (
            "proxy-authorization".to_owned(),
            "Basic SECRET-proxy".to_owned(),
        ),
        ("COOKIE".to_owned(), "session=SECRET-cookie".to_owned()),
        ("set-cookie".to_owned(), "id=SECRET-set-cookie".to_owned()),
        ("x-api-key".to_owned(), "SECRET-api-key".to_owned()),
        ("X-Upstream-Secret".to_owned(), "SECRET-upstream".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
        ("cookie".to_owned(), "second=SECRET-cookie-2".to_owned()),
    ];
    // The caller does not redact: emit must.
    emitter.emit(ev);
    emitter.shutdown(SHUTDOWN);

    let raw = fs::read_to_string(&path)?;
    assert!(
        !raw.contains("SECRET"),
        "a secret header value reached the file: {raw}"
    );
    let lines = read_json_lines(&path)?;
    let headers = &lines[0]["http_request"]["http_headers"];
    let pairs: Vec<(&str, &str)> = headers
        .as_array()
        .ok_or("http_headers is not an array")?
        .iter()
        .filter_map(|h| Some((h["name"].as_str()?, h["value"].as_str()?)))
        .collect();
    assert_eq!(
        pairs,
        [
            ("Authorization", "[REDACTED]"),
            ("proxy-authorization", "[REDACTED]"),
            ("COOKIE", "[REDACTED]"),
            ("set-cookie", "[REDACTED]"),
            ("x-api-key", "[REDACTED]"),
            ("X-Upstream-Secret", "[REDACTED]"),
            ("accept", "application/json"),
            ("cookie", "[REDACTED]"),
        ]
    );
    Ok(())
}

#[test]
fn secret_query_values_are_replaced_and_names_kept() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, gateway_redactor())?;

    let queries = [
        ("api_key=SECRET1&page=2", "api_key=[REDACTED]&page=2"),
        (
            "q=rust&TOKEN=SECRET2&sort=asc",
            "q=rust&TOKEN=[REDACTED]&sort=asc",
        ),
        ("user=bob&password=SECRET3", "user=bob&password=[REDACTED]"),
        ("api%5Fkey=SECRET4", "api%5Fkey=[REDACTED]"),
        (
            "page=2&tokens=keep&my_token=keep",
            "page=2&tokens=keep&my_token=keep",
        ),
    ];
    for (n, (query, _)) in queries.iter().enumerate() {
        let mut ev = event(n);
        ev.query = Some((*query).to_owned());
        emitter.emit(ev);
    }
    emitter.shutdown(SHUTDOWN);

    let raw = fs::read_to_string(&path)?;
    assert!(
        !raw.contains("SECRET"),
        "a secret query value reached the file: {raw}"
    );
    let lines = read_json_lines(&path)?;
    assert_eq!(lines.len(), queries.len());
    for (line, (_, expected)) in lines.iter().zip(queries) {
        assert_eq!(line["http_request"]["url"]["query_string"], expected);
    }
    Ok(())
}

#[test]
fn set_redactor_applies_to_later_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, Redactor::new(&[], &[]))?;
    let with_secrets = |n| {
        let mut ev = event(n);
        ev.headers
            .push(("x-tenant-key".to_owned(), "tenant-value".to_owned()));
        ev.query = Some("sig=signature-value".to_owned());
        ev
    };

    emitter.emit(with_secrets(0));
    emitter.set_redactor(Redactor::new(
        &strings(&["x-tenant-key"]),
        &strings(&["sig"]),
    ));
    emitter.emit(with_secrets(1));
    emitter.shutdown(SHUTDOWN);

    let lines = read_json_lines(&path)?;
    assert_eq!(
        lines[0]["http_request"]["url"]["query_string"],
        "sig=signature-value"
    );
    assert_eq!(
        lines[0]["http_request"]["http_headers"][2]["value"],
        "tenant-value"
    );
    assert_eq!(
        lines[1]["http_request"]["url"]["query_string"],
        "sig=[REDACTED]"
    );
    assert_eq!(
        lines[1]["http_request"]["http_headers"][2]["value"],
        "[REDACTED]"
    );
    Ok(())
}

#[test]
fn redact_covers_headers_query_and_leaves_everything_else() {
    let redactor = gateway_redactor();
    let mut ev = event(0);
    ev.headers
        .push(("authorization".to_owned(), "Bearer abc".to_owned()));
    ev.query = Some("token=abc&page=2".to_owned());
    let before = ev.clone();
    redactor.redact(&mut ev);

    assert_eq!(ev.query.as_deref(), Some("token=[REDACTED]&page=2"));
    assert_eq!(
        ev.headers[2],
        ("authorization".to_owned(), "[REDACTED]".to_owned())
    );
    assert_eq!(ev.headers[..2], before.headers[..2]);
    assert_eq!(
        to_ocsf_json(&ev)["http_request"]["url"]["path"],
        "/v1/items"
    );
    assert!(redactor.is_secret_header("SET-COOKIE"));
    assert!(!redactor.is_secret_header("accept"));
    assert_eq!(
        redactor.redact_query("password=hunter2"),
        "password=[REDACTED]"
    );
}

#[test]
fn emit_shared_returns_the_redacted_event_the_sinks_write() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, gateway_redactor())?;
    let mut ev = event(0);
    ev.headers
        .push(("x-api-key".to_owned(), "SECRET-api-key".to_owned()));
    ev.query = Some("token=SECRET-token&page=2".to_owned());

    let shared = emitter.emit_shared(ev);
    emitter.shutdown(SHUTDOWN);

    assert_eq!(shared.query.as_deref(), Some("token=[REDACTED]&page=2"));
    assert!(shared.headers.iter().all(|(_, v)| !v.contains("SECRET")));
    assert_eq!((emitter.emitted(), emitter.dropped()), (1, 0));
    let lines = read_json_lines(&path)?;
    assert_eq!(
        lines,
        [to_ocsf_json(&shared)],
        "the sink wrote the shared event"
    );
    Ok(())
}

#[test]
fn emit_shared_redacts_even_without_sinks_or_after_shutdown() -> TestResult {
    let no_sinks = portcullis_events::Emitter::start(
        portcullis_events::EmitterConfig {
            sinks: Vec::new(),
            queue_capacity: 8,
        },
        gateway_redactor(),
    )?;
    let with_secret = || {
        let mut ev = event(0);
        ev.query = Some("password=SECRET".to_owned());
        ev
    };
    let shared = no_sinks.emit_shared(with_secret());
    assert_eq!(shared.query.as_deref(), Some("password=[REDACTED]"));
    assert_eq!((no_sinks.emitted(), no_sinks.dropped()), (1, 0));

    no_sinks.shutdown(SHUTDOWN);
    let shared = no_sinks.emit_shared(with_secret());
    assert_eq!(shared.query.as_deref(), Some("password=[REDACTED]"));
    assert_eq!((no_sinks.emitted(), no_sinks.dropped()), (1, 1));
    Ok(())
}
