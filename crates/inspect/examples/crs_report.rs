//! Prints how many OWASP CRS paranoia-level-1 attack requests reach the default anomaly
//! threshold (5), per CRS family; `--misses` lists the missed test ids.
//!
//! Run: `cargo run -p portcullis-inspect --example crs_report [-- --misses]`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/crs.rs"]
mod crs;

use portcullis_inspect::{AttackConfig, AttackDetector};

fn main() {
    let show_misses = std::env::args().any(|a| a == "--misses");
    let detector = AttackDetector::new(&AttackConfig::default()).expect("detector builds");
    let cases = crs::load();
    let results = crs::measure(&detector, &cases, 5);
    let (mut hit, mut total) = (0, 0);
    println!(
        "{:<6} {:<18} {:>8} {:>6} {:>7}",
        "rule", "family", "detected", "total", "rate"
    );
    for (number, name) in crs::FAMILIES {
        let (h, t, misses) = &results[number];
        hit += h;
        total += t;
        let rate = if *t == 0 {
            0.0
        } else {
            100.0 * *h as f64 / *t as f64
        };
        println!("{number:<6} {name:<18} {h:>8} {t:>6} {rate:>6.1}%");
        if show_misses && !misses.is_empty() {
            println!("       missed: {}", misses.join(" "));
        }
    }
    let rate = 100.0 * hit as f64 / total.max(1) as f64;
    println!("{:<6} {:<18} {hit:>8} {total:>6} {rate:>6.1}%", "all", "");
    // CRS "benign" cases only promise that one rule stays silent; many still carry attack
    // fragments, so this is context, not a false-positive rate.
    let benign: Vec<_> = cases
        .iter()
        .filter(|c| {
            c.expect == "benign"
                && crs::FAMILIES
                    .iter()
                    .any(|(n, _)| c.family.contains(&format!("-{n}-")))
        })
        .collect();
    let flagged = benign
        .iter()
        .filter(|c| crs::inspect_raw(&detector, &c.raw).is_some_and(|i| i.score >= 5))
        .count();
    println!(
        "CRS 'benign' cases of these families reaching 5: {flagged}/{}",
        benign.len()
    );
}
