//! Request restrictions, end to end: what a client may send before anything is forwarded —
//! a body within the route's limit (declared or streamed), an allowed method and media type,
//! no credentials in the URL, and an unambiguous path. Every refusal is problem+json, never
//! reaches the upstream, and is recorded in the request's event without the secret value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(3);

/// `/api`: 1 KiB bodies, GET and POST, JSON only. `/custom`: its own credential list.
/// Everything else: defaults.
const RESTRICTED: &str = r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: api
    upstream: app
    auth:
      public: true
    match: { path_prefix: /api }
    request:
      max_body: 1KiB
      allowed_methods: [GET, POST]
      allowed_content_types: [application/json]
  - name: custom
    upstream: app
    auth:
      public: true
    match: { path_prefix: /custom }
    request:
      credential_params: [session_id, X-Sig]
  - name: open
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;

fn post(url: &str, content_type: Option<&str>, body: &[u8]) -> Request<Full<Bytes>> {
    let mut b = Request::post(url);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}

fn rid(got: &Got) -> String {
    got.header("x-request-id").unwrap().to_string()
}

fn reason(ev: &Value) -> &str {
    ev["unmapped"]["reason"].as_str().unwrap_or_default()
}

// ---------------------------------------------------------------- body size

#[tokio::test]
async fn declared_body_over_the_limit_is_413_before_the_body_is_read() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    // Declare 1 MiB and send only a few bytes: the refusal must come from the declared
    // length alone, without waiting for (or forwarding) the body.
    let got = raw_exchange(
        gw.addr(0),
        b"POST /api/items HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
          Content-Length: 1048576\r\n\r\n{\"a\":",
        WAIT,
    )
    .await;
    let doc = assert_raw_problem(&got, 413, "body_too_large");
    assert_eq!(doc["detail"], "the request body is limited to 1024 bytes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(up.count(), 0, "the upstream must never see the request");

    let events = gw.stop().await;
    let ev = event_by_id(&events, got.header("x-request-id").unwrap());
    assert_eq!(ev["http_response"]["code"], 413);
    assert_eq!(ev["action"], "Denied");
    assert_eq!(reason(ev), "body_too_large");
    assert_eq!(ev["unmapped"]["route"], "api");
    assert!(
        ev["unmapped"].get("upstream").is_none(),
        "nothing was forwarded: {ev}"
    );
}

#[tokio::test]
async fn declared_body_one_byte_over_is_refused_and_exactly_at_the_limit_passes() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(RESTRICTED, &up).await;
    let over = send(post(
        &gw.url("/api/x"),
        Some("application/json"),
        &[b' '; 1025],
    ))
    .await;
    assert_problem(&over, 413, "body_too_large");
    let at = send(post(
        &gw.url("/api/x"),
        Some("application/json"),
        &[b' '; 1024],
    ))
    .await;
    assert_eq!(at.status, 200, "{}", at.text());
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body.len(), 1024);
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_cut_while_streaming() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let mut s = TcpStream::connect(gw.addr(0)).await.unwrap();
    s.write_all(
        b"POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\nX-Request-Id: chunked-over-1\r\n\r\n",
    )
    .await
    .unwrap();
    // 600 + 600 bytes in two chunks, a pause between them, and no last chunk: the client is
    // still "sending" when the gateway must already have refused.
    for _ in 0..2 {
        s.write_all(format!("258\r\n{}\r\n", "z".repeat(600)).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = read_one_response(&mut s, WAIT)
        .await
        .expect("the gateway must answer before the body ends");
    let doc = assert_raw_problem(&got, 413, "body_too_large");
    assert_eq!(doc["request_id"], "chunked-over-1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        up.count(),
        0,
        "the upstream must never receive a complete request"
    );
    drop(s);

    let events = gw.stop().await;
    let ev = event_by_id(&events, "chunked-over-1");
    assert_eq!(ev["http_response"]["code"], 413);
    assert_eq!(reason(ev), "body_too_large");
    assert_eq!(ev["action"], "Denied");
    // The meter stops at the chunk that crossed the limit.
    let bytes_in = ev["http_request"]["length"].as_u64().unwrap();
    assert!(bytes_in > 1024 && bytes_in <= 1200, "bytes_in {bytes_in}");
}

#[tokio::test]
async fn streamed_body_without_length_over_the_limit_is_413() {
    // The same through hyper's client, with a body of unknown length.
    let up = Upstream::start().await;
    let gw = TestGateway::start(RESTRICTED, &up).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let feeder = tokio::spawn(async move {
        for _ in 0..8 {
            if tx.send(Bytes::from(vec![b'q'; 512])).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<ChannelBody>();
    let req = Request::post(gw.url("/api/stream"))
        .header("content-type", "application/json")
        .body(ChannelBody { rx })
        .unwrap();
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    feeder.abort();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(up.count(), 0);
}

#[tokio::test]
async fn bodies_under_the_limit_pass_declared_and_chunked() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(RESTRICTED, &up).await;
    let got = send(post(
        &gw.url("/api/x"),
        Some("application/json"),
        &[b'1'; 100],
    ))
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["body_len"], 100);

    let got = raw_exchange(
        gw.addr(0),
        b"POST /api/y HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2\r\n2]\r\n0\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(got.status, 200, "{}", got.text);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, vec![b'1'; 100]);
    assert_eq!(seen[1].body, b"[1,2]");
}

// ---------------------------------------------------------------- methods and media types

#[tokio::test]
async fn disallowed_method_is_405_with_allow() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    for method in ["DELETE", "PUT", "PATCH", "TRACE"] {
        let got = send(
            Request::builder()
                .method(method)
                .uri(gw.url("/api/items/1"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await;
        assert_problem(&got, 405, "method_not_allowed");
        assert_eq!(got.header("allow"), Some("GET, POST"), "{method}");
    }
    // An allowed method on the same route goes through.
    assert_eq!(get(&gw.url("/api/items/1")).await.status, 200);
    assert_eq!(up.count(), 1);
    let seen = up.seen();
    assert_eq!(seen[0].method, "GET");
    let events = gw.stop().await;
    let denied: Vec<&Value> = events
        .iter()
        .filter(|e| reason(e) == "method_not_allowed")
        .collect();
    assert_eq!(denied.len(), 4);
    assert!(denied.iter().all(|e| e["http_response"]["code"] == 405));
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonp"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let got = send(post(&gw.url("/api/x"), ct, b"{}")).await;
        let doc = assert_problem(&got, 415, "unsupported_media_type");
        assert_eq!(
            doc["detail"], "accepted request media types: application/json",
            "{ct:?}"
        );
    }
    // A chunked body is a body too.
    let got = raw_exchange(
        gw.addr(0),
        b"POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Type: text/xml\r\n\
          Transfer-Encoding: chunked\r\nX-Request-Id: te-xml\r\n\r\n2\r\n<a\r\n0\r\n\r\n",
        WAIT,
    )
    .await;
    assert_raw_problem(&got, 415, "unsupported_media_type");
    assert_eq!(up.count(), 0);
    let events = gw.stop().await;
    assert_eq!(events.len(), 6);
    assert!(events.iter().all(|e| reason(e) == "unsupported_media_type"
        && e["http_response"]["code"] == 415
        && e["action"] == "Denied"));
}

#[tokio::test]
async fn allowed_content_type_with_parameters_and_any_case_passes() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(RESTRICTED, &up).await;
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ] {
        let got = send(post(&gw.url("/api/x"), Some(ct), b"{\"ok\":1}")).await;
        assert_eq!(got.status, 200, "{ct}: {}", got.text());
    }
    // No body, no type needed.
    assert_eq!(get(&gw.url("/api/x")).await.status, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        seen[1].header("content-type"),
        Some("application/json; charset=utf-8")
    );
}

// ---------------------------------------------------------------- credentials in the URL

#[tokio::test]
async fn every_default_credential_parameter_is_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let names = [
        "api_key",
        "apikey",
        "api-key",
        "access_token",
        "token",
        "password",
        "passwd",
        "secret",
        "client_secret",
        "key",
    ];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let value = format!("Sup3rS3cretValue{i}x");
        let got = get(&gw.url(&format!("/v1/things?page=2&{name}={value}&q=a"))).await;
        let doc = assert_problem(&got, 400, "credential_in_url");
        assert_eq!(
            doc["detail"],
            format!("the query parameter `{name}` carries a credential; send it in a header")
        );
        assert!(!got.text().contains(&value));
        ids.push((rid(&got), *name, value));
    }
    assert_eq!(
        up.count(),
        0,
        "no request with a credential in its URL is forwarded"
    );

    let events = gw.stop().await;
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    for (id, name, value) in &ids {
        let ev = event_by_id(&events, id);
        assert_eq!(ev["http_response"]["code"], 400);
        assert_eq!(reason(ev), "credential_in_url");
        assert_eq!(
            findings(ev),
            vec![("query_parameter".to_string(), Some(format!("query.{name}")))]
        );
        assert_eq!(ev["unmapped"]["findings"][0]["kind"], "credential_in_url");
        assert_eq!(
            ev["http_request"]["url"]["query_string"],
            format!("page=2&{name}=[REDACTED]&q=a")
        );
        assert!(
            !raw_file.contains(value.as_str()),
            "secret for {name} leaked into events"
        );
    }
}

