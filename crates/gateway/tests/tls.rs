//! TLS listeners end to end: certificates chosen by SNI, TLS 1.2 and 1.3 only (older clients
//! and non-AEAD suites refused at the handshake), ALPN for HTTP/2 and HTTP/1.1, HSTS on every
//! TLS response and never on plain HTTP, `tls: self_signed`, and the HTTP → HTTPS redirect
//! listener.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{AlertDescription, DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Two certificates (`api.test`, `other.test`) as PEM files in their own directory.
struct Certs {
    _dir: tempfile::TempDir,
    api: TestCert,
    other: TestCert,
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let api = make_cert(dir.path(), "api", &["api.test"]);
    let other = make_cert(dir.path(), "other", &["other.test"]);
    Certs {
        _dir: dir,
        api,
        other,
    }
}

/// Listener 0: TLS with both certificates (api.test first, so it is the default) and HSTS
/// `max-age=600; includeSubDomains`. Listener 1: plain HTTP (on 127.0.0.2: two listeners on
/// `127.0.0.1:0` would be refused as the same address). Routes `/api` and
/// `/status` (the upstream's status endpoint).
/// `{tls_extra}` is spliced into the TLS section.
const TLS_YAML: &str = r#"
listeners:
  - address: 127.0.0.1:0
    tls:
      certificates:
        - { cert: "{api_cert}", key: "{api_key}" }
        - { cert: "{other_cert}", key: "{other_key}" }
      hsts_max_age: 600
      hsts_include_subdomains: true
{tls_extra}
  - address: 127.0.0.2:0
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
    match: { path_prefix: /api }
  - name: status
    upstream: app
    auth:
      public: true
    match: { path_prefix: /status }
events:
  file: {dir}/events.jsonl
"#;

const HSTS: &str = "max-age=600; includeSubDomains";

fn tls_yaml(c: &Certs, tls_extra: &str) -> String {
    TLS_YAML
        .replace("{api_cert}", &c.api.cert_path.display().to_string())
        .replace("{api_key}", &c.api.key_path.display().to_string())
        .replace("{other_cert}", &c.other.cert_path.display().to_string())
        .replace("{other_key}", &c.other.key_path.display().to_string())
        .replace("{tls_extra}", tls_extra)
}

/// Test only: a verifier that accepts any certificate (signatures are still checked, so
/// the handshake itself is real).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn accept_any_client(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

