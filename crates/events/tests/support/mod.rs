//! Fixtures shared by the integration tests: sample events, emitters writing
//! to temporary files, and readers for the JSON lines they produce.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::error::Error;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub mod http_receiver;

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
        attempted_user: None,
        operation: None,
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

/// A failed API-key check without a known principal (all optional parts
/// absent) and a successful Basic login (all present).
pub fn auth_events() -> Vec<portcullis_events::AuthenticationEvent> {
    use portcullis_events::{AuthMethod, AuthOutcome, AuthenticationEvent};
    vec![
        AuthenticationEvent {
            time_ms: 1_700_000_000_000,
            request_id: "req-auth-1".to_owned(),
            client_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23)),
            client_port: 40_001,
            method: AuthMethod::ApiKey,
            outcome: AuthOutcome::Failure,
            failure_reason: None,
            principal: None,
            credential_id: None,
        },
        AuthenticationEvent {
            time_ms: 1_700_000_000_500,
            request_id: "req-auth-2".to_owned(),
            client_ip: "2001:db8::7"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            client_port: 40_002,
            method: AuthMethod::Basic,
            outcome: AuthOutcome::Success,
            failure_reason: Some("none".to_owned()),
            principal: Some("alice".to_owned()),
            credential_id: Some("htpasswd:alice".to_owned()),
        },
    ]
}

/// A bare detection (nothing optional) and a full one with ATT&CK mapping,
/// evidence and actions.
pub fn detection_events() -> Vec<portcullis_events::DetectionFinding> {
    use portcullis_events::{Attack, AttackRef, DetectionFinding, Severity};
    let r = |uid: &str, name: &str| AttackRef {
        uid: uid.to_owned(),
        name: name.to_owned(),
    };
    vec![
        DetectionFinding {
            time_ms: 1_700_000_001_000,
            finding_uid: "alert-1".to_owned(),
            rule_id: "5d3a1f0e-0000-4000-8000-000000000001".to_owned(),
            title: "Path traversal attempt".to_owned(),
            severity: Severity::Medium,
            description: None,
            attacks: Vec::new(),
            request_ids: Vec::new(),
            client_ip: None,
            principal: None,
            actions_taken: Vec::new(),
        },
        DetectionFinding {
            time_ms: 1_700_000_002_000,
            finding_uid: "alert-2".to_owned(),
            rule_id: "5d3a1f0e-0000-4000-8000-000000000002".to_owned(),
            title: "Password spraying | many users = one IP".to_owned(),
            severity: Severity::High,
            description: Some("Many failed logins\nfrom one address".to_owned()),
            attacks: vec![
                Attack {
                    tactic: Some(r("TA0006", "Credential Access")),
                    technique: Some(r("T1110", "Brute Force")),
                    sub_technique: Some(r("T1110.003", "Password Spraying")),
                },
                Attack {
                    tactic: Some(r("TA0001", "Initial Access")),
                    technique: None,
                    sub_technique: None,
                },
            ],
            request_ids: vec!["req-000001".to_owned(), "req-000002".to_owned()],
            client_ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
            principal: Some("bob".to_owned()),
            actions_taken: vec!["blocked ip for 600s".to_owned(), "webhook".to_owned()],
        },
    ]
}

/// A request event with every optional part filled in.
pub fn full_http_event(n: usize) -> HttpActivity {
    use portcullis_events::{Actor, Finding, Severity, TlsInfo};
    let mut ev = event(n);
    ev.tls = Some(TlsInfo {
        version: "TLSv1.3".to_owned(),
        cipher: "TLS_AES_128_GCM_SHA256".to_owned(),
    });
    ev.method = "PATCH".to_owned();
    ev.action = Action::Denied;
    ev.status = 403;
    ev.reason = Some("credential_in_url".to_owned());
    ev.findings = vec![
        Finding {
            kind: "credential_leak".to_owned(),
            id: "query_secret".to_owned(),
            location: Some("query:api_key".to_owned()),
            detail: Some("secret-looking query parameter".to_owned()),
            severity: Severity::High,
        },
        Finding {
            kind: "k".to_owned(),
            id: "i".to_owned(),
            location: None,
            detail: None,
            severity: Severity::Low,
        },
    ];
    ev.actor = Some(Actor {
        auth_method: "jwt".to_owned(),
        principal: "carol".to_owned(),
        credential_id: Some("jti-1".to_owned()),
        scopes: vec!["read".to_owned()],
    });
    ev
}

/// A request event with every optional part absent.
pub fn bare_http_event(n: usize) -> HttpActivity {
    let mut ev = event(n);
    ev.query = None;
    ev.user_agent = None;
    ev.headers = Vec::new();
    ev.route = None;
    ev.upstream = None;
    ev
}

/// A throwaway CA and a server certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files in `dir`: `(ca.pem, server.pem, server.key)`.
pub fn write_test_pki(dir: &Path) -> TestResult<(PathBuf, PathBuf, PathBuf)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portcullis test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let server_key = KeyPair::generate()?;
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let server = server_params.signed_by(&server_key, &ca)?;
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    fs::write(&paths.0, ca.pem())?;
    fs::write(&paths.1, server.pem())?;
    fs::write(&paths.2, server_key.serialize_pem())?;
    Ok(paths)
}

/// A loopback port nobody listens on right now (TCP and UDP).
pub fn free_port() -> TestResult<u16> {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = tcp.local_addr()?.port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port".into())
}

/// Polls `check` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(
    limit: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> TestResult<T> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
