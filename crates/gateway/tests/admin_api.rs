//! The admin API: the bearer token guards `/metrics`, `/config` and `/reload` (and only
//! those), `/config` never shows the token, `/metrics` exposes the gateway's counters, and
//! validation refuses an admin section that would be open or weakly guarded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const TOKEN: &str = "admin-api-test-token-4f9c2e";

/// `{token}` is replaced by the admin token as written in the file.
const YAML: &str = r#"
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
    match: { path_prefix: /api }
events:
  file: {dir}/events.jsonl
admin:
  address: 127.0.0.1:0
  token: "{token}"
"#;

async fn gateway(token_in_file: &str, up: &Upstream) -> TestGateway {
    TestGateway::start(&YAML.replace("{token}", token_in_file), up).await
}

fn assert_unauthorized(got: &Got, what: &str) {
    assert_eq!(got.status, 401, "{what}: {}", got.text());
    assert_eq!(
        got.header("www-authenticate"),
        Some("Bearer realm=\"portcullis-admin\""),
        "{what}"
    );
    assert_eq!(got.header("content-type"), Some("application/problem+json"));
    assert_eq!(got.json()["status"], 401);
}

#[tokio::test]
async fn protected_endpoints_refuse_missing_wrong_and_different_length_tokens() {
    let up = Upstream::start().await;
    let mut gw = gateway(TOKEN, &up).await;
    let admin = gw.admin();

    let same_length_wrong: String = TOKEN
        .chars()
        .map(|c| if c == 'a' { 'b' } else { c })
        .collect();
    assert_eq!(same_length_wrong.len(), TOKEN.len());
    assert_ne!(same_length_wrong, TOKEN);
    let prefix = &TOKEN[..TOKEN.len() - 1];
    let longer = format!("{TOKEN}x");

    for (method, path) in [("GET", "/metrics"), ("GET", "/config"), ("POST", "/reload")] {
        let what = format!("{method} {path}");
        assert_unauthorized(&admin_request(admin, method, path, None).await, &what);
        for bad in [&same_length_wrong[..], prefix, &longer[..], "", "x"] {
            let got = admin_request(admin, method, path, Some(bad)).await;
            assert_unauthorized(&got, &format!("{what} with token {bad:?}"));
        }
        // The right token under another scheme, or without one, is no bearer token.
        for header in [format!("Basic {TOKEN}"), TOKEN.to_string()] {
            let got = send(
                http::Request::builder()
                    .method(method)
                    .uri(format!("http://{admin}{path}"))
                    .header("authorization", header.as_str())
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap(),
            )
            .await;
            assert_unauthorized(&got, &format!("{what} with {header:?}"));
        }
        let got = admin_request(admin, method, path, Some(TOKEN)).await;
        assert_eq!(
            got.status,
            200,
            "{what} with the right token: {}",
            got.text()
        );
    }
    // Refusals did not run the handler: only the one accepted reload happened.
    assert_eq!(gw.gateway().generation(), 2);

    // Health probes are open.
    let health = admin_request(admin, "GET", "/healthz", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.text(), "ok\n");
    let ready = admin_request(admin, "GET", "/readyz", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["ready"], true);
    assert_eq!(ready.json()["config_generation"], 2);
    assert_eq!(ready.json()["routes"], 1);

    // Unknown admin paths are 404, with or without a token.
    assert_eq!(admin_request(admin, "GET", "/nope", None).await.status, 404);
    gw.stop().await;
}

#[tokio::test]
async fn config_shows_the_active_config_with_the_token_redacted() {
    let up = Upstream::start().await;
    let mut gw = gateway(TOKEN, &up).await;
    let got = admin_request(gw.admin(), "GET", "/config", Some(TOKEN)).await;
    assert_eq!(got.status, 200);
    let body = got.text();
    assert!(!body.contains(TOKEN), "the token leaked: {body}");
    let doc = got.json();
    assert_eq!(doc["generation"], 1);
    assert_eq!(doc["config"]["admin"]["token"], "[REDACTED]");
    assert_eq!(doc["config"]["routes"][0]["name"], "app");
    assert_eq!(doc["config"]["routes"][0]["path_prefix"], "/api");
    assert_eq!(
        doc["config"]["upstreams"]["app"]["targets"][0]["authority"],
        up.addr.to_string()
    );
    gw.stop().await;
}

