//! Detection structure and conditions: maps (AND), lists of maps and of values (OR), keywords,
//! every condition form (`and`, `or`, `not`, parentheses and precedence, `1 of`/`all of` with
//! patterns and `them`, lists of conditions), wildcards with their escapes, and null and empty
//! values.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::detects;
use portcullis_sigma::ast::Condition;
use portcullis_sigma::condition::parse_condition;
use serde_json::json;

const THREE: &str = "a:\n    x: 1\nb:\n    y: 2\n_c:\n    z: 3\n";

fn three(condition: &str) -> String {
    format!("{THREE}condition: {condition}")
}

#[test]
fn map_is_and_list_of_maps_is_or() {
    let and = "sel:\n    m: GET\n    p: /x\ncondition: sel";
    assert!(detects(and, &json!({"m": "GET", "p": "/x"})));
    assert!(!detects(and, &json!({"m": "GET", "p": "/y"})));
    let or = "sel:\n    - m: GET\n    - p: /x\ncondition: sel";
    assert!(detects(or, &json!({"m": "POST", "p": "/x"})));
    assert!(detects(or, &json!({"m": "GET"})));
    assert!(!detects(or, &json!({"m": "POST", "p": "/y"})));
}

#[test]
fn keyword_lists_search_every_string_of_the_event() {
    let d = "keywords:\n    - 'segmentation fault'\n    - 'core dumped'\ncondition: keywords";
    assert!(detects(
        d,
        &json!({"log": {"line": "worker: Core Dumped (signal 11)"}})
    ));
    assert!(detects(
        d,
        &json!({"list": ["a", "exit signal Segmentation Fault"]})
    ));
    assert!(!detects(d, &json!({"log": "all fine", "n": 11})));
}

#[test]
fn and_or_not_and_precedence() {
    let ev_a = json!({"x": 1});
    let ev_b = json!({"y": 2});
    let ev_ab = json!({"x": 1, "y": 2});
    let none = json!({"q": 0});
    assert!(detects(&three("a and b"), &ev_ab));
    assert!(!detects(&three("a and b"), &ev_a));
    assert!(detects(&three("a or b"), &ev_b));
    assert!(!detects(&three("a or b"), &none));
    assert!(detects(&three("a and not b"), &ev_a));
    assert!(!detects(&three("a and not b"), &ev_ab));
    // `not` binds tighter than `and`, `and` tighter than `or`.
    assert!(detects(&three("not a and b"), &ev_b));
    assert!(!detects(&three("not a and b"), &ev_ab));
    assert!(detects(&three("a or b and _c"), &ev_a));
    assert!(!detects(&three("(a or b) and _c"), &ev_a));
    assert!(detects(&three("not (a and b)"), &ev_a));
    assert!(!detects(&three("not (a and b)"), &ev_ab));
    assert!(
        detects(&three("NOT a AND b"), &ev_b),
        "keywords are case-insensitive"
    );
}

#[test]
fn of_patterns_and_them() {
    assert!(detects(&three("1 of them"), &ev(&[("y", 2)])));
    assert!(
        !detects(&three("1 of them"), &ev(&[("z", 3)])),
        "them skips _c"
    );
    assert!(detects(&three("all of them"), &ev(&[("x", 1), ("y", 2)])));
    assert!(!detects(&three("all of them"), &ev(&[("x", 1)])));
    let sel = "selection_a:\n    x: 1\nselection_b:\n    y: 2\nfilter_1:\n    z: 3\ncondition: ";
    let with = |c: &str| format!("{sel}{c}");
    assert!(detects(&with("1 of selection_*"), &ev(&[("y", 2)])));
    assert!(!detects(&with("all of selection_*"), &ev(&[("y", 2)])));
    assert!(detects(
        &with("all of selection_*"),
        &ev(&[("x", 1), ("y", 2)])
    ));
    assert!(!detects(
        &with("1 of selection_* and not 1 of filter_*"),
        &ev(&[("x", 1), ("z", 3)])
    ));
    assert!(detects(&with("any of sel*_b"), &ev(&[("y", 2)])));
    assert!(detects(&with("1 of *_a"), &ev(&[("x", 1)])));
}

