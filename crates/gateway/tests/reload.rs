//! Config reloads: under load without a failed request, refused when the new file is invalid
//! (the old config keeps serving and the failure is reported and recorded), picked up by the
//! file watcher without any signal, and keeping upstream pools whose config did not change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};

const TOKEN: &str = "reload-test-token-0123456789";

/// `{more_routes}` is replaced by extra route entries (or nothing).
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
{more_routes}
events:
  file: {dir}/events.jsonl
admin:
  address: 127.0.0.1:0
  token: reload-test-token-0123456789
"#;

const EXTRA_ROUTE: &str = r#"
  - name: extra
    upstream: app
    auth:
      public: true
    match: { path_prefix: /extra }
"#;

fn yaml(more_routes: &str) -> String {
    YAML.replace("{more_routes}", more_routes)
}

async fn readyz_generation(gw: &TestGateway) -> u64 {
    let got = admin_request(gw.admin(), "GET", "/readyz", None).await;
    assert_eq!(got.status, 200);
    got.json()["config_generation"].as_u64().unwrap()
}

/// Wait until the events file has a lifecycle record of `kind`, up to 3 s.
async fn wait_for_lifecycle(gw: &TestGateway, kind: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let kinds = lifecycle_kinds(&gw.events_path);
        if kinds.iter().any(|k| k == kind) || Instant::now() > deadline {
            return kinds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn good_reload_under_load_fails_no_request() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&yaml(""), &up).await;
    assert_eq!(readyz_generation(&gw).await, 1);
    assert_eq!(get(&gw.url("/extra/before")).await.status, 404);

    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let client = client();
    let stop_at = Instant::now() + Duration::from_millis(2000);
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, ok, failures) = (client.clone(), ok.clone(), failures.clone());
        let url = gw.url(&format!("/api/load/{w}"));
        workers.push(tokio::spawn(async move {
            while Instant::now() < stop_at {
                let req = Request::get(&url).body(Full::new(Bytes::new())).unwrap();
                match client.request(req).await {
                    Ok(resp) => {
                        let status = resp.status();
                        let body = resp.into_body().collect().await;
                        if status == 200 && body.is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("worker {w}: {status} {:?}", body.err()));
                        }
                    }
                    Err(e) => failures.lock().unwrap().push(format!("worker {w}: {e:?}")),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(700)).await;
    gw.write_config(&yaml(EXTRA_ROUTE), &up);
    let reload = admin_request(gw.admin(), "POST", "/reload", Some(TOKEN)).await;
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_eq!(reload.json()["reloaded"], true);
    let reloaded_to = reload.json()["generation"].as_u64().unwrap();
    assert!(reloaded_to >= 2, "{}", reload.text());

    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "failed requests during the reload: {failures:#?}"
    );
    let served = ok.load(Ordering::Relaxed);
    assert!(
        served >= 200,
        "only {served} requests in 2 s: not much of a load"
    );

    let got = get(&gw.url("/extra/after")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["path"], "/extra/after");
    let generation = readyz_generation(&gw).await;
    assert!(
        generation >= reloaded_to,
        "readyz {generation} < {reloaded_to}"
    );
    assert_eq!(generation, gw.gateway().generation());

    let kinds = wait_for_lifecycle(&gw, "reload").await;
    assert!(kinds.contains(&"reload".to_string()), "{kinds:?}");
    let events = gw.stop().await;
    assert_eq!(events.len(), served + 2, "one event per request");
    let extra = events
        .iter()
        .find(|e| e["http_request"]["url"]["path"] == "/extra/after")
        .unwrap();
    assert_eq!(extra["unmapped"]["route"], "extra");
}

