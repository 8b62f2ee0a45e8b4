//! Secret and personal-data detection and masking: the [`SecretScanner`].
//!
//! Built-in detectors find private keys, JWTs, cloud and SaaS credentials, password-like
//! JSON fields, payment card numbers (Luhn and issuer checked) and IBANs (mod-97 checked);
//! operators add their own patterns. Each detector has an action: *mask* replaces the
//! secret in place (card numbers keep their last four digits), *block* and *monitor* only
//! report. Findings name the detector and the JSON pointer, never the value.
//!
//! Cost on clean data stays low: an Aho-Corasick automaton of the detectors' literal
//! anchors (`-----BEGIN`, `eyJ`, `AKIA`, `ghp_`, ...) and two byte scans (a run of 13+
//! digits, a `CCdd` IBAN start) decide which regexes run at all.

mod validate;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use serde_json::Value;

use crate::InspectError;

/// What to do when a detector finds something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretAction {
    /// Replace the secret in place and report it.
    Mask,
    /// Report it; the caller blocks the message.
    Block,
    /// Report it only.
    Monitor,
}

/// An operator-defined pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomPattern {
    /// Detector id reported in findings (must not clash with a built-in id).
    pub id: String,
    /// A `regex`-crate expression; with a capture group, only the first group is masked.
    pub regex: String,
    /// The action for matches.
    pub action: SecretAction,
}

/// Secret scanning configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretConfig {
    /// `(detector id or "*", action)`; later entries override earlier ones, an exact id
    /// overrides `"*"`. Built-ins not covered by any entry are off.
    pub detectors: Vec<(String, SecretAction)>,
    /// Operator-defined patterns.
    pub custom: Vec<CustomPattern>,
    /// The replacement for masked secrets other than card numbers and IBANs.
    pub mask: String,
}

impl Default for SecretConfig {
    fn default() -> Self {
        Self {
            detectors: vec![("*".to_owned(), SecretAction::Mask)],
            custom: Vec::new(),
            mask: "[MASKED]".to_owned(),
        }
    }
}

/// One secret found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFinding {
    /// Detector id, e.g. `payment_card` or a custom id.
    pub detector: String,
    /// JSON pointer (or the caller's location for text); never the value.
    pub location: String,
    /// The action configured for the detector.
    pub action: SecretAction,
}

/// How a match is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MaskStyle {
    /// Replace with the configured mask text.
    Replace,
    /// Keep separators and the last four digits: `**** **** **** 1111`.
    KeepLastFour,
    /// Keep the country code and the last four characters.
    Iban,
}

/// What gates a built-in regex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
    /// Only when one of these literals occurs (case-insensitive).
    Literals(&'static [&'static str]),
    /// Only when a run of 13+ digits (spaces and dashes allowed) occurs.
    DigitRun,
    /// Only when two letters followed by two digits occur.
    IbanStart,
}

struct BuiltIn {
    id: &'static str,
    pattern: &'static str,
    gate: Gate,
    style: MaskStyle,
    validate: Option<fn(&str) -> bool>,
}

