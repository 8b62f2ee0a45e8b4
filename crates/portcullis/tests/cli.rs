//! The real `portcullis` binary: `version`, `check`, `serve` and `demo`, run as an operator
//! would run them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn invalid_fixture(name: &str) -> PathBuf {
    repo()
        .join("crates/gateway/tests/fixtures/config/invalid")
        .join(name)
}

fn portcullis(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_LOG", "warn")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A free loopback port: bind port 0, note the port, let it go.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed if the test ends before it exits.
struct Running {
    child: Child,
}

impl Running {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
    }

    fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Wait until something accepts TCP connections on `port`.
fn wait_for_port(port: u16, running: &mut Running, stderr: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(status) = running.child.try_wait().unwrap() {
            panic!(
                "exited early with {status}:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listening on port {port}");
}

/// Lifecycle events (class 6002) of the given kind in a JSON-lines events file.
fn lifecycle(events: &Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["class_uid"] == 6002 && v["unmapped"]["kind"] == kind)
        .collect()
}

#[test]
fn version_prints_the_version() {
    let expected = format!("portcullis {}", env!("CARGO_PKG_VERSION"));
    for args in [&["version"][..], &["--version"][..]] {
        let out = portcullis(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), expected, "{args:?}");
    }
}

#[test]
fn check_valid_file_exits_0_with_a_summary() {
    let file = repo().join("examples/minimal.yaml");
    let out = portcullis(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "{}: ok (1 listeners, 1 routes, 1 upstreams)",
            file.display()
        )
    );
    assert_eq!(text(&out.stderr), "", "a valid file prints no errors");
}

/// `# expect: FIELD | MESSAGE` / `# line: L:C` pairs of a fixture.
fn fixture_expectations(path: &Path) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        if let Some(rest) = line.strip_prefix("# expect:") {
            let (field, message) = rest.split_once('|').unwrap();
            out.push((
                field.trim().to_string(),
                message.trim().to_string(),
                String::new(),
            ));
        } else if let Some(rest) = line.strip_prefix("# line:") {
            out.last_mut().unwrap().2 = rest.trim().to_string();
        }
    }
    out
}

#[test]
fn check_lists_every_error_as_file_line_column_field_message() {
    let file = invalid_fixture("multi_error.yaml");
    let out = portcullis(&["check", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "", "errors go to stderr");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = fixture_expectations(&file);
    assert!(expected.len() >= 5);
    assert_eq!(lines.len(), expected.len(), "one line per error:\n{stderr}");
    for (field, message, position) in &expected {
        assert!(!position.is_empty(), "{field}: fixture pins no position");
        let prefix = format!("{}:{position}: {field}: ", file.display());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l[prefix.len()..].contains(message.as_str())),
            "no line `{prefix}…{message}…` in:\n{stderr}"
        );
    }
    // Every line has the shape file:line:column: field: message.
    for l in &lines {
        let rest = l
            .strip_prefix(&format!("{}:", file.display()))
            .unwrap_or_else(|| panic!("line does not start with the file: {l}"));
        let mut parts = rest.splitn(4, ": ");
        let position = parts.next().unwrap();
        let (line, column) = position.split_once(':').unwrap();
        assert!(line.parse::<u64>().unwrap() > 0, "{l}");
        assert!(column.parse::<u64>().unwrap() > 0, "{l}");
        assert!(parts.next().is_some_and(|f| !f.is_empty()), "{l}");
        assert!(parts.next().is_some_and(|m| !m.is_empty()), "{l}");
    }
}

