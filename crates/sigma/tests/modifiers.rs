//! Every value modifier of the Sigma specification, each with events that must and must not
//! match: the string positions, `all`, regular expressions and their flags, the encodings,
//! `windash`, `cidr`, `exists`, numeric comparisons, `neq`, `expand`, `fieldref` and `cased`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{detects, engine_from, load_error, rule_yaml};
use portcullis_sigma::{CorrelationLimits, Engine, FieldMapping, RuleSet};
use serde_json::json;

#[test]
fn plain_value_is_whole_and_case_insensitive() {
    let d = "sel:\n    path: '/Admin'\ncondition: sel";
    assert!(detects(d, &json!({"path": "/admin"})));
    assert!(detects(d, &json!({"path": "/ADMIN"})));
    assert!(!detects(d, &json!({"path": "/admin/x"})));
    assert!(!detects(d, &json!({"other": "/admin"})));
}

#[test]
fn contains() {
    let d = "sel:\n    q|contains: 'UNION SELECT'\ncondition: sel";
    assert!(detects(d, &json!({"q": "id=1 union select 2"})));
    assert!(!detects(d, &json!({"q": "id=1 union all select 2"})));
}

#[test]
fn contains_list_is_or() {
    let d = "sel:\n    q|contains:\n        - 'aaa'\n        - 'bbb'\ncondition: sel";
    assert!(detects(d, &json!({"q": "xxbbbxx"})));
    assert!(detects(d, &json!({"q": "AAA"})));
    assert!(!detects(d, &json!({"q": "ab"})));
}

#[test]
fn startswith_and_endswith() {
    let s = "sel:\n    ua|startswith: 'curl/'\ncondition: sel";
    assert!(detects(s, &json!({"ua": "CURL/8.5.0"})));
    assert!(!detects(s, &json!({"ua": "x curl/8"})));
    let e = "sel:\n    p|endswith: '.php'\ncondition: sel";
    assert!(detects(e, &json!({"p": "/index.PHP"})));
    assert!(!detects(e, &json!({"p": "/index.php/x"})));
}

#[test]
fn all_requires_every_value() {
    let d = "sel:\n    q|contains|all:\n        - 'lng='\n        - 'ver='\ncondition: sel";
    assert!(detects(d, &json!({"q": "ver=2&lng=en"})));
    assert!(!detects(d, &json!({"q": "lng=en"})));
}

#[test]
fn keywords_all_modifier() {
    let d = "kw:\n    '|all':\n        - 'OabVirtualDirectory'\n        - ' -ExternalUrl '\ncondition: kw";
    assert!(detects(
        d,
        &json!({"a": "Set-OabVirtualDirectory", "b": "x -ExternalUrl y"})
    ));
    assert!(!detects(d, &json!({"a": "Set-OabVirtualDirectory"})));
}

#[test]
fn re_is_case_sensitive_unless_i() {
    let d = "sel:\n    p|re: '^/api/v[0-9]+/'\ncondition: sel";
    assert!(detects(d, &json!({"p": "/api/v2/users"})));
    assert!(!detects(d, &json!({"p": "/API/v2/users"})));
    let i = "sel:\n    p|re|i: '^/api/v[0-9]+/'\ncondition: sel";
    assert!(detects(i, &json!({"p": "/API/V2/users"})));
}

#[test]
fn re_m_and_s_flags() {
    let m = "sel:\n    body|re|m: '^second$'\ncondition: sel";
    let event = json!({"body": "first\nsecond\nthird"});
    assert!(detects(m, &event));
    let no_m = "sel:\n    body|re: '^second$'\ncondition: sel";
    assert!(!detects(no_m, &event));
    let s = "sel:\n    body|re|s: 'first.second'\ncondition: sel";
    assert!(detects(s, &event));
    let no_s = "sel:\n    body|re: 'first.second'\ncondition: sel";
    assert!(!detects(no_s, &event));
}

#[test]
fn base64_is_exact_encoding_and_case_sensitive() {
    // base64("admin:admin") = YWRtaW46YWRtaW4=
    let d = "sel:\n    auth|base64|contains: 'admin:admin'\ncondition: sel";
    assert!(detects(d, &json!({"auth": "Basic YWRtaW46YWRtaW4="})));
    assert!(!detects(d, &json!({"auth": "Basic ywrtaw46ywrtaw4="})));
    assert!(!detects(d, &json!({"auth": "Basic admin:admin"})));
}

#[test]
fn base64offset_finds_the_value_at_any_offset() {
    let d = "sel:\n    blob|base64offset|contains: 'http://'\ncondition: sel";
    use base64::Engine as _;
    let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for prefix in ["", "a", "ab", "abc", "abcd"] {
        let text = format!("{prefix}http://evil.example/x");
        assert!(
            detects(d, &json!({ "blob": enc(&text) })),
            "offset {} not found",
            prefix.len()
        );
    }
    assert!(!detects(d, &json!({ "blob": enc("https:/nothing here") })));
}