#[tokio::test]
async fn bad_reload_is_refused_with_its_location_and_the_old_config_keeps_serving() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&yaml(""), &up).await;

    // An unknown field in the first route.
    let bad = yaml("").replace(
        "    match: { path_prefix: /api }\n",
        "    match: { path_prefix: /api }\n    bogus_field: true\n",
    );
    let line = bad.lines().position(|l| l.contains("bogus_field")).unwrap() + 1;
    gw.write_config(&bad, &up);
    let got = admin_request(gw.admin(), "POST", "/reload", Some(TOKEN)).await;
    assert_eq!(got.status, 422, "{}", got.text());
    let doc = got.json();
    assert_eq!(doc["reloaded"], false);
    assert_eq!(doc["generation"], 1);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{doc:#}");
    let error = errors[0].as_str().unwrap();
    let expected = format!(
        "{}:{line}:5: routes[0].bogus_field: unknown field `bogus_field`",
        gw.config_path.display()
    );
    assert!(
        error.starts_with(&expected),
        "error should start with {expected:?}: {error}"
    );

    // The old config keeps serving.
    for i in 0..5 {
        let got = get(&gw.url(&format!("/api/still/{i}"))).await;
        assert_eq!(got.status, 200);
    }
    assert_eq!(readyz_generation(&gw).await, 1);
    assert_eq!(gw.gateway().generation(), 1);

    let kinds = wait_for_lifecycle(&gw, "reload_failed").await;
    assert!(kinds.contains(&"reload_failed".to_string()), "{kinds:?}");
    assert!(!kinds.contains(&"reload".to_string()), "{kinds:?}");
    let failed = read_all_records(&gw.events_path)
        .into_iter()
        .find(|r| r["unmapped"]["kind"] == "reload_failed")
        .unwrap();
    assert_eq!(failed["status"], "Failure");
    assert!(
        failed["message"].as_str().unwrap().contains("bogus_field"),
        "{failed:#}"
    );

    // Fixing the file makes the next reload succeed.
    gw.write_config(&yaml(EXTRA_ROUTE), &up);
    let got = admin_request(gw.admin(), "POST", "/reload", Some(TOKEN)).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(get(&gw.url("/extra/x")).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn file_watcher_reloads_without_a_signal() {
    let up = Upstream::start().await;
    let mut gw = TestGateway::start(&yaml(""), &up).await;
    assert_eq!(get(&gw.url("/extra/x")).await.status, 404);

    gw.write_config(&yaml(EXTRA_ROUTE), &up);
    let start = Instant::now();
    let status = loop {
        let status = get(&gw.url("/extra/x")).await.status;
        if status == 200 || start.elapsed() > Duration::from_secs(3) {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        status, 200,
        "the watcher did not pick up the change within 3 s"
    );
    assert_eq!(gw.gateway().generation(), 2);
    let kinds = wait_for_lifecycle(&gw, "reload").await;
    assert!(kinds.contains(&"reload".to_string()), "{kinds:?}");

    // An invalid file is refused by the watcher too, and the running config stays.
    gw.write_config(
        &yaml("  - name: broken\n    upstream: nowhere\n    auth:\n      public: true\n"),
        &up,
    );
    let kinds = wait_for_lifecycle(&gw, "reload_failed").await;
    assert!(kinds.contains(&"reload_failed".to_string()), "{kinds:?}");
    assert_eq!(gw.gateway().generation(), 2);
    assert_eq!(get(&gw.url("/extra/x")).await.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn reload_keeps_pools_whose_config_did_not_change() {
    let up = Upstream::start().await;
    let two_pools = |other_timeout: &str| {
        format!(
            r#"
listeners:
  - address: 127.0.0.1:0
upstreams:
  app:
    targets: [{{upstream}}]
  other:
    targets: [{{upstream}}]
    connect_timeout: {other_timeout}
routes:
  - name: app
    upstream: app
    auth:
      public: true
    match: {{ path_prefix: /api }}
  - name: other
    upstream: other
    auth:
      public: true
    match: {{ path_prefix: /other }}
events:
  file: {{dir}}/events.jsonl
"#
        )
    };
    let mut gw = TestGateway::start(&two_pools("3s"), &up).await;
    let before = gw.gateway().snapshot();
    assert_eq!(get(&gw.url("/api/warm")).await.status, 200);

    // `other` changes, `app` does not; a route is added too.
    let changed = two_pools("2s").replace(
        "events:",
        "  - name: extra\n    upstream: app\n    auth:\n      public: true\n    match: { path_prefix: /extra }\nevents:",
    );
    gw.write_config(&changed, &up);
    // (The file watcher may reload the same file too; pools are compared by identity, so
    // the assertions hold however many reloads ran.)
    let generation = gw.gateway().reload().await.unwrap();
    assert!(generation >= 2);
    let after = gw.gateway().snapshot();
    assert!(after.generation >= generation);
    assert!(
        Arc::ptr_eq(&before.pools["app"], &after.pools["app"]),
        "an unchanged pool must be kept (warm connections, health state)"
    );
    assert!(
        !Arc::ptr_eq(&before.pools["other"], &after.pools["other"]),
        "a changed pool must be rebuilt"
    );
    assert_eq!(
        after.pools["other"].config.connect_timeout,
        Duration::from_secs(2)
    );
    // The routes of the new snapshot use the kept pool.
    let route = after
        .find_route("any.test", "/extra/x", &http::Method::GET)
        .unwrap();
    assert!(Arc::ptr_eq(&route.pool, &before.pools["app"]));
    assert_eq!(get(&gw.url("/extra/x")).await.status, 200);

    // Reloading the same file again keeps both.
    let again = gw.gateway().reload().await.unwrap();
    assert!(again > after.generation);
    let third = gw.gateway().snapshot();
    assert!(Arc::ptr_eq(&after.pools["app"], &third.pools["app"]));
    assert!(Arc::ptr_eq(&after.pools["other"], &third.pools["other"]));
    gw.stop().await;
}
