//! The realistic JSON bodies the inspection benchmark and the `inspect_loop` profiling example
//! both inspect, so their figures are comparable.

use serde_json::{Value, json};

/// One realistic community post / order record (~330 bytes serialised).
pub fn record(i: usize) -> Value {
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

/// A body of `items` records at least `target` bytes long when serialised.
pub fn body_of_size(target: usize) -> Value {
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