#[test]
fn utf16_encodings_with_base64() {
    use base64::Engine as _;
    let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let le: Vec<u8> = "cmd".encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let be: Vec<u8> = "cmd".encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    let mut bom = vec![0xFF, 0xFE];
    bom.extend_from_slice(&le);
    for (modifier, bytes) in [
        ("utf16le", &le),
        ("wide", &le),
        ("utf16be", &be),
        ("utf16", &bom),
    ] {
        let d = format!("sel:\n    blob|{modifier}|base64: 'cmd'\ncondition: sel");
        assert!(
            detects(&d, &json!({ "blob": enc(bytes) })),
            "{modifier} does not match its own encoding"
        );
        assert!(
            !detects(&d, &json!({ "blob": enc(b"cmd") })),
            "{modifier} matches the plain encoding"
        );
    }
}

#[test]
fn utf16le_without_base64_matches_nul_interleaved_text() {
    let d = "sel:\n    raw|utf16le|contains: 'cmd'\ncondition: sel";
    assert!(detects(d, &json!({"raw": "x c\u{0}m\u{0}d\u{0} y"})));
    assert!(!detects(d, &json!({"raw": "cmd"})));
}

#[test]
fn windash_accepts_every_dash_variant() {
    let d = "sel:\n    cmd|windash|contains: ' -exec '\ncondition: sel";
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(
            detects(d, &json!({ "cmd": format!("x {dash}exec y") })),
            "{dash}"
        );
    }
    assert!(!detects(d, &json!({"cmd": "x +exec y"})));
    let plain = "sel:\n    cmd|contains: ' -exec '\ncondition: sel";
    assert!(!detects(plain, &json!({"cmd": "x /exec y"})));
}

#[test]
fn cidr_v4_and_v6() {
    let d = "sel:\n    ip|cidr:\n        - '10.0.0.0/8'\n        - 'fc00::/7'\ncondition: sel";
    assert!(detects(d, &json!({"ip": "10.20.30.40"})));
    assert!(detects(d, &json!({"ip": "fd12::1"})));
    assert!(!detects(d, &json!({"ip": "11.0.0.1"})));
    assert!(!detects(d, &json!({"ip": "2001:db8::1"})));
    assert!(!detects(d, &json!({"ip": "not an ip"})));
}

#[test]
fn exists_true_and_false() {
    let t = "sel:\n    user|exists: true\ncondition: sel";
    assert!(detects(t, &json!({"user": ""})));
    assert!(detects(t, &json!({"user": null})));
    assert!(!detects(t, &json!({"other": 1})));
    let f = "sel:\n    user|exists: false\ncondition: sel";
    assert!(detects(f, &json!({"other": 1})));
    assert!(!detects(f, &json!({"user": "x"})));
}

#[test]
fn numeric_comparisons() {
    let cases = [
        ("lt", 400, 399, 400),
        ("lte", 400, 400, 401),
        ("gt", 499, 500, 499),
        ("gte", 500, 500, 499),
    ];
    for (op, threshold, yes, no) in cases {
        let d = format!("sel:\n    status|{op}: {threshold}\ncondition: sel");
        assert!(detects(&d, &json!({ "status": yes })), "{op} {yes}");
        assert!(!detects(&d, &json!({ "status": no })), "{op} {no}");
    }
    // Numeric strings in events compare as numbers; non-numeric never match.
    let d = "sel:\n    size|gt: 1000\ncondition: sel";
    assert!(detects(d, &json!({"size": "1500"})));
    assert!(!detects(d, &json!({"size": "big"})));
}

#[test]
fn neq_needs_a_present_different_value() {
    let d = "sel:\n    method|neq: GET\ncondition: sel";
    assert!(detects(d, &json!({"method": "POST"})));
    assert!(!detects(d, &json!({"method": "get"})));
    assert!(!detects(d, &json!({"other": "x"})));
}

#[test]
fn expand_resolves_placeholders_and_rejects_unknown_ones() {
    let yaml = rule_yaml("r1", "sel:\n    host|expand: '%Servers%'\ncondition: sel");
    let mut set = RuleSet::new();
    set.set_placeholder("Servers", vec!["srv-*".to_string(), "db1".to_string()]);
    set.add_yaml(&yaml, Path::new("t.yml")).unwrap();
    let mut engine = Engine::new(set, FieldMapping::identity(), CorrelationLimits::default());
    assert_eq!(engine.evaluate(&json!({"host": "SRV-web"}), 0).len(), 1);
    assert_eq!(engine.evaluate(&json!({"host": "db1"}), 0).len(), 1);
    assert!(engine.evaluate(&json!({"host": "ws-7"}), 0).is_empty());

    let err = load_error(&yaml);
    assert!(err.contains("unresolved placeholder '%Servers%'"), "{err}");
    assert!(err.starts_with("rules/bad.yml:8:"), "{err}");
}