#[test]
fn check_several_files_reports_each() {
    let minimal = repo().join("examples/minimal.yaml");
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("second.yaml");
    std::fs::write(
        &second,
        "listeners:\n  - address: 127.0.0.1:8080\n  - address: 127.0.0.1:8081\nupstreams:\n  a:\n    targets: [http://127.0.0.1:1]\n  b:\n    targets: [http://127.0.0.1:2]\nroutes:\n  - name: a\n    upstream: a\n    auth:\n      public: true\n",
    )
    .unwrap();

    // All valid: exit 0, one summary per file, in order.
    let out = portcullis(&[
        "check",
        "--config",
        minimal.to_str().unwrap(),
        second.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let summaries: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        summaries,
        [
            format!(
                "{}: ok (1 listeners, 1 routes, 1 upstreams)",
                minimal.display()
            ),
            format!(
                "{}: ok (2 listeners, 1 routes, 2 upstreams)",
                second.display()
            ),
        ]
    );

    // Mixed: every file is checked, valid ones still summarised, exit 1.
    let multi = invalid_fixture("multi_error.yaml");
    let nested = invalid_fixture("unknown_field_nested.yaml");
    let out = portcullis(&[
        "check",
        "-c",
        multi.to_str().unwrap(),
        minimal.to_str().unwrap(),
        nested.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let from = |f: &Path| {
        stderr
            .lines()
            .filter(|l| l.starts_with(&format!("{}:", f.display())))
            .count()
    };
    assert_eq!(from(&multi), fixture_expectations(&multi).len(), "{stderr}");
    assert_eq!(from(&nested), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:13:7: routes[0].request.max_bdy: unknown field `max_bdy`",
            nested.display()
        )),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains(&format!("{}: ok", minimal.display())),
        "the valid file is still summarised"
    );
}

#[test]
fn serve_with_an_invalid_config_exits_1_with_the_error() {
    let file = invalid_fixture("unknown_upstream.yaml");
    let started = Instant::now();
    let out = portcullis(&["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:10:15: routes[0].upstream: unknown upstream `apii`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    let missing = repo().join("no-such-dir/portcullis.yaml");
    let out = portcullis(&["serve", "-c", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read config file"),
        "{}",
        text(&out.stderr)
    );
}

/// A one-thread HTTP/1.1 upstream that answers every request with a fixed body and reports
/// each request head it saw.
fn tiny_upstream() -> (u16, mpsc::Receiver<String>) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let (seen, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            if head.is_empty() {
                continue;
            }
            let _ = seen.send(text(&head));
            let body = "hello from the upstream";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    (port, rx)
}

/// Send one request and read the whole response (the request asks the server to close).
fn http_get<S: Read + Write>(stream: S, host: &str, path: &str) -> String {
    http_get_with(stream, host, path, "")
}

/// GET with extra header lines (each ending in `\r\n`).
fn http_get_with<S: Read + Write>(mut stream: S, host: &str, path: &str, extra: &str) -> String {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: cli-test\r\n{extra}connection: close\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the server closes; a TLS peer that closes without close_notify ends in an
    // error after the data, which is fine here.
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    text(&out)
}

#[test]
fn serve_proxies_and_stops_cleanly_on_sigterm() {
    let (up_port, seen) = tiny_upstream();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.yaml");
    let grace = Duration::from_secs(5);
    std::fs::write(
        &config,
        format!(
            "listeners:
  - address: 127.0.0.1:{port}
limits:
  shutdown_grace: {}s
upstreams:
  app:
    targets: [http://127.0.0.1:{up_port}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: events.jsonl
",
            grace.as_secs()
        ),
    )
    .unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let mut gw = Running {
        child: Command::new(BIN)
            .args(["serve", "--config", config.to_str().unwrap()])
            .current_dir(dir.path())
            .env("PORTCULLIS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    };
    wait_for_port(port, &mut gw, &stderr_path);

    let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let response = http_get(conn, &format!("127.0.0.1:{port}"), "/orders/7?x=1");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "response:\n{response}"
    );
    assert!(response.ends_with("hello from the upstream"), "{response}");
    let head = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(head.starts_with("GET /orders/7?x=1 HTTP/1.1\r\n"), "{head}");

    let stopping = Instant::now();
    gw.sigterm();
    let status = gw
        .wait_for_exit(grace + Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running {grace:?} after SIGTERM"));
    let took = stopping.elapsed();
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    assert!(took < grace, "idle gateway took {took:?} to stop");

    let events = dir.path().join("events.jsonl");
    assert_eq!(lifecycle(&events, "start").len(), 1);
    let stop = lifecycle(&events, "stop");
    assert_eq!(
        stop.len(),
        1,
        "{}",
        std::fs::read_to_string(&events).unwrap()
    );
    assert_eq!(stop[0]["activity_name"], "Stop");
    let requests = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"class_uid\":4002"))
        .count();
    assert_eq!(requests, 1, "one HTTP event for the one request");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port released"
    );
}

/// Accepts any server certificate (the demo uses a self-signed one), but still checks the
/// handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn accept_any_tls_client() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(cfg)
}

/// A port `p` with `p + 1` also free (the demo puts its redirect listener on `port + 1`).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two adjacent free ports");
}

#[test]
fn demo_starts_prints_curl_lines_and_serves_the_first_one() {
    let port = free_port_pair();
    let admin_port = loop {
        let p = free_port();
        if p != port && p != port + 1 {
            break p;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr.log");
    let mut demo = Running {
        child: Command::new(BIN)
            .args([
                "demo",
                "--port",
                &port.to_string(),
                "--admin-port",
                &admin_port.to_string(),
            ])
            .current_dir(dir.path())
            .env("PORTCULLIS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    };

    // Collect stdout until the banner's last line.
    let stdout = demo.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !banner
        .iter()
        .any(|l: &String| l.contains("Ctrl-C stops the demo"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => banner.push(line),
            Err(_) => panic!(
                "no complete banner; stdout so far:\n{}\nstderr:\n{}",
                banner.join("\n"),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            ),
        }
    }
    let curls: Vec<&str> = banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl ") || l.contains("| curl "))
        .collect();
    assert!(curls.len() >= 5, "curl lines:\n{}", banner.join("\n"));
    let first = curls[0];
    let url = format!("https://localhost:{port}/api/items");
    assert!(first.ends_with(&url), "first curl line: {first}");
    assert!(
        first.contains("-k"),
        "self-signed: the line needs -k: {first}"
    );

    // Run it: TLS to the gateway with SNI localhost. Without credentials: 401.
    let tls = || {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ClientConnection::new(
            accept_any_tls_client(),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    let response = http_get(tls(), &format!("localhost:{port}"), "/api/items");
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "response:\n{response}"
    );
    // With the API key the banner printed: the sample API's items.
    let key = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("KEY="))
        .expect("the banner prints KEY=...")
        .to_string();
    let response = http_get_with(
        tls(),
        &format!("localhost:{port}"),
        "/api/items",
        &format!("x-api-key: {key}\r\n"),
    );
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "response:\n{response}"
    );
    assert!(
        response.contains("anvil"),
        "the sample API's items: {response}"
    );
    let lower = response.to_ascii_lowercase();
    assert!(lower.contains("strict-transport-security:"), "{response}");
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{response}"
    );

    demo.sigterm();
    let status = demo
        .wait_for_exit(Duration::from_secs(40))
        .expect("demo still running after SIGTERM");
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    let events = dir.path().join("portcullis-events.jsonl");
    assert!(
        events.is_file(),
        "the demo writes ./portcullis-events.jsonl"
    );
    assert_eq!(lifecycle(&events, "stop").len(), 1);
}

#[test]
fn keys_new_prints_a_key_whose_hash_line_authenticates_it() {
    let out = portcullis(&[
        "keys",
        "new",
        "--id",
        "k9",
        "--principal",
        "svc",
        "--scopes",
        "a,b",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let key = stdout
        .lines()
        .find_map(|l| l.split("it is not stored anywhere): ").nth(1))
        .expect("key line")
        .trim()
        .to_string();
    let hash = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("hash: "))
        .expect("hash line")
        .to_string();
    assert!(hash.starts_with("sha256:"));
    assert!(
        !stdout.contains(&format!("hash: {key}")),
        "the hash line never holds the key"
    );
    let store =
        portcullis_identity::apikey::ApiKeyStore::new([portcullis_identity::apikey::ApiKeyEntry {
            id: "k9".into(),
            hash,
            principal: "svc".into(),
            scopes: vec!["a".into(), "b".into()],
            tier: None,
            expires: None,
        }])
        .unwrap();
    let identity = store.authenticate(&key).unwrap();
    assert_eq!(identity.principal, "svc");
    assert!(store.authenticate("pk_wrong").is_err());
}

#[test]
fn rules_check_lists_the_bundled_pack_and_fails_on_a_broken_rule() {
    let out = portcullis(&["rules", "check", repo().join("rules").to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("rules loaded"), "{stdout}");
    assert!(
        stdout.contains("af0b9e5a-8fd6-4fc1-ab16-61c3cc0d30fb"),
        "{stdout}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yml"),
        "title: broken\nlogsource: { category: webserver }\ndetection:\n  sel:\n    cs-uri|nosuchmodifier: x\n  condition: sel\n",
    )
    .unwrap();
    let out = portcullis(&["rules", "check", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.yml") && stderr.contains("nosuchmodifier"),
        "{stderr}"
    );
}

#[test]
fn rules_test_replays_stored_events_and_prints_matches() {
    let rules = repo().join("rules");
    let events = rules.join("tests/api_vulnerability_scanner_user_agent.positive.jsonl");
    let out = portcullis(&[
        "rules",
        "test",
        rules.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let matches = stdout
        .lines()
        .filter(|l| l.contains("Vulnerability Scanner"))
        .count();
    assert!(matches > 0, "{stdout}");
    assert!(stdout.contains("matches"), "{stdout}");

    let negative = rules.join("tests/api_vulnerability_scanner_user_agent.negative.jsonl");
    let out = portcullis(&[
        "rules",
        "test",
        rules.to_str().unwrap(),
        "--events",
        negative.to_str().unwrap(),
    ]);
    assert!(!text(&out.stdout).contains("Vulnerability Scanner"));
}

#[test]
fn rules_convert_writes_queries_for_each_target() {
    let rules = repo().join("rules");
    for (target, needle) in [
        ("splunk", "http_request.user_agent"),
        ("lucene", "http_request.user_agent"),
        ("esql", "from"),
        ("kql", "http_request.user_agent"),
    ] {
        let out = portcullis(&[
            "rules",
            "convert",
            "--target",
            target,
            rules.to_str().unwrap(),
        ]);
        let stdout = text(&out.stdout);
        assert!(stdout.contains(needle), "{target}: {stdout}");
        assert!(
            stdout.lines().filter(|l| l.starts_with("# ")).count() >= 20,
            "{target}"
        );
    }
    let out = portcullis(&[
        "rules",
        "convert",
        "--target",
        "nosuchsiem",
        rules.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}