#[tokio::test]
async fn encoded_and_case_variant_parameter_names_are_refused() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let variants = [
        ("api%5Fkey", "api_key"),
        ("api%5fkey", "api_key"),
        ("%61pi_key", "api_key"),
        ("API_KEY", "api_key"),
        ("Api_Key", "api_key"),
        ("ACCESS%5FTOKEN", "access_token"),
        ("Password", "password"),
        ("to%6Ben", "token"),
    ];
    let mut ids = Vec::new();
    for (i, (raw_name, canonical)) in variants.iter().enumerate() {
        let value = format!("EncodedS3cret{i}z");
        let got = get(&gw.url(&format!("/v1/x?{raw_name}={value}"))).await;
        assert_problem(&got, 400, "credential_in_url");
        ids.push((rid(&got), *canonical, value));
    }
    assert_eq!(up.count(), 0);
    let events = gw.stop().await;
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    for (id, canonical, value) in &ids {
        let ev = event_by_id(&events, id);
        assert_eq!(
            findings(ev),
            vec![(
                "query_parameter".to_string(),
                Some(format!("query.{canonical}"))
            )]
        );
        assert!(
            !raw_file.contains(value.as_str()),
            "{value} leaked into events"
        );
    }
}

#[tokio::test]
async fn a_credential_behind_a_semicolon_separator_is_refused() {
    // Some frameworks (Rack, older Python) also split queries on `;`, and the event redactor
    // does too: `?page=1;api_key=…` carries a credential just the same.
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let got = get(&gw.url("/v1/x?page=1;api_key=Semic0lonS3cret")).await;
    let doc = assert_problem(&got, 400, "credential_in_url");
    assert_eq!(
        doc["detail"],
        "the query parameter `api_key` carries a credential; send it in a header"
    );
    assert_eq!(up.count(), 0);
    let id = rid(&got);
    let events = gw.stop().await;
    assert_eq!(
        findings(event_by_id(&events, &id)),
        vec![(
            "query_parameter".to_string(),
            Some("query.api_key".to_string())
        )]
    );
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    assert!(!raw_file.contains("Semic0lonS3cret"));
}

