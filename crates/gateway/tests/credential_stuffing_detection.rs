//! Live detection, end to end: a scripted credential-stuffing run through the gateway raises
//! the bundled rule's Detection Finding (with ATT&CK names and the requests that built it
//! up), the automatic response blocks the attacker's address — who is then refused even with
//! valid credentials — while another client is served, and the SOAR webhook receives the
//! finding signed with HMAC-SHA256.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

const HTPASSWD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../identity/tests/fixtures/htpasswd/users.htpasswd"
);
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
const STUFFING_RULE: &str = "af0b9e5a-8fd6-4fc1-ab16-61c3cc0d30fb";
const WEBHOOK_SECRET: &str = "soar-shared-secret";

const CONFIG: &str = r#"
listeners:
  - address: 127.0.0.1:0
trusted_proxies: [127.0.0.1/32]
upstreams:
  app:
    targets: [{upstream}]
identity:
  basic:
    htpasswd: "{htpasswd}"
routes:
  - name: accounts
    upstream: app
    auth:
      methods: [basic]
      allow_basic_over_plain_http: true
events:
  file: "{dir}/events.jsonl"
detection:
  rules: ["{rules}"]
  responses:
    - rules: [af0b9e5a-8fd6-4fc1-ab16-61c3cc0d30fb]
      block: { subject: ip, for: 10m }
      webhook: { url: "{webhook}", secret: "soar-shared-secret" }
"#;

/// Received webhook calls: (timestamp header, signature header, body).
type Calls = Arc<Mutex<Vec<(String, String, Bytes)>>>;

async fn webhook_receiver() -> (String, Calls) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/portcullis", tcp.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let log = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = tcp.accept().await else {
                continue;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let log = log.clone();
                    async move {
                        let h = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let (ts, sig) = (h("x-portcullis-timestamp"), h("x-portcullis-signature"));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        log.lock().unwrap().push((ts, sig, body));
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::new(),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, calls)
}

async fn basic_from(gw: &TestGateway, client: &str, user: &str, password: &str) -> u16 {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let req = Request::get(gw.url("/accounts/me"))
        .header("authorization", format!("Basic {token}"))
        .header("x-forwarded-for", client)
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(req).await.status.as_u16()
}

fn all_records(gw: &TestGateway) -> Vec<Value> {
    read_all_records(&gw.events_path)
}

#[tokio::test]
async fn credential_stuffing_raises_the_finding_and_blocks_the_attacker_but_not_others() {
    let upstream = Upstream::start().await;
    let (webhook, calls) = webhook_receiver().await;
    let yaml = CONFIG
        .replace("{htpasswd}", HTPASSWD)
        .replace("{rules}", RULES)
        .replace("{webhook}", &webhook);
    let gw = TestGateway::start(&yaml, &upstream).await;
    let attacker = "203.0.113.66";
    let customer = "198.51.100.20";

    // Before the attack the real user gets in from the attacker's address too.
    assert_eq!(
        basic_from(&gw, attacker, "bcrypt", "bcrypt-secret").await,
        200
    );

    // The stuffing run: one leaked pair per user, all wrong, from one address. The rule fires
    // at the tenth user; the block can land before the run ends.
    for i in 0..12 {
        let status = basic_from(&gw, attacker, &format!("victim{i}"), "Summer2024!").await;
        if i < 9 {
            assert_eq!(status, 401, "attempt {i}");
        } else {
            assert!(status == 401 || status == 403, "attempt {i}: {status}");
        }
    }

    // Detection runs off the request path: wait for the finding and the block.
    let mut finding = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        finding = all_records(&gw).into_iter().find(|r| {
            r["class_uid"] == 2004
                && r["finding_info"]["uid"].is_string()
                && r.to_string().contains(STUFFING_RULE)
        });
        if finding.is_some() && basic_from(&gw, attacker, "bcrypt", "bcrypt-secret").await == 403 {
            break;
        }
    }
    let finding = finding.expect("no Detection Finding for the stuffing rule");
    let text = finding.to_string();
    assert!(text.contains("T1110.004"), "technique missing: {text}");
    assert!(
        text.contains("Credential Stuffing"),
        "technique name missing: {text}"
    );
    assert!(
        text.contains("blocked ip:203.0.113.66"),
        "action missing: {text}"
    );

    // The attacker is refused even with the right password; another client is served.
    assert_eq!(
        basic_from(&gw, attacker, "bcrypt", "bcrypt-secret").await,
        403
    );
    assert_eq!(
        basic_from(&gw, customer, "bcrypt", "bcrypt-secret").await,
        200
    );

    // The SOAR got the finding, and its signature verifies with the shared secret.
    let mut got = None;
    for _ in 0..50 {
        if let Some(c) = calls.lock().unwrap().first().cloned() {
            got = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ts, sig, body) = got.expect("webhook not called");
    let expected = portcullis_gateway::detection::webhook_signature(
        WEBHOOK_SECRET.as_bytes(),
        ts.parse().unwrap(),
        &body,
    );
    assert_eq!(sig, expected);
    let wrong = portcullis_gateway::detection::webhook_signature(
        b"another secret",
        ts.parse().unwrap(),
        &body,
    );
    assert_ne!(sig, wrong);
    let posted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(posted["class_uid"], 2004);
    assert!(posted.to_string().contains(STUFFING_RULE));
}

#[tokio::test]
async fn a_few_failed_logins_raise_nothing() {
    let upstream = Upstream::start().await;
    let (webhook, calls) = webhook_receiver().await;
    let yaml = CONFIG
        .replace("{htpasswd}", HTPASSWD)
        .replace("{rules}", RULES)
        .replace("{webhook}", &webhook);
    let gw = TestGateway::start(&yaml, &upstream).await;
    let client = "203.0.113.77";
    for i in 0..5 {
        assert_eq!(
            basic_from(&gw, client, &format!("typo{i}"), "nope").await,
            401
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !all_records(&gw)
            .iter()
            .any(|r| r["class_uid"] == 2004 && r.to_string().contains(STUFFING_RULE))
    );
    assert_eq!(
        basic_from(&gw, client, "bcrypt", "bcrypt-secret").await,
        200
    );
    assert!(calls.lock().unwrap().is_empty());
    // The failed checks carry the presented user name (never the password) for the rules.
    let events = read_events(&gw.events_path);
    let failed: Vec<&Value> = events
        .iter()
        .filter(|e| e["http_response"]["code"] == 401)
        .collect();
    assert_eq!(failed.len(), 5);
    assert!(failed.iter().all(|e| {
        e["unmapped"]["auth"]["attempted_user"]
            .as_str()
            .is_some_and(|u| u.starts_with("typo"))
    }));
    assert!(!events.iter().any(|e| e.to_string().contains("nope")));

    // Each failed credential check also has its Authentication (OCSF 3002) event; successes
    // do not by default (`events.authentication: failures`).
    let auth: Vec<Value> = all_records(&gw)
        .into_iter()
        .filter(|r| r["class_uid"] == 3002)
        .collect();
    assert_eq!(auth.len(), 5, "{auth:?}");
    for r in &auth {
        let text = r.to_string();
        assert!(text.contains("typo") && !text.contains("nope"), "{text}");
        assert_eq!(r["status_id"], 2, "failure: {text}");
    }
}
