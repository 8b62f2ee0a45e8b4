//! The validated model of `detection:`: which Sigma rules run on the live event stream and
//! what their alerts trigger (blocks, a signed webhook).
//!
//! Rules are read and compiled here, at config load, so a rule that does not parse is a
//! config error naming the rule file and line, and a bad reload keeps the running engine.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use portcullis_sigma::{Level, RuleSet};
use serde::Serialize;

use super::model::{Secret, Validator};
use super::raw::{RawDetection, RawDetectionResponse};
use super::units::parse_duration;

/// `detection:` validated, with its rules compiled.
#[derive(Clone, Serialize)]
pub struct DetectionConfig {
    pub rule_paths: Vec<PathBuf>,
    #[serde(skip)]
    pub rules: Arc<RuleSet>,
    pub field_mapping: BTreeMap<String, String>,
    pub queue: usize,
    pub max_groups: usize,
    pub responses: Vec<DetectionResponse>,
    /// Hash of the rule texts and settings: a reload that changes neither keeps the running
    /// engine and its open correlation windows.
    pub fingerprint: u64,
}

impl fmt::Debug for DetectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectionConfig")
            .field("rule_paths", &self.rule_paths)
            .field("responses", &self.responses)
            .finish_non_exhaustive()
    }
}

/// Who an automatic block applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockSubject {
    Ip,
    Principal,
}

/// One automatic response to alerts.
#[derive(Debug, Clone, Serialize)]
pub struct DetectionResponse {
    /// Rule ids or titles (empty: any rule).
    pub rules: Vec<String>,
    #[serde(serialize_with = "ser_level")]
    pub min_level: Option<Level>,
    pub block: Option<(BlockSubject, Duration)>,
    pub webhook: Option<Webhook>,
}

fn ser_level<S: serde::Serializer>(l: &Option<Level>, s: S) -> Result<S::Ok, S::Error> {
    match l {
        Some(l) => s.serialize_str(l.as_str()),
        None => s.serialize_none(),
    }
}

impl DetectionResponse {
    /// Whether this response applies to an alert of `rule_id` / `title` at `level`.
    pub fn applies(&self, rule_id: &str, title: &str, level: Level) -> bool {
        (self.rules.is_empty() || self.rules.iter().any(|r| r == rule_id || r == title))
            && self.min_level.is_none_or(|min| level >= min)
    }
}

/// A SOAR endpoint that receives findings.
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub url: String,
    pub secret: Secret,
    pub timeout: Duration,
}

pub(super) fn detection_config(
    v: &mut Validator<'_>,
    raw: &RawDetection,
) -> Option<DetectionConfig> {
    let mut rules = RuleSet::new();
    let mut rule_paths = Vec::new();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if raw.rules.is_empty() {
        v.err("detection.rules", "name at least one rule file or folder");
    }
    for (i, p) in raw.rules.iter().enumerate() {
        let path = v.path(p);
        let files = match portcullis_sigma::rule_files(&path) {
            Ok(files) => files,
            Err(e) => {
                v.err(
                    &format!("detection.rules[{i}]"),
                    format!("cannot read `{}`: {e}", path.display()),
                );
                continue;
            }
        };
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    v.err(
                        &format!("detection.rules[{i}]"),
                        format!("cannot read `{}`: {e}", file.display()),
                    );
                    continue;
                }
            };
            file.hash(&mut hasher);
            text.hash(&mut hasher);
            if let Err(e) = rules.add_yaml(&text, &file) {
                v.err(
                    &format!("detection.rules[{i}]"),
                    format!("invalid Sigma rule: {e}"),
                );
            }
        }
        rule_paths.push(path);
    }
    for e in rules.resolve() {
        v.err("detection.rules", format!("invalid Sigma rule: {e}"));
    }
    let queue = raw.queue.unwrap_or(65_536);
    if queue == 0 {
        v.err("detection.queue", "must be greater than zero");
    }
    let max_groups = raw.max_groups.unwrap_or(100_000);
    if max_groups == 0 {
        v.err("detection.max_groups", "must be greater than zero");
    }
    let responses: Vec<DetectionResponse> = raw
        .responses
        .iter()
        .enumerate()
        .filter_map(|(i, r)| detection_response(v, &format!("detection.responses[{i}]"), r))
        .collect();
    raw.field_mapping.hash(&mut hasher);
    queue.hash(&mut hasher);
    max_groups.hash(&mut hasher);
    format!("{responses:?}").hash(&mut hasher);
    // Debug hides secrets; a new webhook key must still restart the engine.
    for w in responses.iter().filter_map(|r| r.webhook.as_ref()) {
        w.secret.expose().hash(&mut hasher);
    }
    Some(DetectionConfig {
        fingerprint: hasher.finish(),
        rule_paths,
        rules: Arc::new(rules),
        field_mapping: raw.field_mapping.clone(),
        queue,
        max_groups,
        responses,
    })
}

fn detection_response(
    v: &mut Validator<'_>,
    at: &str,
    r: &RawDetectionResponse,
) -> Option<DetectionResponse> {
    let min_level = match r.min_level.as_deref() {
        None => None,
        Some(text) => match Level::parse(text) {
            Some(l) => Some(l),
            None => {
                v.err(
                    &format!("{at}.min_level"),
                    format!(
                        "`{text}` is not a level: informational, low, medium, high or critical"
                    ),
                );
                None
            }
        },
    };
    let block = match &r.block {
        None => None,
        Some(b) => {
            let subject = match b.subject.as_deref().unwrap_or("ip") {
                "ip" => BlockSubject::Ip,
                "principal" => BlockSubject::Principal,
                other => {
                    v.err(
                        &format!("{at}.block.subject"),
                        format!("`{other}` is not a block subject: use `ip` or `principal`"),
                    );
                    BlockSubject::Ip
                }
            };
            match parse_duration(&b.duration) {
                Ok(d) if !d.is_zero() => Some((subject, d)),
                Ok(_) => {
                    v.err(&format!("{at}.block.for"), "must be greater than zero");
                    None
                }
                Err(e) => {
                    v.err(&format!("{at}.block.for"), e);
                    None
                }
            }
        }
    };
    let webhook = match &r.webhook {
        None => None,
        Some(w) => {
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                v.err(&format!("{at}.webhook.url"), "must be an http(s) URL");
            }
            let secret = v.secret(&format!("{at}.webhook.secret"), &w.secret);
            let timeout = v.duration(
                &format!("{at}.webhook.timeout"),
                &w.timeout,
                Duration::from_secs(5),
            );
            secret.map(|secret| Webhook {
                url: w.url.clone(),
                secret,
                timeout,
            })
        }
    };
    if block.is_none() && webhook.is_none() && r.block.is_none() && r.webhook.is_none() {
        v.err(at, "a response needs `block`, `webhook` or both");
    }
    Some(DetectionResponse {
        rules: r.rules.clone(),
        min_level,
        block,
        webhook,
    })
}