#[tokio::test]
async fn parameters_that_only_resemble_credentials_pass() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(RESTRICTED, &up).await;
    for q in [
        "keyword=rust",
        "monkey=1",
        "token_type=bearer",
        "x=api_key",
        "sort=key",
    ] {
        let got = get(&gw.url(&format!("/v1/x?{q}"))).await;
        assert_eq!(got.status, 200, "{q}: {}", got.text());
    }
    assert_eq!(up.count(), 5);
}

#[tokio::test]
async fn a_configured_credential_list_replaces_the_default() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    // The route's own names are refused, in any case...
    let got = get(&gw.url("/custom/a?session_id=CustomS3cretAAA")).await;
    assert_problem(&got, 400, "credential_in_url");
    let refused_id = rid(&got);
    let got = get(&gw.url("/custom/a?x-sig=CustomS3cretBBB")).await;
    assert_problem(&got, 400, "credential_in_url");
    // ...and the default names are no longer refused on that route...
    let got = get(&gw.url("/custom/a?api_key=NotRefusedHere1")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    // ...while every other route keeps the defaults and ignores the custom names.
    assert_problem(
        &get(&gw.url("/other?api_key=DefaultS3cret")).await,
        400,
        "credential_in_url",
    );
    assert_eq!(get(&gw.url("/other?session_id=abc")).await.status, 200);

    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].path_and_query, "/custom/a?api_key=NotRefusedHere1");
    assert_eq!(seen[1].path_and_query, "/other?session_id=abc");

    let events = gw.stop().await;
    let ev = event_by_id(&events, &refused_id);
    assert_eq!(
        findings(ev),
        vec![(
            "query_parameter".to_string(),
            Some("query.session_id".to_string())
        )]
    );
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    for secret in [
        "CustomS3cretAAA",
        "CustomS3cretBBB",
        "DefaultS3cret",
        "NotRefusedHere1",
    ] {
        assert!(!raw_file.contains(secret), "{secret} leaked into events");
    }
}