/// A client trusting both test certificates that speaks only `version`.
fn versioned_client(
    c: &Certs,
    version: &'static rustls::SupportedProtocolVersion,
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(c.api.der.clone()).unwrap();
    roots.add(c.other.der.clone()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_protocol_versions(&[version])
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

fn h1_get(host: &str, path: &str, request_id: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .header("x-request-id", request_id)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn event_with_id<'a>(events: &'a [Value], id: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["metadata"]["uid"] == id)
        .collect();
    assert_eq!(found.len(), 1, "exactly one event for {id}: {events:#?}");
    found[0]
}

fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

#[tokio::test]
async fn sni_selects_the_matching_certificate() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let addr = gw.addr(0);

    // A client that trusts only the certificate it expects: the handshake succeeds only if
    // the gateway presented exactly that one, and the presented leaf is compared byte for byte.
    for (sni, expected) in [("api.test", &c.api), ("other.test", &c.other)] {
        let cfg = tls_client_config(&[&expected.der], &[b"http/1.1"]);
        let stream = tls_connect(addr, sni, cfg)
            .await
            .unwrap_or_else(|e| panic!("handshake with SNI {sni}: {e}"));
        let presented = stream.get_ref().1.peer_certificates().unwrap();
        assert_eq!(presented.len(), 1);
        assert_eq!(presented[0], expected.der, "certificate for SNI {sni}");
        let got = h1_over(stream, h1_get(sni, "/api/sni", &format!("sni-{sni}"))).await;
        assert_eq!(got.status, 200);
    }

    // SNI matching ignores case.
    let cfg = tls_client_config(&[&c.other.der], &[]);
    let stream = tls_connect(addr, "OTHER.test", cfg).await.unwrap();
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0],
        c.other.der
    );

    // An unknown name gets the first certificate, not an error and not the other one.
    let stream = tls_connect(addr, "unknown.test", accept_any_client(&[]))
        .await
        .unwrap();
    assert_eq!(
        stream.get_ref().1.peer_certificates().unwrap()[0],
        c.api.der
    );

    // And a client that trusts only other.test but asks for api.test is refused by its own
    // verifier: the gateway did not fall back to a certificate that does not match.
    let cfg = tls_client_config(&[&c.other.der], &[]);
    let err = tls_connect(addr, "api.test", cfg).await.unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{err:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls13_and_tls12_clients_succeed_and_events_record_version_and_cipher() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let addr = gw.addr(0);

    let mut negotiated = Vec::new();
    for (version, name, id) in [
        (&rustls::version::TLS13, "TLSv1.3", "tls13-request"),
        (&rustls::version::TLS12, "TLSv1.2", "tls12-request"),
    ] {
        let stream = tls_connect(addr, "api.test", versioned_client(&c, version))
            .await
            .unwrap_or_else(|e| panic!("{name} handshake: {e}"));
        let session = stream.get_ref().1;
        assert_eq!(session.protocol_version(), Some(version.version));
        let suite = format!("{:?}", session.negotiated_cipher_suite().unwrap().suite());
        let got = h1_over(stream, h1_get("api.test", "/api/version", id)).await;
        assert_eq!(got.status, 200, "{name}");
        negotiated.push((id, name, suite));
    }
    // The server prefers its own order: AES-256-GCM first for both versions (ECDSA key).
    assert_eq!(negotiated[0].2, "TLS13_AES_256_GCM_SHA384");
    assert_eq!(negotiated[1].2, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");

    let events = gw.stop().await;
    for (id, name, suite) in &negotiated {
        let ev = event_with_id(&events, id);
        assert_eq!(ev["tls"]["version"], *name, "{ev:#}");
        assert_eq!(ev["tls"]["cipher"], suite.as_str(), "{ev:#}");
        assert_eq!(ev["http_request"]["url"]["scheme"], "https");
        assert_eq!(ev["http_response"]["code"], 200);
    }
}

#[tokio::test]
async fn min_version_1_3_refuses_a_tls12_client() {
    let up = Upstream::start().await;
    let c = certs();
    let yaml = tls_yaml(&c, "      min_version: \"1.3\"");
    let mut gw = TestGateway::start(&yaml, &up).await;
    let addr = gw.addr(0);

    let err = tls_connect(
        addr,
        "api.test",
        versioned_client(&c, &rustls::version::TLS12),
    )
    .await
    .expect_err("a TLS 1.2 client must be refused when min_version is 1.3");
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))
        ),
        "expected a protocol_version alert, got {err:?}"
    );
    // TLS 1.3 still works on the same listener.
    let stream = tls_connect(
        addr,
        "api.test",
        versioned_client(&c, &rustls::version::TLS13),
    )
    .await
    .unwrap();
    let got = h1_over(stream, h1_get("api.test", "/api/x", "tls13-after-refusal")).await;
    assert_eq!(got.status, 200);
    assert_eq!(
        up.count(),
        1,
        "the refused client never reached the upstream"
    );
    let events = gw.stop().await;
    assert_eq!(events.len(), 1, "a refused handshake is not a request");
}

// --- Raw ClientHellos, for what rustls clients cannot offer ---------------------------------

const TLS_RSA_WITH_AES_128_CBC_SHA: u16 = 0x002f;
const TLS_RSA_WITH_AES_256_CBC_SHA: u16 = 0x0035;
const TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: u16 = 0xc009;
const TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: u16 = 0xc00a;
const TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: u16 = 0xc013;
const TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: u16 = 0xc014;
const TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: u16 = 0xc023;
const TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: u16 = 0xc027;
const TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02b;
const TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: u16 = 0xc02f;

fn push_ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend(kind.to_be_bytes());
    out.extend(u16::try_from(data.len()).unwrap().to_be_bytes());
    out.extend(data);
}

