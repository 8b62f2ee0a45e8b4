//! Inspects the benchmark's realistic JSON body in a loop, for profilers: criterion times
//! are noisy on a shared machine, instruction counts under `valgrind --tool=callgrind`
//! are not, so before/after comparisons of inspection cost use this binary.
//!
//! Run: `cargo build --release -p portcullis-inspect --example inspect_loop` then
//! `valgrind --tool=callgrind target/release/examples/inspect_loop 1KB 10000`
//! (arguments: body size `1KB` or `100KB`, iteration count).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_inspect::{AttackConfig, AttackDetector, RequestView};
use serde_json::{Value, json};

/// The same record as `benches/inspect.rs`, so the figures are comparable.
fn record(i: usize) -> Value {
    json!({
        "id": format!("8f14e45f-ceea-467f-a0e4-{i:012x}"),
        "author": {"name": if i.is_multiple_of(3) { "Siobhán O'Brien" } else { "Jean-Luc Picard" },
                   "email": format!("user{i}@example.com")},
        "title": "Brakes squeak when cold",
        "content": "After 5 minutes it's fine; the dealer said it's normal? See https://www.example.com/docs?page=2&sort=asc",
        "vehicle": {"vin": "1HGCM82633A004352", "model": "Corolla", "year": 2019},
        "created_on": "2024-03-15T10:20:30Z",
        "tags": ["brakes", "union station", "1=1 is a math fact"],
        "price": 19.99,
    })
}

fn body_of_size(target: usize) -> Value {
    let mut items = Vec::new();
    let mut i = 0;
    loop {
        items.push(record(i));
        i += 1;
        let v = json!({ "items": items });
        if serde_json::to_vec(&v).unwrap().len() >= target {
            return v;
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size = match args.next().as_deref() {
        Some("100KB") => 100 * 1024,
        _ => 1024,
    };
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let detector = AttackDetector::new(&AttackConfig::default()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "referer",
        "https://crapi.example.com/forum".parse().unwrap(),
    );
    let body = body_of_size(size);
    let bytes = serde_json::to_vec(&body).unwrap();
    let mut values = 0;
    let started = std::time::Instant::now();
    for _ in 0..iterations {
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
        values += inspection.values_inspected;
    }
    let elapsed = started.elapsed();
    println!(
        "{} bytes, {iterations} iterations, {values} values, {:.2} µs per inspection",
        bytes.len(),
        elapsed.as_secs_f64() * 1e6 / iterations.max(1) as f64
    );
}