#[tokio::test]
async fn userinfo_in_an_absolute_form_target_is_refused() {
    // On HTTP/1 the strict framing reader refuses userinfo in the request-target before
    // hyper parses it (RFC 9110 §4.2.4), so the pipeline answers for a placeholder: the
    // password never reaches the event, whose path and host are the placeholder's.
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let got = raw_exchange(
        gw.addr(0),
        b"GET http://alice:Us3rinfoPw@api.example.com/v1/x HTTP/1.1\r\n\
          Host: api.example.com\r\n\r\n",
        WAIT,
    )
    .await;
    let doc = assert_raw_problem(&got, 400, "invalid_framing");
    assert_eq!(doc["detail"], "the request is malformed (invalid_target)");
    assert!(!got.text.contains("Us3rinfoPw"));
    assert_eq!(up.count(), 0);

    let events = gw.stop().await;
    let ev = event_by_id(&events, got.header("x-request-id").unwrap());
    assert_eq!(ev["http_response"]["code"], 400);
    assert_eq!(ev["action"], "Denied");
    assert_eq!(reason(ev), "invalid_framing");
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    assert!(
        !raw_file.contains("Us3rinfoPw"),
        "userinfo password leaked into events"
    );
    assert!(
        !raw_file.contains("alice"),
        "userinfo user leaked into events"
    );
}

#[tokio::test]
async fn userinfo_in_the_host_header_is_refused_and_not_logged() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let got = raw_exchange(
        gw.addr(0),
        b"GET /v1/x HTTP/1.1\r\nHost: bob:H0stHeaderPw@api.example.com\r\n\r\n",
        WAIT,
    )
    .await;
    let doc = assert_raw_problem(&got, 400, "invalid_framing");
    assert_eq!(doc["detail"], "the request is malformed (invalid_host)");
    assert_eq!(up.count(), 0);
    let events = gw.stop().await;
    let ev = event_by_id(&events, got.header("x-request-id").unwrap());
    assert_eq!(reason(ev), "invalid_framing");
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    assert!(
        !raw_file.contains("H0stHeaderPw"),
        "Host userinfo leaked into events"
    );
}

#[tokio::test]
async fn userinfo_in_an_http2_authority_is_refused_with_a_finding() {
    // HTTP/2 has no framing reader in front of it: here the pipeline's own check answers.
    let up = Upstream::start().await;
    let tls = TlsGateway::start(&up).await;
    let req = Request::get(format!(
        "https://carol:H2Us3rinfoPw@localhost:{}/v1/x",
        tls.gw.addr(0).port()
    ))
    .header("x-request-id", "h2-userinfo")
    .body(Full::new(Bytes::new()))
    .unwrap();
    let got = tls.h2(req).await;
    let doc = assert_problem(&got, 400, "credential_in_url");
    assert_eq!(doc["detail"], "credentials are not accepted in the URL");
    assert_eq!(doc["request_id"], "h2-userinfo");
    assert_eq!(up.count(), 0);
    let mut gw = tls.gw;
    let events = gw.stop().await;
    let ev = event_by_id(&events, "h2-userinfo");
    assert_eq!(
        findings(ev),
        vec![("userinfo".to_string(), Some("url.userinfo".to_string()))]
    );
    assert_eq!(ev["unmapped"]["findings"][0]["kind"], "credential_in_url");
    assert_eq!(ev["http_request"]["url"]["hostname"], "localhost");
    let raw_file = std::fs::read_to_string(&gw.events_path).unwrap();
    assert!(
        !raw_file.contains("H2Us3rinfoPw"),
        "userinfo password leaked into events"
    );
}

// ---------------------------------------------------------------- ambiguous paths

