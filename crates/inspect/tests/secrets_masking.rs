//! Secret and personal-data detection and masking: every built-in detector with a true and
//! a false positive, masking in nested arrays, card numbers keeping their last four digits,
//! Luhn and IBAN negatives, actions and custom patterns, and no value in findings.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_inspect::{
    CustomPattern, InspectError, SecretAction, SecretConfig, SecretScanner, secret_detector_ids,
};
use serde_json::json;

fn scanner() -> SecretScanner {
    SecretScanner::new(&SecretConfig::default()).unwrap()
}

fn detectors(found: &[portcullis_inspect::SecretFinding]) -> Vec<&str> {
    found.iter().map(|f| f.detector.as_str()).collect()
}

const PEM: &str =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx0kQ\n-----END RSA PRIVATE KEY-----";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

#[test]
fn each_builtin_finds_its_secret_and_masks_it() {
    let s = scanner();
    let cases = [
        ("private_key", format!("key: {PEM} end")),
        ("jwt", format!("Bearer {JWT}")),
        ("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE".to_owned()),
        (
            "aws_secret_access_key",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
        ),
        (
            "github_token",
            "token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB".to_owned(),
        ),
        (
            "github_token",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz".to_owned(),
        ),
        ("gitlab_token", "glpat-abcdefghij0123456789".to_owned()),
        ("slack_token", "xoxb-123456789012-abcdefghijkl".to_owned()),
        (
            "slack_webhook",
            "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX".to_owned(),
        ),
        ("stripe_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_owned()),
        (
            "google_api_key",
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY".to_owned(),
        ),
        ("password_field", "user=bob&password=hunter2&x=1".to_owned()),
        (
            "payment_card",
            "card 4111 1111 1111 1111 exp 12/29".to_owned(),
        ),
        (
            "iban",
            "pay to DE89 3704 0044 0532 0130 00 today".to_owned(),
        ),
    ];
    for (id, text) in cases {
        let (masked, found) = s.scan_text(&text, "/body");
        assert!(detectors(&found).contains(&id), "{id}: {found:?}");
        let masked = masked.unwrap_or_else(|| panic!("{id} not masked"));
        assert_ne!(masked, text, "{id}");
        assert!(
            found
                .iter()
                .all(|f| f.location == "/body" && f.action == SecretAction::Mask)
        );
    }
}

#[test]
fn lookalikes_are_not_secrets() {
    let s = scanner();
    for text in [
        "order 1234567890123 shipped", // 13 digits, no issuer
        "4111 1111 1111 1112",         // Luhn fails
        "tracking 1Z999AA10123456784",
        "DE89 3704 0044 0532 0130 01", // IBAN checksum fails
        "ghp_short",                   // too short
        "eyJhbGciOiJIUzI1NiJ9 is a header only",
        "AKIA is a prefix",
        "The password policy requires 12 characters",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----",
        "call +1 (555) 010-2030 or 555-0199",
        "2024-03-15T10:20:30Z",
    ] {
        let (masked, found) = s.scan_text(text, "/t");
        assert!(found.is_empty() && masked.is_none(), "{text}: {found:?}");
    }
}

#[test]
fn card_numbers_keep_their_last_four_digits() {
    let s = scanner();
    let (masked, _) = s.scan_text("4111 1111 1111 1111", "/c");
    assert_eq!(masked.unwrap(), "**** **** **** 1111");
    let (masked, _) = s.scan_text("4111111111111111", "/c");
    assert_eq!(masked.unwrap(), "************1111");
    let (masked, _) = s.scan_text("amex 3782-822463-10005.", "/c");
    assert_eq!(masked.unwrap(), "amex ****-******-*0005.");
}

#[test]
fn json_masking_in_nested_arrays_with_pointers() {
    let s = scanner();
    let mut doc = json!({
        "user": {"name": "Jane O'Brien", "password": "hunter2", "cards": [
            {"number": "4111-1111-1111-1111", "holder": "Jane"},
            {"number": 5500000000000004u64},
            [["nested", "token ghp_1234567890abcdefghijklmnopqrstuvwxyzAB"]]
        ]},
        "a/b": {"apiKey": "k-123"},
        "empty_password": "",
        "notes": ["IBAN GB82 WEST 1234 5698 7654 32 please"],
    });
    let found = s.scan_json(&mut doc, "/body");
    let mut got: Vec<(String, String)> = found
        .iter()
        .map(|f| (f.detector.clone(), f.location.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "github_token".to_owned(),
                "/body/user/cards/2/0/1".to_owned()
            ),
            ("iban".to_owned(), "/body/notes/0".to_owned()),
            ("password_field".to_owned(), "/body/a~1b/apiKey".to_owned()),
            (
                "password_field".to_owned(),
                "/body/user/password".to_owned()
            ),
            (
                "payment_card".to_owned(),
                "/body/user/cards/0/number".to_owned()
            ),
            (
                "payment_card".to_owned(),
                "/body/user/cards/1/number".to_owned()
            ),
        ]
    );
    assert_eq!(doc["user"]["password"], "[MASKED]");
    assert_eq!(doc["user"]["cards"][0]["number"], "****-****-****-1111");
    assert_eq!(doc["user"]["cards"][1]["number"], "************0004");
    assert_eq!(doc["user"]["cards"][2][0][1], "token [MASKED]");
    assert_eq!(doc["a/b"]["apiKey"], "[MASKED]");
    assert_eq!(doc["notes"][0], "IBAN GB** **** **** **** **54 32 please");
    assert_eq!(doc["user"]["name"], "Jane O'Brien");
    assert_eq!(doc["empty_password"], "");
    // Findings never contain the value.
    let rendered = format!("{found:?}");
    assert!(!rendered.contains("hunter2") && !rendered.contains("4111"));
}