/// A TLS ClientHello record with `legacy_version`, the given cipher suites and the usual
/// pre-1.3 extensions (SNI, groups, point formats, signature algorithms, EMS) — and no
/// `supported_versions`, so `legacy_version` is the highest version the client speaks.
fn client_hello(legacy_version: u16, suites: &[u16], sni: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(legacy_version.to_be_bytes());
    body.extend([0x5a; 32]); // random
    body.push(0); // empty session id
    body.extend(u16::try_from(suites.len() * 2).unwrap().to_be_bytes());
    for s in suites {
        body.extend(s.to_be_bytes());
    }
    body.extend([1, 0]); // compression: null only

    let mut ext = Vec::new();
    let name = sni.as_bytes();
    let mut server_name = Vec::new();
    server_name.extend(u16::try_from(name.len() + 3).unwrap().to_be_bytes());
    server_name.push(0); // host_name
    server_name.extend(u16::try_from(name.len()).unwrap().to_be_bytes());
    server_name.extend(name);
    push_ext(&mut ext, 0x0000, &server_name);
    // supported_groups: x25519, secp256r1, secp384r1
    push_ext(
        &mut ext,
        0x000a,
        &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18],
    );
    // ec_point_formats: uncompressed
    push_ext(&mut ext, 0x000b, &[1, 0]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256,
    // ecdsa_secp384r1_sha384
    push_ext(
        &mut ext,
        0x000d,
        &[0, 8, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03],
    );
    push_ext(&mut ext, 0x0017, &[]); // extended_master_secret
    push_ext(&mut ext, 0xff01, &[0]); // renegotiation_info (initial)
    body.extend(u16::try_from(ext.len()).unwrap().to_be_bytes());
    body.extend(ext);

    let mut handshake = vec![0x01]; // client_hello
    handshake.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(handshake);
    record
}

#[derive(Debug, PartialEq)]
enum ServerAnswer {
    /// A TLS alert record: (level, description).
    Alert(u8, u8),
    /// A handshake record whose first message is a ServerHello.
    ServerHello,
    /// The server closed (or reset) the connection without a record.
    Closed,
    Other(Vec<u8>),
}

/// Send `hello` and classify the first record the server answers with.
async fn answer_to(addr: SocketAddr, hello: &[u8]) -> ServerAnswer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(hello).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_some = async {
        while got.len() < 7 {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_some)
        .await
        .expect("the server neither answered nor closed within 5 s");
    match got.as_slice() {
        [] => ServerAnswer::Closed,
        [0x15, _, _, _, _, level, desc, ..] => ServerAnswer::Alert(*level, *desc),
        [0x16, 0x03, _, _, _, 0x02, ..] => ServerAnswer::ServerHello,
        other => ServerAnswer::Other(other.to_vec()),
    }
}

const ALERT_FATAL: u8 = 2;
const ALERT_HANDSHAKE_FAILURE: u8 = 40;
const ALERT_PROTOCOL_VERSION: u8 = 70;

