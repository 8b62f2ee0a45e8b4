//! Evaluates the bundled rule pack (`rules/`) on benign gateway-shaped requests read field by
//! field, N rounds of 64 events (authenticated, or `anonymous`): a fixed workload for
//! instruction counts per event, e.g.
//!
//! ```text
//! cargo build --profile bench -p portcullis-sigma --example bundled_profile
//! valgrind --tool=callgrind --toggle-collect='*Engine::evaluate*' \
//!     target/release/examples/bundled_profile 100 [anonymous]
//! ```
//!
//! With `--toggle-collect`, only evaluation is counted: total / (N · 64) instructions per
//! event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/support/direct_event.rs"]
mod direct_event;

use std::hint::black_box;
use std::path::Path;

use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, RuleSet};

fn main() {
    let rounds: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("rounds"))
        .unwrap_or(1000);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules");
    let (set, problems) = RuleSet::load_dir(Path::new(dir)).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let mut engine = Engine::new(
        set,
        FieldMapping::web_to_ocsf(),
        CorrelationLimits::default(),
    );
    let anonymous = std::env::args().nth(2).as_deref() == Some("anonymous");
    let mut requests = direct_event::benign_requests();
    if anonymous {
        for r in &mut requests {
            r.actor = None;
        }
    }
    let mut matches = 0usize;
    let mut t = 0i64;
    for _ in 0..rounds {
        for r in &requests {
            t += 1;
            matches += black_box(engine.evaluate(black_box(r), t)).len();
        }
    }
    assert_eq!(matches, 0, "benign requests must not match");
    println!("{} events", rounds * requests.len() as i64);
}