#[test]
fn block_and_monitor_report_without_masking() {
    let s = SecretScanner::new(&SecretConfig {
        detectors: vec![
            ("*".into(), SecretAction::Monitor),
            ("private_key".into(), SecretAction::Block),
        ],
        ..Default::default()
    })
    .unwrap();
    let mut doc = json!({"k": PEM, "card": "4111111111111111"});
    let found = s.scan_json(&mut doc, "");
    assert_eq!(doc["k"], PEM);
    assert_eq!(doc["card"], "4111111111111111");
    let actions: Vec<_> = found
        .iter()
        .map(|f| (f.detector.as_str(), f.action))
        .collect();
    assert!(actions.contains(&("private_key", SecretAction::Block)));
    assert!(actions.contains(&("payment_card", SecretAction::Monitor)));
}

#[test]
fn detectors_not_listed_are_off() {
    let s = SecretScanner::new(&SecretConfig {
        detectors: vec![("jwt".into(), SecretAction::Mask)],
        ..Default::default()
    })
    .unwrap();
    let (_, found) = s.scan_text("4111111111111111", "/x");
    assert!(found.is_empty());
    let (masked, found) = s.scan_text(JWT, "/x");
    assert_eq!(detectors(&found), vec!["jwt"]);
    assert_eq!(masked.unwrap(), "[MASKED]");
}

#[test]
fn custom_patterns_mask_their_capture_group() {
    let s = SecretScanner::new(&SecretConfig {
        custom: vec![CustomPattern {
            id: "employee_id".into(),
            regex: r"EMP-(\d{6})".into(),
            action: SecretAction::Mask,
        }],
        ..Default::default()
    })
    .unwrap();
    let (masked, found) = s.scan_text("badge EMP-123456 ok", "/x");
    assert_eq!(masked.unwrap(), "badge EMP-[MASKED] ok");
    assert_eq!(detectors(&found), vec!["employee_id"]);
}

#[test]
fn invalid_configuration_is_rejected() {
    let bad_regex = SecretScanner::new(&SecretConfig {
        custom: vec![CustomPattern {
            id: "x".into(),
            regex: "(".into(),
            action: SecretAction::Mask,
        }],
        ..Default::default()
    });
    assert!(matches!(bad_regex, Err(InspectError::Pattern { .. })));
    let unknown = SecretScanner::new(&SecretConfig {
        detectors: vec![("nope".into(), SecretAction::Mask)],
        ..Default::default()
    });
    assert!(matches!(unknown, Err(InspectError::UnknownDetector(_))));
    assert!(secret_detector_ids().contains(&"payment_card"));
}

#[test]
fn a_large_clean_document_is_untouched() {
    let s = scanner();
    let items: Vec<_> = (0..2_000)
        .map(|i| json!({"id": i, "name": format!("item {i}"), "price": 19.99, "sku": format!("SKU-{i:08}")}))
        .collect();
    let mut doc = json!({ "items": items });
    let before = doc.clone();
    assert!(s.scan_json(&mut doc, "").is_empty());
    assert_eq!(doc, before);
}