#[tokio::test]
async fn raw_client_hello_control_gets_a_server_hello() {
    // The hand-built hello is valid: as TLS 1.2 with an AEAD suite the gateway answers it.
    // This is what makes the refusals below about version and suites, not about the bytes.
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let hello = client_hello(
        0x0303,
        &[
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        "api.test",
    );
    assert_eq!(
        answer_to(gw.addr(0), &hello).await,
        ServerAnswer::ServerHello
    );
    gw.stop().await;
}

#[tokio::test]
async fn tls11_client_is_refused_with_a_protocol_version_alert() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let addr = gw.addr(0);

    // A TLS 1.1 client with the suites of its era.
    let era = [
        TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
        TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
        TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
        TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
        TLS_RSA_WITH_AES_128_CBC_SHA,
        TLS_RSA_WITH_AES_256_CBC_SHA,
    ];
    // The same client also offering AEAD suites the gateway accepts: refused all the same,
    // so the refusal is about the version alone.
    let mut with_aead = era.to_vec();
    with_aead.extend([
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ]);
    for suites in [&era[..], &with_aead[..]] {
        // 0x0302 is TLS 1.1; 0x0301 (TLS 1.0) too.
        for version in [0x0302, 0x0301] {
            let answer = answer_to(addr, &client_hello(version, suites, "api.test")).await;
            assert!(
                matches!(
                    answer,
                    ServerAnswer::Alert(ALERT_FATAL, ALERT_PROTOCOL_VERSION) | ServerAnswer::Closed
                ),
                "version {version:#06x} with {suites:04x?}: {answer:?}"
            );
            assert_ne!(answer, ServerAnswer::ServerHello);
        }
    }
    // In practice rustls names the reason: a fatal protocol_version alert.
    let answer = answer_to(addr, &client_hello(0x0302, &with_aead, "api.test")).await;
    assert_eq!(
        answer,
        ServerAnswer::Alert(ALERT_FATAL, ALERT_PROTOCOL_VERSION)
    );
    assert_eq!(up.count(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn only_aead_suites_are_offered_cbc_only_tls12_client_fails_the_handshake() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let addr = gw.addr(0);

    // Only CBC suites, for both ECDSA (the key the gateway has) and RSA certificates.
    for suites in [
        &[TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA][..],
        &[
            TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
            TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
            TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
            TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
            TLS_RSA_WITH_AES_128_CBC_SHA,
        ][..],
    ] {
        let answer = answer_to(addr, &client_hello(0x0303, suites, "api.test")).await;
        assert_eq!(
            answer,
            ServerAnswer::Alert(ALERT_FATAL, ALERT_HANDSHAKE_FAILURE),
            "suites {suites:04x?}"
        );
    }
    assert_eq!(up.count(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn alpn_negotiates_http2_and_http11() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let addr = gw.addr(0);

    // h2 only.
    let stream = tls_connect(addr, "api.test", tls_client_config(&[&c.api.der], &[b"h2"]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let got = h2_over(
        stream,
        Request::get("https://api.test/api/over-h2")
            .header("x-request-id", "alpn-h2")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["path"], "/api/over-h2");
    assert_eq!(got.header("strict-transport-security"), Some(HSTS));

    // Both offered: the gateway picks h2.
    let stream = tls_connect(
        addr,
        "api.test",
        tls_client_config(&[&c.api.der], &[b"http/1.1", b"h2"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(stream);

    // http/1.1 only.
    let stream = tls_connect(
        addr,
        "api.test",
        tls_client_config(&[&c.api.der], &[b"http/1.1"]),
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let got = h1_over(stream, h1_get("api.test", "/api/over-h1", "alpn-h1")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["path"], "/api/over-h1");

    // No ALPN at all: HTTP/1.1.
    let stream = tls_connect(addr, "api.test", tls_client_config(&[&c.api.der], &[]))
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let got = h1_over(stream, h1_get("api.test", "/api/no-alpn", "no-alpn")).await;
    assert_eq!(got.status, 200);

    let events = gw.stop().await;
    assert_eq!(
        event_with_id(&events, "alpn-h2")["http_request"]["version"],
        "HTTP/2.0"
    );
    assert_eq!(
        event_with_id(&events, "alpn-h1")["http_request"]["version"],
        "HTTP/1.1"
    );
    assert_eq!(
        event_with_id(&events, "no-alpn")["http_request"]["version"],
        "HTTP/1.1"
    );
}

#[tokio::test]
async fn hsts_is_on_every_tls_response_and_never_on_plain_http() {
    let up = Upstream::start().await;
    let c = certs();
    let mut gw = TestGateway::start(&tls_yaml(&c, ""), &up).await;
    let tls_addr = gw.addr(0);
    let plain_addr = gw.addr(1);

    // Proxied 200, gateway-made 404, masked upstream 500, refused path 400.
    for (path, status) in [
        ("/api/ok", 200),
        ("/nowhere", 404),
        ("/status/500", 500),
        ("/api/a/../b", 400),
    ] {
        let cfg = tls_client_config(&[&c.api.der], &[b"http/1.1"]);
        let stream = tls_connect(tls_addr, "api.test", cfg).await.unwrap();
        let got = h1_over(stream, h1_get("api.test", path, "hsts")).await;
        assert_eq!(got.status, status, "{path} over TLS");
        assert_eq!(
            got.header("strict-transport-security"),
            Some(HSTS),
            "{path} over TLS"
        );
        assert_eq!(
            got.headers
                .get_all("strict-transport-security")
                .iter()
                .count(),
            1
        );

        let got = get(&format!("http://{plain_addr}{path}")).await;
        assert_eq!(got.status, status, "{path} over plain HTTP");
        assert_eq!(
            got.header("strict-transport-security"),
            None,
            "{path} over plain HTTP"
        );
    }
    gw.stop().await;
}

#[tokio::test]
async fn hsts_max_age_zero_turns_the_header_off() {
    let up = Upstream::start().await;
    let c = certs();
    let yaml = tls_yaml(&c, "").replace("hsts_max_age: 600", "hsts_max_age: 0");
    let mut gw = TestGateway::start(&yaml, &up).await;
    let stream = tls_connect(
        gw.addr(0),
        "api.test",
        tls_client_config(&[&c.api.der], &[]),
    )
    .await
    .unwrap();
    let got = h1_over(stream, h1_get("api.test", "/api/x", "no-hsts")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("strict-transport-security"), None);
    gw.stop().await;
}

#[tokio::test]
async fn self_signed_listener_starts_and_serves() {
    let up = Upstream::start().await;
    let yaml = r#"
listeners:
  - address: 127.0.0.1:0
    tls: self_signed
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;
    let mut gw = TestGateway::start(yaml, &up).await;
    let stream = tls_connect(gw.addr(0), "localhost", accept_any_client(&[b"http/1.1"]))
        .await
        .unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let parsed = webpki::EndEntityCert::try_from(&leaf).unwrap();
    assert_eq!(
        parsed.valid_dns_names().collect::<Vec<_>>(),
        vec!["localhost"]
    );
    let got = h1_over(stream, h1_get("localhost", "/self-signed", "self-signed")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["path"], "/self-signed");
    // Default HSTS: one year.
    assert_eq!(
        got.header("strict-transport-security"),
        Some("max-age=31536000")
    );

    // A client that verifies certificates against its roots refuses it (unknown issuer).
    let strict = tls_client_config(&[], &[]);
    let err = tls_connect(gw.addr(0), "localhost", strict)
        .await
        .unwrap_err();
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(_))
        ),
        "{err:?}"
    );
    let events = gw.stop().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["tls"]["version"], "TLSv1.3");
}

#[tokio::test]
async fn redirect_listener_answers_308_to_https_and_never_forwards() {
    let up = Upstream::start().await;
    let yaml = r#"
listeners:
  - address: 127.0.0.1:0
    redirect_https_port: 8443
upstreams:
  app:
    targets: [{upstream}]
routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {dir}/events.jsonl
"#;
    let mut gw = TestGateway::start(yaml, &up).await;
    let base = format!("http://{}", gw.addr(0));
    let cases = [
        (
            "GET",
            "example.test",
            "/path?query=1&b=2",
            "https://example.test:8443/path?query=1&b=2",
        ),
        (
            "GET",
            "example.test:8080",
            "/a/b",
            "https://example.test:8443/a/b",
        ),
        (
            "POST",
            "Example.TEST",
            "/submit?x",
            "https://example.test:8443/submit?x",
        ),
        ("DELETE", "example.test", "/", "https://example.test:8443/"),
    ];
    for (method, host, pq, location) in cases {
        let got = send(
            Request::builder()
                .method(method)
                .uri(format!("{base}{pq}"))
                .header("host", host)
                .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
                .unwrap(),
        )
        .await;
        assert_eq!(got.status, 308, "{method} {host}{pq}");
        assert_eq!(
            got.header("location"),
            Some(location),
            "{method} {host}{pq}"
        );
        assert_eq!(got.header("strict-transport-security"), None);
    }
    // A Host that cannot be put in a URL is refused, not reflected.
    let got = send(
        Request::get(format!("{base}/x"))
            .header("host", "evil.test/phish")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 400);
    assert_eq!(got.header("location"), None);

    assert_eq!(up.count(), 0, "a redirect listener never forwards");
    let events = gw.stop().await;
    assert_eq!(events.len(), cases.len() + 1);
    assert!(
        events[..cases.len()]
            .iter()
            .all(|e| e["http_response"]["code"] == 308)
    );
}
