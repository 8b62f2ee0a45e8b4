//! Criterion benchmarks: attack inspection of a realistic 1 KB and 100 KB JSON body
//! (pre-parsed, as the gateway passes it after validation) and secret scanning of the
//! 100 KB body.
//!
//! Run: `cargo bench -p portcullis-inspect --bench inspect -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis_inspect::{AttackConfig, AttackDetector, RequestView, SecretConfig, SecretScanner};

#[path = "support/body.rs"]
mod body;
use body::body_of_size;

fn bench(c: &mut Criterion) {
    let detector = AttackDetector::new(&AttackConfig::default()).unwrap();
    let scanner = SecretScanner::new(&SecretConfig::default()).unwrap();
    let headers = {
        let mut h = http::HeaderMap::new();
        h.insert(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
                .parse()
                .unwrap(),
        );
        h.insert(
            "referer",
            "https://crapi.example.com/forum".parse().unwrap(),
        );
        h
    };
    for (name, size) in [("1KB", 1024), ("100KB", 100 * 1024)] {
        let body = body_of_size(size);
        let bytes = serde_json::to_vec(&body).unwrap();
        eprintln!("{name} body: {} bytes", bytes.len());
        c.bench_function(&format!("attack_inspect_json_{name}"), |b| {
            b.iter(|| {
                let view = RequestView {
                    path: "/community/api/v2/community/posts",
                    path_params: &[],
                    query: Some("page=2&sort=-created_on"),
                    headers: &headers,
                    content_type: Some("application/json"),
                    body: Some(&bytes),
                    json: Some(&body),
                };
                let inspection = detector.inspect(&view);
                assert_eq!(inspection.score, 0);
                inspection
            })
        });
    }
    let body = body_of_size(100 * 1024);
    c.bench_function("secret_scan_json_100KB", |b| {
        b.iter_batched(
            || body.clone(),
            |mut doc| scanner.scan_json(&mut doc, "/body"),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