#[test]
fn expand_escaped_percent_is_plain() {
    let yaml = rule_yaml("r1", "sel:\n    v|expand: '\\%plain%name%'\ncondition: sel");
    let mut set = RuleSet::new();
    set.set_placeholder("name", vec!["X".to_string()]);
    set.add_yaml(&yaml, Path::new("t.yml")).unwrap();
    let mut engine = Engine::new(set, FieldMapping::identity(), CorrelationLimits::default());
    assert_eq!(engine.evaluate(&json!({"v": "%plainX"}), 0).len(), 1);
    assert!(engine.evaluate(&json!({"v": "%plain%name%"}), 0).is_empty());
}

#[test]
fn fieldref_compares_two_fields() {
    let d = "sel:\n    src|fieldref: dst\ncondition: sel";
    assert!(detects(d, &json!({"src": "Alice", "dst": "alice"})));
    assert!(!detects(d, &json!({"src": "alice", "dst": "bob"})));
    assert!(!detects(d, &json!({"src": "alice"})));
    let cased = "sel:\n    src|fieldref|cased: dst\ncondition: sel";
    assert!(!detects(cased, &json!({"src": "Alice", "dst": "alice"})));
    let neq = "sel:\n    src|fieldref|neq: dst\ncondition: sel";
    assert!(detects(neq, &json!({"src": "alice", "dst": "bob"})));
    assert!(!detects(neq, &json!({"src": "alice", "dst": "alice"})));
    let starts = "sel:\n    url|fieldref|startswith: base\ncondition: sel";
    assert!(detects(starts, &json!({"url": "/api/x", "base": "/api"})));
}

#[test]
fn cased_is_case_sensitive() {
    let d = "sel:\n    ua|cased|contains: 'Nikto'\ncondition: sel";
    assert!(detects(d, &json!({"ua": "Mozilla (Nikto/2.5)"})));
    assert!(!detects(d, &json!({"ua": "mozilla (nikto/2.5)"})));
    let exact = "sel:\n    m|cased: 'GET'\ncondition: sel";
    assert!(detects(exact, &json!({"m": "GET"})));
    assert!(!detects(exact, &json!({"m": "get"})));
}

#[test]
fn non_ascii_values_are_case_insensitive_too() {
    let d = "sel:\n    name|contains: 'ÉTÉ'\ncondition: sel";
    assert!(detects(d, &json!({"name": "un été chaud"})));
    assert!(!detects(d, &json!({"name": "un ete chaud"})));
}

#[test]
fn list_fields_match_when_any_element_matches() {
    let d = "sel:\n    findings.kind: attack\ncondition: sel";
    let event = json!({"findings": [{"kind": "validation"}, {"kind": "attack"}]});
    assert!(detects(d, &event));
    assert!(!detects(d, &json!({"findings": [{"kind": "validation"}]})));
    let tags = "sel:\n    scopes|contains: admin\ncondition: sel";
    assert!(detects(tags, &json!({"scopes": ["read", "admin:all"]})));
}

#[test]
fn integer_fields_match_integer_and_string_values() {
    let d = "sel:\n    status:\n        - 200\n        - '301'\ncondition: sel";
    assert!(detects(d, &json!({"status": 200})));
    assert!(detects(d, &json!({"status": 301})));
    assert!(detects(d, &json!({"status": "200"})));
    assert!(!detects(d, &json!({"status": 404})));
    let pattern = "sel:\n    status|startswith: '4'\ncondition: sel";
    assert!(detects(pattern, &json!({"status": 404})));
    assert!(!detects(pattern, &json!({"status": 500})));
}

#[test]
fn bad_modifier_combinations_are_rejected() {
    for (fragment, wanted) in [
        ("f|re|contains: 'x'", "cannot be combined"),
        ("f|i: 'x'", "need it"),
        ("f|contains|startswith: 'x'", "only one of"),
        ("f|exists: 'yes'", "exists takes a single true or false"),
        ("f|cidr: '10.0.0.0/33'", "bad CIDR network"),
        ("f|gt: 'many'", "needs a number"),
        (
            "f|base64: 'a*b'",
            "cannot encode a value containing wildcards",
        ),
        ("f|re: '(unclosed'", "bad regular expression"),
    ] {
        let yaml = rule_yaml("r1", &format!("sel:\n    {fragment}\ncondition: sel"));
        let err = load_error(&yaml);
        assert!(err.contains(wanted), "{fragment}: {err}");
        assert!(err.starts_with("rules/bad.yml:8:"), "{fragment}: {err}");
    }
}

#[test]
fn regex_is_linear_time_on_pathological_input() {
    // (a+)+$ is exponential for backtracking engines; the regex crate is linear.
    let d = "sel:\n    v|re: '(a+)+$'\ncondition: sel";
    let mut engine = engine_from(&rule_yaml("r1", d), FieldMapping::identity());
    let input = format!("{}!", "a".repeat(50_000));
    let started = std::time::Instant::now();
    let hits = engine.evaluate(&json!({ "v": input }), 0);
    assert!(
        hits.is_empty(),
        "the input ends with '!', so '$' cannot follow an 'a'"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(engine.evaluate(&json!({ "v": "baaa" }), 0).len(), 1);
}
