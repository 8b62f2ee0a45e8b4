//! Upstream pools, end to end: round robin over targets, passive health (a target that refuses
//! a connection is skipped for a cool-down) with one retry for requests that can safely be
//! sent twice, the response timeout, and which `X-Forwarded-For` chain the upstream is told
//! depending on whether the peer is a trusted proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::Full;

fn pool_yaml(targets: &str, extra_upstream: &str, top: &str) -> String {
    format!(
        r#"
listeners:
  - address: 127.0.0.1:0
{top}upstreams:
  app:
    targets: [{targets}]
{extra_upstream}routes:
  - name: app
    upstream: app
    auth:
      public: true
events:
  file: {{dir}}/events.jsonl
"#
    )
}

fn metrics(gw: &TestGateway) -> String {
    gw.gateway().metrics.render(0, 0)
}

/// The value of `portcullis_upstream_errors_total` for pool `app` and `kind`.
fn upstream_errors(gw: &TestGateway, kind: &str) -> u64 {
    let needle = format!("kind=\"{kind}\"");
    metrics(gw)
        .lines()
        .filter(|l| l.starts_with("portcullis_upstream_errors_total{") && l.contains(&needle))
        .filter(|l| l.contains("upstream=\"app\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn round_robin_spreads_requests_over_both_targets() {
    let a = Upstream::start().await;
    let b = Upstream::start().await;
    let yaml = pool_yaml(&format!("{{upstream}}, {}", b.url()), "", "");
    let mut gw = TestGateway::start(&yaml, &a).await;
    for i in 0..6 {
        let got = get(&gw.url(&format!("/rr/{i}"))).await;
        assert_eq!(got.status, 200);
    }
    assert_eq!(a.count(), 3, "target a");
    assert_eq!(b.count(), 3, "target b");
    // Strict alternation: a request goes to the target the previous one did not.
    let mut paths: Vec<(usize, String)> = a
        .seen()
        .into_iter()
        .map(|s| (0, s.path_and_query))
        .chain(b.seen().into_iter().map(|s| (1, s.path_and_query)))
        .collect();
    paths.sort_by(|x, y| x.1.cmp(&y.1));
    let order: Vec<usize> = paths.iter().map(|p| p.0).collect();
    assert!(order.windows(2).all(|w| w[0] != w[1]), "{paths:?}");

    let events = gw.stop().await;
    let mut targets: Vec<String> = events
        .iter()
        .map(|e| e["unmapped"]["upstream"].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    targets.dedup();
    let mut expected = vec![a.addr.to_string(), b.addr.to_string()];
    expected.sort();
    assert_eq!(targets, expected, "each event names the target it used");
}

#[tokio::test]
async fn a_refusing_target_is_retried_once_for_get_then_skipped() {
    let up = Upstream::start().await;
    let closed = closed_port().await;
    // The closed target comes first, so the very first request tries it.
    let yaml = pool_yaml(&format!("http://127.0.0.1:{closed}, {{upstream}}"), "", "");
    let mut gw = TestGateway::start(&yaml, &up).await;

    let first = get(&gw.url("/first")).await;
    assert_eq!(
        first.status, 200,
        "the GET is retried on the healthy target"
    );
    assert_eq!(upstream_errors(&gw, "connect"), 1);

    // Passive health: for the cool-down the refusing target is not tried again, so every
    // request lands on the healthy one without another connection failure.
    for i in 0..6 {
        let got = get(&gw.url(&format!("/next/{i}"))).await;
        assert_eq!(got.status, 200);
    }
    assert_eq!(
        upstream_errors(&gw, "connect"),
        1,
        "the refusing target was skipped"
    );
    assert_eq!(up.count(), 7);

    let events = gw.stop().await;
    assert_eq!(
        events.len(),
        7,
        "one event per client request, retries included"
    );
    assert!(
        events
            .iter()
            .all(|e| e["unmapped"]["upstream"] == up.addr.to_string()
                && e["http_response"]["code"] == 200),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_post_with_a_body_is_not_retried() {
    let up = Upstream::start().await;
    let closed = closed_port().await;
    let yaml = pool_yaml(&format!("http://127.0.0.1:{closed}, {{upstream}}"), "", "");
    let mut gw = TestGateway::start(&yaml, &up).await;

    let got = send(
        Request::post(gw.url("/orders"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"qty\":1}")))
            .unwrap(),
    )
    .await;
    let doc = assert_problem(&got, 502, "upstream_unavailable");
    assert_eq!(
        up.count(),
        0,
        "the body was not sent a second time elsewhere"
    );
    assert_eq!(upstream_errors(&gw, "connect"), 1);

    // The next POST goes to the healthy target (the refusing one is cooling down).
    let got = send(
        Request::post(gw.url("/orders"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(b"{\"qty\":2}")))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(up.seen()[0].body, b"{\"qty\":2}");

    let id = doc["request_id"].as_str().unwrap().to_string();
    let events = gw.stop().await;
    let ev = event_by_id(&events, &id);
    assert_eq!(ev["http_response"]["code"], 502);
    assert_eq!(ev["unmapped"]["reason"], "upstream_unavailable");
    assert_eq!(ev["unmapped"]["upstream"], format!("127.0.0.1:{closed}"));
}

#[tokio::test]
async fn a_single_refusing_target_is_502() {
    let up = Upstream::start().await;
    let closed = closed_port().await;
    let yaml = pool_yaml(&format!("http://127.0.0.1:{closed}"), "", "");
    let gw = TestGateway::start(&yaml, &up).await;
    for _ in 0..2 {
        let got = get(&gw.url("/x")).await;
        assert_problem(&got, 502, "upstream_unavailable");
    }
    // With nothing else to try, the cooling target is still tried: a guess beats a
    // certain failure.
    assert_eq!(upstream_errors(&gw, "connect"), 2);
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_response_timeout() {
    let up = Upstream::start().await;
    let yaml = pool_yaml("{upstream}", "", "").replace(
        "    targets: [{upstream}]\n",
        "    targets: [{upstream}]\n    response_timeout: 300ms\n",
    );
    let mut gw = TestGateway::start(&yaml, &up).await;
    let started = Instant::now();
    let got = get(&gw.url("/slow/2000")).await;
    let took = started.elapsed();
    let doc = assert_problem(&got, 504, "upstream_timeout");
    assert!(doc.get("detail").is_none(), "{doc}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
    // A fast answer on the same route is unaffected.
    assert_eq!(get(&gw.url("/slow/10")).await.status, 200);
    assert_eq!(upstream_errors(&gw, "timeout"), 1);

    let id = doc["request_id"].as_str().unwrap().to_string();
    let events = gw.stop().await;
    let ev = event_by_id(&events, &id);
    assert_eq!(ev["http_response"]["code"], 504);
    assert_eq!(ev["unmapped"]["reason"], "upstream_timeout");
    assert_eq!(ev["action"], "Denied");
}

// ---------------------------------------------------------------- trusted proxies

fn with_xff(url: &str, xff: &[&str]) -> Request<Full<Bytes>> {
    let mut b = Request::get(url);
    for v in xff {
        b = b.header("x-forwarded-for", *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn untrusted_peer_forwarding_chain_is_replaced() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&pool_yaml("{upstream}", "", ""), &up).await;
    let got = send(
        Request::get(gw.url("/who"))
            .header("x-forwarded-for", "203.0.113.7, 198.51.100.2")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "spoofed.example")
            .header("forwarded", "for=203.0.113.7")
            .header("x-request-id", "untrusted-1")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    let s = &up.seen()[0];
    assert_eq!(s.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(s.header("x-forwarded-proto"), Some("http"));
    assert_eq!(s.header("x-forwarded-host"), Some("127.0.0.1"));
    assert_eq!(
        s.header("forwarded"),
        Some("for=127.0.0.1;proto=http;host=127.0.0.1")
    );
    let events = gw.stop().await;
    assert_eq!(
        event_by_id(&events, "untrusted-1")["src_endpoint"]["ip"],
        "127.0.0.1"
    );
}

#[tokio::test]
async fn trusted_proxy_forwarding_chain_is_kept_and_appended_to() {
    let up = Upstream::start().await;
    let yaml = pool_yaml("{upstream}", "", "trusted_proxies: [127.0.0.0/8]\n");
    let mut gw = TestGateway::start(&yaml, &up).await;
    let got = send(
        Request::get(gw.url("/who"))
            .header("x-forwarded-for", "203.0.113.7, 198.51.100.2")
            .header("x-forwarded-proto", "https")
            .header("forwarded", "for=203.0.113.7")
            .header("x-request-id", "trusted-1")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(got.status, 200);
    let s = &up.seen()[0];
    assert_eq!(
        s.header("x-forwarded-for"),
        Some("203.0.113.7, 198.51.100.2, 127.0.0.1")
    );
    assert_eq!(
        s.header("x-forwarded-proto"),
        Some("https"),
        "the proxy's word is kept"
    );
    assert_eq!(
        s.header("forwarded"),
        Some("for=203.0.113.7, for=127.0.0.1;proto=http;host=127.0.0.1")
    );
    let events = gw.stop().await;
    // The client is the right-most address that is not a trusted proxy.
    assert_eq!(
        event_by_id(&events, "trusted-1")["src_endpoint"]["ip"],
        "198.51.100.2"
    );
}

#[tokio::test]
async fn trusted_proxy_chain_split_over_several_header_lines_is_kept_whole() {
    // A proxy may add its hop as a new field line instead of appending to the existing one;
    // RFC 9110 §5.3 makes both the same list. The upstream must see the whole chain, in
    // order — the same chain the gateway itself reads the client address from.
    let up = Upstream::start().await;
    let yaml = pool_yaml("{upstream}", "", "trusted_proxies: [127.0.0.0/8]\n");
    let mut gw = TestGateway::start(&yaml, &up).await;
    let mut req = with_xff(&gw.url("/who"), &["6.6.6.6", "198.51.100.2"]);
    req.headers_mut()
        .insert("x-request-id", "multi-line".parse().unwrap());
    let got = send(req).await;
    assert_eq!(got.status, 200);
    let s = &up.seen()[0];
    let xff: Vec<&str> = s
        .headers
        .iter()
        .filter(|(k, _)| k == "x-forwarded-for")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(xff, vec!["6.6.6.6, 198.51.100.2, 127.0.0.1"]);
    let events = gw.stop().await;
    assert_eq!(
        event_by_id(&events, "multi-line")["src_endpoint"]["ip"],
        "198.51.100.2"
    );
}

#[tokio::test]
async fn untrusted_peer_several_header_lines_are_all_dropped() {
    let up = Upstream::start().await;
    let gw = TestGateway::start(&pool_yaml("{upstream}", "", ""), &up).await;
    let got = send(with_xff(&gw.url("/who"), &["6.6.6.6", "7.7.7.7"])).await;
    assert_eq!(got.status, 200);
    let s = &up.seen()[0];
    let xff: Vec<&str> = s
        .headers
        .iter()
        .filter(|(k, _)| k == "x-forwarded-for")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(xff, vec!["127.0.0.1"]);
}
