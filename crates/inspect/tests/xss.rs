//! Cross-site scripting detection: tags, handlers, script URIs, DOM sinks, template
//! injection; HTML-free text and harmless markup are clean.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::request::*;

#[test]
fn xss_payloads_are_blocked() {
    let det = detector();
    assert_blocked(
        &det,
        &[
            "<script>alert(1)</script>",
            "<svg/onload=alert(1)>",
            "\"><img src=x onerror=alert(document.cookie)>",
            "javascript:alert(1)",
            "<iframe srcdoc='<script>alert(1)</script>'>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>",
            "' onmouseover='alert(1)",
            "<body onload=alert(1)>",
            "{{constructor.constructor('alert(1)')()}}",
            "<div style=\"background:url(javascript:alert(1))\">",
            "<object data=\"javascript:alert(1)\">",
        ],
    );
}

#[test]
fn xss_in_headers_and_cookies_is_found() {
    let det = detector();
    let i = header(&det, "user-agent", "Mozilla/5.0 <script>alert(1)</script>");
    assert!(ids(&i).contains(&"xss.script_tag"));
    assert_eq!(i.findings[0].location, "/header/user-agent");
    let i = header(&det, "cookie", "theme=dark; note=<svg onload=alert(1)>");
    assert!(
        i.findings.iter().any(|f| f.location == "/cookie/note"),
        "{:?}",
        i.findings
    );
}

#[test]
fn text_and_harmless_markup_are_clean() {
    let det = detector();
    assert_clean(
        &det,
        &[
            "I like javascript: it is fun",
            "The script of the movie was great",
            "a < b and c > d",
            "Please confirm (by email)",
            "onboarding complete",
            "Use the <b>bold</b> tag",
            "https://example.com/?on=1",
            "{{ user.name }}",
        ],
    );
}

#[test]
fn a_plain_link_scores_below_the_threshold() {
    let det = detector();
    let i = query_value(&det, "<a href=\"https://example.com\">docs</a>");
    assert!(i.score > 0 && i.score < 5, "{:?}", ids(&i));
}
