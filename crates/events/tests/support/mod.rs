//! Fixtures shared by the integration tests: sample events, emitters writing
//! to temporary files, and readers for the JSON lines they produce.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::error::Error;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use portcullis_events::{Action, Emitter, EmitterConfig, HttpActivity, Redactor, SinkConfig};
use serde_json::Value;

pub type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// A plain allowed GET whose request id encodes `n`, so order and loss are
/// visible in the output.
pub fn event(n: usize) -> HttpActivity {
    HttpActivity {
        time_ms: 1_700_000_000_000 + n as u64,
        request_id: request_id(n),
        client_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23)),
        client_port: 40_000,
        tls: None,
        http_version: "HTTP/1.1".to_owned(),
        method: "GET".to_owned(),
        scheme: "http".to_owned(),
        host: "api.example.com".to_owned(),
        path: "/v1/items".to_owned(),
        query: Some("page=2".to_owned()),
        headers: vec![
            ("accept".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "test-client/1.0".to_owned()),
        ],
        user_agent: Some("test-client/1.0".to_owned()),
        status: 200,
        bytes_in: 0,
        bytes_out: 512,
        duration_us: 1_500,
        route: Some("items".to_owned()),
        upstream: Some("10.0.0.5:8080".to_owned()),
        action: Action::Allowed,
        reason: None,
        findings: Vec::new(),
        actor: None,
    }
}

pub fn request_id(n: usize) -> String {
    format!("req-{n:06}")
}

/// The number encoded by [`request_id`] in a written line.
pub fn request_number(line: &Value) -> TestResult<usize> {
    let uid = line["metadata"]["uid"]
        .as_str()
        .ok_or("line without metadata.uid")?;
    Ok(uid.trim_start_matches("req-").parse()?)
}

pub fn file_sink(path: &Path) -> SinkConfig {
    SinkConfig::File {
        path: path.to_owned(),
        max_bytes: u64::MAX,
        max_files: 1,
    }
}

/// Starts an emitter writing to a single unrotated file.
pub fn file_emitter(path: &Path, queue_capacity: usize, redactor: Redactor) -> TestResult<Emitter> {
    let cfg = EmitterConfig {
        sinks: vec![file_sink(path)],
        queue_capacity,
    };
    Ok(Emitter::start(cfg, redactor)?)
}

/// Every line of `path`, parsed; fails on any line that is not JSON.
pub fn read_json_lines(path: &Path) -> TestResult<Vec<Value>> {
    let text = fs::read_to_string(path)?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}:{}: not JSON ({e}): {line}", path.display(), i + 1))?;
        lines.push(value);
    }
    Ok(lines)
}

/// `path.n`, the way the file sink names rotated files.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
