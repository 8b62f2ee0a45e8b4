//! Inspects the benchmark's realistic JSON body in a loop, for profilers: criterion times
//! are noisy on a shared machine, instruction counts under `valgrind --tool=callgrind`
//! are not, so before/after comparisons of inspection cost use this binary.
//!
//! Run: `cargo build --release -p portcullis-inspect --example inspect_loop` then
//! `valgrind --tool=callgrind target/release/examples/inspect_loop 1KB 10000`
//! (arguments: body size `1KB` or `100KB`, iteration count).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_inspect::{AttackConfig, AttackDetector, RequestView};

/// The same bodies as `benches/inspect.rs`, so the figures are comparable.
#[path = "../benches/support/body.rs"]
mod body;
use body::body_of_size;

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