fn ev(pairs: &[(&str, i64)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (k, v) in pairs {
        map.insert((*k).to_string(), json!(v));
    }
    serde_json::Value::Object(map)
}

#[test]
fn list_of_conditions_is_or() {
    let d = format!("{THREE}condition:\n    - a and b\n    - _c");
    assert!(detects(&d, &ev(&[("z", 3)])));
    assert!(detects(&d, &ev(&[("x", 1), ("y", 2)])));
    assert!(!detects(&d, &ev(&[("x", 1)])));
}

#[test]
fn condition_parse_tree() {
    let parsed = parse_condition("a or not b and 1 of sel_* or all of them").unwrap();
    assert_eq!(
        parsed,
        Condition::Or(vec![
            Condition::Search("a".into()),
            Condition::And(vec![
                Condition::Not(Box::new(Condition::Search("b".into()))),
                Condition::OneOf("sel_*".into()),
            ]),
            Condition::AllOfThem,
        ])
    );
    for bad in [
        "a and",
        "(a or b",
        "a b",
        "a | count() > 5",
        "sel*",
        "1 of",
        ")",
    ] {
        assert!(parse_condition(bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn wildcards_star_and_question_mark() {
    let d = "sel:\n    p: '/api/*/users/?'\ncondition: sel";
    assert!(detects(d, &json!({"p": "/api/v1/users/7"})));
    assert!(detects(d, &json!({"p": "/API/a/b/users/x"})));
    assert!(!detects(d, &json!({"p": "/api/v1/users/17"})));
    assert!(!detects(d, &json!({"p": "/api/v1/users/"})));
    let ends = "sel:\n    p: '*.php'\ncondition: sel";
    assert!(detects(ends, &json!({"p": "/x.PHP"})));
    assert!(!detects(ends, &json!({"p": "/x.php5"})));
    let any = "sel:\n    p: '*'\ncondition: sel";
    assert!(detects(any, &json!({"p": ""})));
    assert!(!detects(any, &json!({"q": "x"})));
}

#[test]
fn wildcard_escapes() {
    // \* and \? are plain characters.
    let star = r"sel:
    p: 'a\*b'
condition: sel";
    assert!(detects(star, &json!({"p": "a*b"})));
    assert!(!detects(star, &json!({"p": "axxb"})));
    let question = r"sel:
    p|endswith: '\?manifest=wac'
condition: sel";
    assert!(detects(question, &json!({"p": "/x?manifest=wac"})));
    assert!(!detects(question, &json!({"p": "/xYmanifest=wac"})));
    // \\* is a backslash followed by a wildcard.
    let backslash_wild = r"sel:
    p: 'C:\\*'
condition: sel";
    assert!(detects(backslash_wild, &json!({"p": "C:\\Windows"})));
    // \\\* is a backslash and a plain star.
    let both_plain = r"sel:
    p: 'C:\\\*'
condition: sel";
    assert!(detects(both_plain, &json!({"p": "C:\\*"})));
    assert!(!detects(both_plain, &json!({"p": "C:\\Windows"})));
    // A single backslash not before a wildcard is plain; so is a double one.
    let single = r"sel:
    p: 'C:\Windows\System32'
condition: sel";
    assert!(detects(single, &json!({"p": "c:\\windows\\system32"})));
    let double = r"sel:
    p: 'C:\\Windows'
condition: sel";
    assert!(detects(double, &json!({"p": "C:\\Windows"})));
}

#[test]
fn null_matches_absent_or_null_only() {
    let d = "sel:\n    m: GET\nempty:\n    ref: null\ncondition: sel and empty";
    assert!(detects(d, &json!({"m": "GET"})));
    assert!(detects(d, &json!({"m": "GET", "ref": null})));
    assert!(!detects(d, &json!({"m": "GET", "ref": ""})));
    assert!(!detects(d, &json!({"m": "GET", "ref": "https://x"})));
    let not_null = "sel:\n    m: GET\nempty:\n    ref: null\ncondition: sel and not empty";
    assert!(detects(not_null, &json!({"m": "GET", "ref": "x"})));
    assert!(!detects(not_null, &json!({"m": "GET"})));
}

#[test]
fn empty_string_matches_only_empty() {
    let d = "sel:\n    ua: ''\ncondition: sel";
    assert!(detects(d, &json!({"ua": ""})));
    assert!(!detects(d, &json!({"ua": "curl"})));
    assert!(!detects(d, &json!({"other": ""})));
}

#[test]
fn dotted_paths_and_header_selectors() {
    let d = "sel:\n    http_request.http_headers[name=x-api-key].value|startswith: 'sk_'\ncondition: sel";
    let event = json!({"http_request": {"http_headers": [
        {"name": "Accept", "value": "*/*"},
        {"name": "X-API-Key", "value": "sk_live_1"}
    ]}});
    assert!(detects(d, &event));
    let other = json!({"http_request": {"http_headers": [{"name": "accept", "value": "sk_"}]}});
    assert!(!detects(d, &other));
    // A flat key containing dots is found as well.
    assert!(detects(
        "sel:\n    a.b: 1\ncondition: sel",
        &json!({"a.b": 1})
    ));
}