#[tokio::test]
async fn file_token_is_resolved_and_redacted() {
    let up = Upstream::start().await;
    let secret_dir = tempfile::tempdir().unwrap();
    let path = secret_dir.path().join("admin-token");
    std::fs::write(&path, "file-token-7d1e0b93a2\n").unwrap();
    let mut gw = gateway(&format!("${{file:{}}}", path.display()), &up).await;
    let admin = gw.admin();
    // The trailing newline is not part of the token.
    assert_eq!(
        admin_request(admin, "GET", "/config", Some("file-token-7d1e0b93a2"))
            .await
            .status,
        200
    );
    let got = admin_request(admin, "GET", "/config", Some("file-token-7d1e0b93a2")).await;
    assert!(!got.text().contains("file-token-7d1e0b93a2"));
    assert_eq!(got.json()["config"]["admin"]["token"], "[REDACTED]");
    // The reference itself is not a token.
    let reference = format!("${{file:{}}}", path.display());
    assert_unauthorized(
        &admin_request(admin, "GET", "/config", Some(&reference)).await,
        "the ${file:} reference",
    );
    gw.stop().await;
}

const ENV_NAME: &str = "PORTCULLIS_ADMIN_API_TEST_TOKEN";

/// `${env:NAME}` needs a variable in the gateway's environment, and setting one in this
/// process is `unsafe` (forbidden here). So this test runs the test below in a child process
/// of this same test binary with the variable set.
#[tokio::test]
async fn env_token_is_resolved_and_redacted() {
    let token = format!("env-token-{:016x}", rand::random::<u64>());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "env_token_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_NAME, &token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("test env_token_child ... ok") && stdout.contains("1 passed"),
        "the child did not run the test:\n{stdout}"
    );
}

#[tokio::test]
#[ignore = "run by env_token_is_resolved_and_redacted in a child process with the variable set"]
async fn env_token_child() {
    let token = std::env::var(ENV_NAME).expect("run by env_token_is_resolved_and_redacted");
    let up = Upstream::start().await;
    let mut gw = gateway(&format!("${{env:{ENV_NAME}}}"), &up).await;
    let admin = gw.admin();
    let got = admin_request(admin, "GET", "/config", Some(&token)).await;
    assert_eq!(got.status, 200, "the env token is the token");
    assert!(
        !got.text().contains(&token),
        "the token leaked: {}",
        got.text()
    );
    assert_eq!(got.json()["config"]["admin"]["token"], "[REDACTED]");
    let reference = format!("${{env:{ENV_NAME}}}");
    assert_unauthorized(
        &admin_request(admin, "GET", "/config", Some(&reference)).await,
        "the ${env:} reference",
    );
    gw.stop().await;
}

/// The value of the sample line `name{labels}` (or `name` alone) in a metrics text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
}