const BUILT_INS: &[BuiltIn] = &[
    BuiltIn {
        id: "private_key",
        pattern: r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
        gate: Gate::Literals(&["-----BEGIN"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "jwt",
        pattern: r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",
        gate: Gate::Literals(&["eyJ"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "aws_access_key_id",
        pattern: r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[A-Z0-9]{16}\b",
        gate: Gate::Literals(&[
            "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA",
        ]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "aws_secret_access_key",
        pattern: r#"(?i:aws[\w -]{0,30}?(?:secret|private)[\w -]{0,20}?key\W{1,5})([A-Za-z0-9/+=]{40})\b"#,
        gate: Gate::Literals(&["aws"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "github_token",
        pattern: r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        gate: Gate::Literals(&["ghp_", "gho_", "ghs_", "ghu_", "ghr_", "github_pat_"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "gitlab_token",
        pattern: r"\bglpat-[A-Za-z0-9_-]{20,}",
        gate: Gate::Literals(&["glpat-"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "slack_token",
        pattern: r"\bxox[baprs]-[A-Za-z0-9-]{10,}",
        gate: Gate::Literals(&["xoxb-", "xoxa-", "xoxp-", "xoxr-", "xoxs-"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "slack_webhook",
        pattern: r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/-]{20,}",
        gate: Gate::Literals(&["hooks.slack.com"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "stripe_key",
        pattern: r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}\b",
        gate: Gate::Literals(&["sk_live_", "rk_live_"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "google_api_key",
        pattern: r"\bAIza[0-9A-Za-z_-]{35}",
        gate: Gate::Literals(&["AIza"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "password_field",
        // In text (forms, logs, query strings): `password=...`, `"api_key": "..."`.
        pattern: r#"(?i:\b(?:password|passwd|pwd|secret|api[_-]?key|client[_-]?secret|access[_-]?token|refresh[_-]?token|auth[_-]?token|private[_-]?key)["']?\s*[=:]\s*["']?)([^\s"'&,;}]{1,512})"#,
        gate: Gate::Literals(&["pass", "pwd", "secret", "key", "token"]),
        style: MaskStyle::Replace,
        validate: None,
    },
    BuiltIn {
        id: "payment_card",
        pattern: r"\b\d(?:[ -]?\d){12,18}\b",
        gate: Gate::DigitRun,
        style: MaskStyle::KeepLastFour,
        validate: Some(validate::is_card_number),
    },
    BuiltIn {
        id: "iban",
        pattern: r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
        gate: Gate::IbanStart,
        style: MaskStyle::Iban,
        validate: Some(validate::is_iban),
    },
];

/// JSON field names (lower-cased, without `_`/`-`) whose string values are secrets.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "apikey",
    "apisecret",
    "token",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "authtoken",
    "clientsecret",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "awssecretaccesskey",
    "sessiontoken",
    "bearertoken",
    "webhooksecret",
];

struct Detector {
    id: String,
    regex: Regex,
    gate: Option<Gate>,
    style: MaskStyle,
    validate: Option<fn(&str) -> bool>,
    action: SecretAction,
}

/// The compiled secret scanner. Build once, share across threads.
pub struct SecretScanner {
    detectors: Vec<Detector>,
    /// Literal anchors; each pattern maps to the detectors it gates.
    prefilter: AhoCorasick,
    anchor_detectors: Vec<Vec<usize>>,
    /// Action of the JSON field-name detector (`password_field`), if enabled.
    field_action: Option<SecretAction>,
    mask: String,
}

impl std::fmt::Debug for SecretScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretScanner")
            .field(
                "detectors",
                &self.detectors.iter().map(|d| &d.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Every built-in secret detector id.
pub fn secret_detector_ids() -> Vec<&'static str> {
    BUILT_INS.iter().map(|b| b.id).collect()
}

fn action_for(cfg: &SecretConfig, id: &str) -> Option<SecretAction> {
    let mut action = None;
    for (name, a) in &cfg.detectors {
        if name == "*" {
            action = Some(*a);
        }
    }
    for (name, a) in &cfg.detectors {
        if name == id {
            action = Some(*a);
        }
    }
    action
}

impl SecretScanner {
    /// Compiles the enabled detectors and custom patterns.
    pub fn new(cfg: &SecretConfig) -> Result<Self, InspectError> {
        for (name, _) in &cfg.detectors {
            if name != "*" && !BUILT_INS.iter().any(|b| b.id == name) {
                return Err(InspectError::UnknownDetector(name.clone()));
            }
        }
        let mut detectors = Vec::new();
        for b in BUILT_INS {
            let Some(action) = action_for(cfg, b.id) else {
                continue;
            };
            let regex =
                Regex::new(&crate::pattern::ascii_escapes(b.pattern)).map_err(|source| {
                    InspectError::Pattern {
                        id: b.id.to_owned(),
                        source,
                    }
                })?;
            detectors.push(Detector {
                id: b.id.to_owned(),
                regex,
                gate: Some(b.gate),
                style: b.style,
                validate: b.validate,
                action,
            });
        }
        for c in &cfg.custom {
            if BUILT_INS.iter().any(|b| b.id == c.id) {
                return Err(InspectError::UnknownDetector(format!(
                    "{} (custom id clashes with a built-in detector)",
                    c.id
                )));
            }
            let regex = Regex::new(&c.regex).map_err(|source| InspectError::Pattern {
                id: c.id.clone(),
                source,
            })?;
            detectors.push(Detector {
                id: c.id.clone(),
                regex,
                gate: None,
                style: MaskStyle::Replace,
                validate: None,
                action: c.action,
            });
        }
        let mut anchors: Vec<&'static str> = Vec::new();
        let mut anchor_detectors: Vec<Vec<usize>> = Vec::new();
        for (i, d) in detectors.iter().enumerate() {
            if let Some(Gate::Literals(lits)) = d.gate {
                for lit in lits {
                    if let Some(pos) = anchors.iter().position(|a| a.eq_ignore_ascii_case(lit)) {
                        anchor_detectors[pos].push(i);
                    } else {
                        anchors.push(lit);
                        anchor_detectors.push(vec![i]);
                    }
                }
            }
        }
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&anchors)?;
        Ok(Self {
            detectors,
            prefilter,
            anchor_detectors,
            field_action: action_for(cfg, "password_field"),
            mask: cfg.mask.clone(),
        })
    }

    /// Scans a JSON document; string values are scanned as text, values of password-like
    /// fields are secrets as a whole, and integers that are card numbers are found too.
    /// Detectors whose action is [`SecretAction::Mask`] replace the secret in place.
    pub fn scan_json(&self, value: &mut Value, base_pointer: &str) -> Vec<SecretFinding> {
        let mut findings = Vec::new();
        let mut pointer = base_pointer.to_owned();
        self.walk(value, &mut pointer, &mut findings, 0);
        findings
    }

    fn walk(
        &self,
        value: &mut Value,
        pointer: &mut String,
        findings: &mut Vec<SecretFinding>,
        depth: usize,
    ) {
        if depth > 128 {
            return;
        }
        match value {
            Value::String(s) => {
                let (masked, found) = self.scan_text(s, pointer);
                findings.extend(found);
                if let Some(m) = masked {
                    *s = m;
                }
            }
            Value::Number(n) => {
                let card_detector = self.detectors.iter().find(|d| d.id == "payment_card");
                let digits = n.to_string();
                if let Some(d) = card_detector
                    && n.is_u64()
                    && validate::is_card_number(&digits)
                {
                    findings.push(SecretFinding {
                        detector: d.id.clone(),
                        location: pointer.clone(),
                        action: d.action,
                    });
                    if d.action == SecretAction::Mask {
                        *value = Value::String(mask_keep_last_four(&digits));
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    self.walk(item, pointer, findings, depth + 1);
                    pointer.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    let is_secret_field = self.field_action.is_some() && is_secret_field(key);
                    match (is_secret_field, &*item) {
                        (true, Value::String(s)) if !s.is_empty() => {
                            let action = self.field_action.unwrap_or(SecretAction::Monitor);
                            findings.push(SecretFinding {
                                detector: "password_field".to_owned(),
                                location: pointer.clone(),
                                action,
                            });
                            if action == SecretAction::Mask {
                                *item = Value::String(self.mask.clone());
                            }
                        }
                        _ => self.walk(item, pointer, findings, depth + 1),
                    }
                    pointer.truncate(len);
                }
            }
            Value::Null | Value::Bool(_) => {}
        }
    }

    /// Scans text; returns the masked text if anything was masked, and the findings (at
    /// most one per detector for this text).
    pub fn scan_text(&self, text: &str, location: &str) -> (Option<String>, Vec<SecretFinding>) {
        let mut candidates = vec![false; self.detectors.len()];
        let mut any = false;
        for m in self.prefilter.find_overlapping_iter(text) {
            for &d in &self.anchor_detectors[m.pattern().as_usize()] {
                candidates[d] = true;
                any = true;
            }
        }
        let digit_run = has_digit_run(text.as_bytes(), 13);
        let iban_start = has_iban_start(text.as_bytes());
        for (i, d) in self.detectors.iter().enumerate() {
            let on = match d.gate {
                None => true,
                Some(Gate::DigitRun) => digit_run,
                Some(Gate::IbanStart) => iban_start,
                Some(Gate::Literals(_)) => candidates[i],
            };
            candidates[i] = on;
            any |= on;
        }
        if !any {
            return (None, Vec::new());
        }
        // (start, end, detector index) of every secret to mask.
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        let mut findings = Vec::new();
        for (i, d) in self.detectors.iter().enumerate() {
            if !candidates[i] {
                continue;
            }
            let mut found = false;
            for caps in d.regex.captures_iter(text) {
                let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                    continue;
                };
                if let Some(check) = d.validate
                    && !check(m.as_str())
                {
                    continue;
                }
                found = true;
                if d.action == SecretAction::Mask {
                    spans.push((m.start(), m.end(), i));
                }
            }
            if found {
                findings.push(SecretFinding {
                    detector: d.id.clone(),
                    location: location.to_owned(),
                    action: d.action,
                });
            }
        }
        if spans.is_empty() {
            return (None, findings);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end, i) in spans {
            if start < pos {
                continue; // overlaps a span already masked
            }
            out.push_str(&text[pos..start]);
            let secret = &text[start..end];
            match self.detectors[i].style {
                MaskStyle::Replace => out.push_str(&self.mask),
                MaskStyle::KeepLastFour => out.push_str(&mask_keep_last_four(secret)),
                MaskStyle::Iban => out.push_str(&mask_iban(secret)),
            }
            pos = end;
        }
        out.push_str(&text[pos..]);
        (Some(out), findings)
    }
}

fn is_secret_field(key: &str) -> bool {
    let normal: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    SECRET_FIELDS.contains(&normal.as_str())
        || ["password", "passwd", "secret", "apikey", "privatekey"]
            .iter()
            .any(|s| normal.ends_with(s))
}

/// Replaces every digit but the last four with `*`, keeping separators.
fn mask_keep_last_four(secret: &str) -> String {
    let total = secret.bytes().filter(u8::is_ascii_digit).count();
    let mut seen = 0;
    secret
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                seen += 1;
                if seen > total.saturating_sub(4) {
                    c
                } else {
                    '*'
                }
            } else {
                c
            }
        })
        .collect()
}

/// Keeps the country code and the last four characters of an IBAN.
fn mask_iban(secret: &str) -> String {
    let total = secret.chars().filter(|c| !c.is_whitespace()).count();
    let mut seen = 0;
    secret
        .chars()
        .map(|c| {
            if c.is_whitespace() {
                return c;
            }
            seen += 1;
            if seen <= 2 || seen > total.saturating_sub(4) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Whether `bytes` contain `min` digits in a run where only single spaces or dashes
/// separate them.
fn has_digit_run(bytes: &[u8], min: usize) -> bool {
    let mut digits = 0;
    let mut last_was_sep = false;
    for &b in bytes {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= min {
                return true;
            }
            last_was_sep = false;
        } else if (b == b' ' || b == b'-') && digits > 0 && !last_was_sep {
            last_was_sep = true;
        } else {
            digits = 0;
            last_was_sep = false;
        }
    }
    false
}

fn has_iban_start(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_uppercase()
            && w[2].is_ascii_digit()
            && w[3].is_ascii_digit()
    })
}