#[tokio::test]
async fn ambiguous_paths_are_400_and_not_forwarded() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(RESTRICTED, &up).await;
    let paths = [
        "/a/../b",
        "/api/../admin",
        "/a/./b",
        "/a/%2e%2e/b",
        "/a/%2E%2E/b",
        "/a/.%2e/b",
        "/a%2fb",
        "/api%2F..%2Fadmin",
        "/a%5cb",
        "/a\\b",
        "/a/%00",
    ];
    for (i, p) in paths.iter().enumerate() {
        let req = format!("GET {p} HTTP/1.1\r\nHost: a\r\nX-Request-Id: amb-{i}\r\n\r\n");
        let got = raw_exchange(gw.addr(0), req.as_bytes(), WAIT).await;
        let doc = assert_raw_problem(&got, 400, "ambiguous_path");
        assert_eq!(doc["request_id"], format!("amb-{i}"), "{p}");
        assert_eq!(
            doc["detail"],
            "the path contains dot segments or encoded separators"
        );
    }
    // Names that merely contain dots are fine.
    let got = raw_exchange(
        gw.addr(0),
        b"GET /v1.2/a..b/file.json HTTP/1.1\r\nHost: a\r\n\r\n",
        WAIT,
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(up.count(), 1);
    assert_eq!(up.seen()[0].path_and_query, "/v1.2/a..b/file.json");

    let events = gw.stop().await;
    for i in 0..paths.len() {
        let ev = event_by_id(&events, &format!("amb-{i}"));
        assert_eq!(reason(ev), "ambiguous_path");
        assert_eq!(ev["http_response"]["code"], 400);
        assert_eq!(ev["action"], "Denied");
    }
}

// ---------------------------------------------------------------- HTTP/2

/// The restricted gateway behind a TLS listener offering h2, with a certificate for
/// `localhost` that the test client trusts.
struct TlsGateway {
    gw: TestGateway,
    cert: TestCert,
    _certs: tempfile::TempDir,
}

impl TlsGateway {
    async fn start(up: &Upstream) -> TlsGateway {
        let certs = tempfile::tempdir().unwrap();
        let cert = make_cert(certs.path(), "gw", &["localhost"]);
        let listener = format!(
            "  - address: 127.0.0.1:0\n    tls:\n      certificates:\n        - cert: {}\n          key: {}\n",
            cert.cert_path.display(),
            cert.key_path.display()
        );
        let yaml = RESTRICTED.replace("  - address: 127.0.0.1:0\n", &listener);
        let gw = TestGateway::start(&yaml, up).await;
        TlsGateway {
            gw,
            cert,
            _certs: certs,
        }
    }

    /// One request over a fresh HTTP/2 connection.
    async fn h2<B>(&self, req: Request<B>) -> Got
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let cfg = tls_client_config(&[&self.cert.der], &[b"h2"]);
        let io = tls_connect(self.gw.addr(0), "localhost", cfg)
            .await
            .unwrap();
        assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(io),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let resp = tokio::time::timeout(WAIT, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        let (parts, body) = resp.into_parts();
        let body = http_body_util::BodyExt::collect(body)
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Got {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// A body of `chunks` that declares no length: over HTTP/2 it goes without
/// `content-length`, END_STREAM arriving only with the last DATA frame.
fn unsized_body(chunks: Vec<Bytes>) -> ChannelBody {
    let (tx, rx) = tokio::sync::mpsc::channel(chunks.len().max(1));
    for c in chunks {
        tx.try_send(c).unwrap();
    }
    ChannelBody { rx }
}

#[tokio::test]
async fn http2_body_without_content_length_is_still_checked_for_media_type() {
    let up = Upstream::start().await;
    let tls = TlsGateway::start(&up).await;
    let url = format!("https://localhost:{}/api/x", tls.gw.addr(0).port());
    // Wrong type, and no type at all.
    for ct in [Some("text/plain"), None] {
        let mut b = Request::post(&url);
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let req = b
            .body(unsized_body(vec![Bytes::from_static(b"hello")]))
            .unwrap();
        let got = tls.h2(req).await;
        assert_problem(&got, 415, "unsupported_media_type");
    }
    assert_eq!(
        up.count(),
        0,
        "a body of an unaccepted type must not be forwarded"
    );
    // The accepted type goes through, and so does a GET without a body.
    let req = Request::post(&url)
        .header("content-type", "application/json")
        .body(unsized_body(vec![Bytes::from_static(b"{}")]))
        .unwrap();
    assert_eq!(tls.h2(req).await.status, 200);
    let req = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(tls.h2(req).await.status, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, b"{}");
}

#[tokio::test]
async fn http2_body_without_content_length_over_the_limit_is_413() {
    let up = Upstream::start().await;
    let tls = TlsGateway::start(&up).await;
    let url = format!("https://localhost:{}/api/x", tls.gw.addr(0).port());
    let chunks = (0..4).map(|_| Bytes::from(vec![b' '; 512])).collect();
    let req = Request::post(&url)
        .header("content-type", "application/json")
        .body(unsized_body(chunks))
        .unwrap();
    let got = tls.h2(req).await;
    assert_problem(&got, 413, "body_too_large");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(up.count(), 0);
}