/// Scrape until `series` has `value` (the event, and so the metric, is recorded just after
/// the last response byte has gone), up to 2 s; returns the last scrape.
async fn scrape_until(admin: std::net::SocketAddr, series: &str, value: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = admin_request(admin, "GET", "/metrics", Some(TOKEN)).await;
        assert_eq!(got.status, 200);
        let text = got.text();
        if sample(&text, series) == Some(value) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_count_requests_latency_events_and_reloads() {
    let up = Upstream::start().await;
    // The token comes from a file, so that a reload can be made to fail without touching
    // the config file (which the file watcher would also reload).
    let secret_dir = tempfile::tempdir().unwrap();
    let token_file = secret_dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut gw = gateway(&format!("${{file:{}}}", token_file.display()), &up).await;
    let admin = gw.admin();

    for i in 0..3 {
        assert_eq!(get(&gw.url(&format!("/api/m/{i}"))).await.status, 200);
    }
    assert_eq!(get(&gw.url("/elsewhere")).await.status, 404);
    assert_eq!(
        admin_request(admin, "POST", "/reload", Some(TOKEN))
            .await
            .status,
        200
    );
    // A refused reload (the token file is gone) counts as a failure.
    std::fs::remove_file(&token_file).unwrap();
    let refused = admin_request(admin, "POST", "/reload", Some(TOKEN)).await;
    assert_eq!(refused.status, 422, "{}", refused.text());

    let text = scrape_until(admin, "portcullis_request_duration_seconds_count", 4.0).await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect(
        r#"portcullis_requests_total{route="app",status_class="2xx",action="allowed"}"#,
        3.0,
    );
    expect(
        r#"portcullis_requests_total{route="",status_class="4xx",action="denied"}"#,
        1.0,
    );
    expect("portcullis_request_duration_seconds_count", 4.0);
    expect(
        r#"portcullis_request_duration_seconds_bucket{le="+Inf"}"#,
        4.0,
    );
    assert!(text.contains("# TYPE portcullis_request_duration_seconds histogram"));
    let sum = sample(&text, "portcullis_request_duration_seconds_sum").unwrap();
    assert!(sum > 0.0 && sum < 4.0, "latency sum {sum}");
    expect("portcullis_events_dropped", 0.0);
    expect("portcullis_events_emitted", 4.0 + 1.0 + 2.0); // requests, start, reloads
    expect(r#"portcullis_config_reloads_total{result="success"}"#, 1.0);
    expect(r#"portcullis_config_reloads_total{result="failure"}"#, 1.0);
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics text ends with # EOF"
    );
    // The admin API's own requests are not gateway requests.
    assert!(!text.contains("route=\"admin\""));
    gw.stop().await;
}

// --- Validation of the admin section -------------------------------------------------------

fn parse(admin: &str) -> Result<portcullis_gateway::config::Config, String> {
    let text = format!("listeners:\n  - address: 127.0.0.1:8080\nevents:\n  file: \"\"\n{admin}");
    portcullis_gateway::config::parse(Path::new("/etc/portcullis/test.yaml"), &text)
        .map_err(|e| e.to_string())
}

#[test]
fn admin_section_without_a_token_is_refused() {
    // Line 5 is `admin:`; a missing field is placed at its parent's value (line 6, column 3).
    let err = parse("admin:\n  address: 127.0.0.1:9901\n").unwrap_err();
    assert!(
        err.starts_with(
            "/etc/portcullis/test.yaml:6:3: admin.token: the admin API needs a bearer token"
        ),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Without an address either (the default is loopback): still refused.
    let err = parse("admin: {}\n").unwrap_err();
    assert!(
        err.contains("admin.token: the admin API needs a bearer token"),
        "{err}"
    );
}

#[test]
fn non_loopback_admin_needs_a_long_token() {
    assert_eq!("short-token-15c".len(), 15);
    assert_eq!("long-token-16chr".len(), 16);
    for address in ["0.0.0.0:9901", "192.0.2.10:9901", "[::]:9901"] {
        let err = parse(&format!(
            "admin:\n  address: \"{address}\"\n  token: short-token-15c\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("admin.token: an admin API on a non-loopback address needs a token of at least 16 characters"),
            "{address}: {err}"
        );
        assert!(
            !err.contains("short-token-15c"),
            "the token is never echoed: {err}"
        );
        // 16 characters is enough.
        let cfg = parse(&format!(
            "admin:\n  address: \"{address}\"\n  token: long-token-16chr\n"
        ))
        .unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(cfg.admin.unwrap().token.expose(), "long-token-16chr");
    }
    // On loopback a short token is accepted.
    for address in ["127.0.0.1:9901", "[::1]:9901"] {
        let cfg = parse(&format!("admin:\n  address: \"{address}\"\n  token: abc\n"))
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        assert_eq!(cfg.admin.unwrap().token.expose(), "abc");
    }
}
