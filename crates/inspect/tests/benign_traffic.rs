//! False positives on realistic clean traffic: at least 5,000 generated API requests (crAPI
//! operations filled with realistic values, search queries and forms) must stay under the
//! blocking threshold in at least 99.9% of cases.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::{AttackConfig, AttackDetector, RequestView};
use support::benign;

#[test]
fn benign_corpus_false_positive_rate_is_at_most_one_per_mille() {
    let detector = AttackDetector::new(&AttackConfig::default()).unwrap();
    let requests = benign::generate(120, 0x5eed_2024);
    assert!(
        requests.len() >= 5_000,
        "only {} requests generated",
        requests.len()
    );
    let mut blocked = Vec::new();
    for req in &requests {
        let view = RequestView {
            path: &req.path,
            path_params: &[],
            query: req.query.as_deref(),
            headers: &req.headers,
            content_type: req.content_type.as_deref(),
            body: req.body.as_deref(),
            json: req.json.as_ref(),
        };
        let inspection = detector.inspect(&view);
        if inspection.score >= 5 {
            blocked.push((req, inspection));
        }
    }
    for (req, inspection) in blocked.iter().take(40) {
        let ids: Vec<String> = inspection
            .findings
            .iter()
            .map(|f| format!("{}@{}", f.id, f.location))
            .collect();
        eprintln!(
            "FP {} {} ?{:?} -> {:?}",
            req.method, req.path, req.query, ids
        );
        if let Some(b) = &req.body {
            eprintln!(
                "   body: {}",
                String::from_utf8_lossy(&b[..b.len().min(400)])
            );
        }
    }
    let rate = blocked.len() as f64 / requests.len() as f64;
    eprintln!(
        "benign requests: {}, blocked: {}, false positive rate: {:.3}%",
        requests.len(),
        blocked.len(),
        rate * 100.0
    );
    assert!(
        rate <= 0.001,
        "false positive rate {:.3}% > 0.1%",
        rate * 100.0
    );
}
