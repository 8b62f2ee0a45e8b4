//! Detection rate on the OWASP Core Rule Set v4 regression requests (Apache-2.0,
//! `../shared/corpora/crs`): per CRS family, the share of paranoia-level-1 attack requests
//! that reach the default threshold (5) must not fall below the measured floor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::{AttackConfig, AttackDetector};
use support::crs;

/// Floors in percent: the rate reached when this test was written, minus a small margin.
const FLOORS: [(&str, f64); 9] = [
    ("930", 83.0),
    ("931", 95.0),
    ("932", 89.0),
    ("933", 92.0),
    ("934", 87.0),
    ("941", 85.0),
    ("942", 80.0),
    ("943", 95.0),
    ("944", 97.0),
];

#[test]
fn crs_paranoia_level_1_attacks_reach_the_threshold() {
    let detector = AttackDetector::new(&AttackConfig::default()).unwrap();
    let cases = crs::load();
    let results = crs::measure(&detector, &cases, 5);
    let (mut hit, mut total) = (0, 0);
    let mut failures = Vec::new();
    for (number, floor) in FLOORS {
        let (h, t, misses) = &results[number];
        assert!(*t > 0, "no cases for {number}");
        hit += h;
        total += t;
        let rate = 100.0 * *h as f64 / *t as f64;
        eprintln!("{number}: {h}/{t} = {rate:.1}% (floor {floor}%)");
        if rate < floor {
            failures.push(format!(
                "{number}: {rate:.1}% < {floor}% (missed {misses:?})"
            ));
        }
    }
    let overall = 100.0 * hit as f64 / total as f64;
    eprintln!("overall: {hit}/{total} = {overall:.1}%");
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(overall >= 91.0, "overall {overall:.1}%");
}
