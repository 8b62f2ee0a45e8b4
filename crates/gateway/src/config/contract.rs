//! The validated model of a route's contract settings: its OpenAPI document, attack-payload
//! detection and data protection.
//!
//! The heavy parts (the compiled OpenAPI document, the detectors' regex sets) are built here,
//! at config load, so a broken spec or pattern is a config error with its location and a
//! reload that fails keeps the previous snapshot. The snapshot shares them through `Arc`.

use std::fmt;
use std::sync::Arc;

use portcullis_inspect::{
    AttackConfig, AttackDetector, CustomPattern, SecretAction, SecretConfig, SecretScanner,
};
use portcullis_openapi::{ApiSpec, ValidationOptions};
use serde::Serialize;

use super::model::Validator;
use super::raw::{RawDataProtection, RawInspect, RawOpenApi};

/// Refuse, or only record findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    Enforce,
    Monitor,
}

/// What happens to response properties the contract does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseContract {
    /// Remove them and record a finding.
    Filter,
    /// Refuse the response with 502.
    Enforce,
    /// Record a finding, change nothing.
    Monitor,
    /// Do not look at responses.
    Off,
}

/// A route's OpenAPI settings with the compiled document.
#[derive(Clone, Serialize)]
pub struct OpenApiPolicy {
    /// The document's path as configured (resolved against the config file's folder).
    pub spec: String,
    #[serde(skip)]
    pub api: Arc<ApiSpec>,
    pub mode: Enforcement,
    pub reject_unknown_properties: bool,
    pub reject_unknown_query_params: bool,
    pub responses: ResponseContract,
}

impl OpenApiPolicy {
    pub fn options(&self) -> ValidationOptions {
        ValidationOptions {
            reject_unknown_properties: self.reject_unknown_properties,
            reject_unknown_query_params: self.reject_unknown_query_params,
        }
    }
}

impl fmt::Debug for OpenApiPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenApiPolicy")
            .field("spec", &self.spec)
            .field("mode", &self.mode)
            .field("responses", &self.responses)
            .finish_non_exhaustive()
    }
}

/// A route's attack-payload detection.
#[derive(Clone, Serialize)]
pub struct InspectPolicy {
    #[serde(skip)]
    pub detector: Arc<AttackDetector>,
    pub mode: Enforcement,
    pub threshold: u32,
    pub disabled: Vec<String>,
}

impl fmt::Debug for InspectPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InspectPolicy")
            .field("mode", &self.mode)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// A route's secret and personal-data detection.
#[derive(Clone, Serialize)]
pub struct DataProtectionPolicy {
    #[serde(skip)]
    pub scanner: Arc<SecretScanner>,
    /// Detector → action, as configured (`*` for every built-in).
    pub detectors: Vec<(String, String)>,
    pub request_bodies: bool,
    pub response_headers: bool,
    pub max_scan_body: u64,
    /// Every action is `monitor`: nothing is ever changed or refused, so a response too large
    /// to scan may pass unscanned.
    pub monitor_only: bool,
}

impl fmt::Debug for DataProtectionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataProtectionPolicy")
            .field("detectors", &self.detectors)
            .field("request_bodies", &self.request_bodies)
            .finish_non_exhaustive()
    }
}

fn enforcement(v: &mut Validator<'_>, field: &str, raw: Option<&str>) -> Option<Enforcement> {
    match raw.unwrap_or("enforce") {
        "enforce" => Some(Enforcement::Enforce),
        "monitor" => Some(Enforcement::Monitor),
        "off" => None,
        other => {
            v.err(
                field,
                format!("`{other}` is not a mode: use `enforce`, `monitor` or `off`"),
            );
            None
        }
    }
}

pub(super) fn openapi_policy(
    v: &mut Validator<'_>,
    at: &str,
    raw: &RawOpenApi,
) -> Option<OpenApiPolicy> {
    let field = format!("{at}.openapi");
    let mode = match raw.mode.as_deref().unwrap_or("enforce") {
        "enforce" => Enforcement::Enforce,
        "monitor" => Enforcement::Monitor,
        other => {
            v.err(
                &format!("{field}.mode"),
                format!("`{other}` is not a mode: use `enforce` or `monitor`"),
            );
            Enforcement::Enforce
        }
    };
    let responses = match raw.responses.as_deref().unwrap_or("filter") {
        "filter" => ResponseContract::Filter,
        "enforce" => ResponseContract::Enforce,
        "monitor" => ResponseContract::Monitor,
        "off" => ResponseContract::Off,
        other => {
            v.err(
                &format!("{field}.responses"),
                format!(
                    "`{other}` is not a response mode: use `filter`, `enforce`, `monitor` or `off`"
                ),
            );
            ResponseContract::Filter
        }
    };
    let path = v.path(&raw.spec);
    let api = match ApiSpec::load(&path) {
        Ok(api) => Arc::new(api),
        Err(e) => {
            v.err(
                &format!("{field}.spec"),
                format!("the OpenAPI document is invalid: {e}"),
            );
            return None;
        }
    };
    Some(OpenApiPolicy {
        spec: path.display().to_string(),
        api,
        mode,
        reject_unknown_properties: raw.reject_unknown_properties.unwrap_or(true),
        reject_unknown_query_params: raw.reject_unknown_query_params.unwrap_or(false),
        responses,
    })
}

pub(super) fn inspect_policy(
    v: &mut Validator<'_>,
    at: &str,
    raw: &RawInspect,
) -> Option<InspectPolicy> {
    let field = format!("{at}.inspect");
    let mode = enforcement(v, &format!("{field}.mode"), raw.mode.as_deref())?;
    let threshold = raw.threshold.unwrap_or(5);
    if threshold == 0 {
        v.err(&format!("{field}.threshold"), "must be greater than zero");
    }
    let cfg = AttackConfig {
        disabled: raw.disabled.clone(),
        ..AttackConfig::default()
    };
    match AttackDetector::new(&cfg) {
        Ok(detector) => Some(InspectPolicy {
            detector: Arc::new(detector),
            mode,
            threshold,
            disabled: raw.disabled.clone(),
        }),
        Err(e) => {
            v.err(&format!("{field}.disabled"), e.to_string());
            None
        }
    }
}

fn secret_action(v: &mut Validator<'_>, field: &str, raw: &str) -> SecretAction {
    match raw {
        "mask" => SecretAction::Mask,
        "block" => SecretAction::Block,
        "monitor" => SecretAction::Monitor,
        other => {
            v.err(
                field,
                format!("`{other}` is not an action: use `mask`, `block` or `monitor`"),
            );
            SecretAction::Monitor
        }
    }
}

pub(super) fn data_protection_policy(
    v: &mut Validator<'_>,
    at: &str,
    raw: &RawDataProtection,
) -> Option<DataProtectionPolicy> {
    let field = format!("{at}.data_protection");
    let mut detectors = Vec::new();
    let mut monitor_only = true;
    for (id, action) in &raw.detectors {
        let action = secret_action(v, &format!("{field}.detectors.{id}"), action);
        monitor_only &= action == SecretAction::Monitor;
        detectors.push((id.clone(), action));
    }
    if raw.detectors.is_empty() {
        monitor_only = false;
    }
    let mut custom = Vec::new();
    for (i, c) in raw.custom.iter().enumerate() {
        let action = secret_action(
            v,
            &format!("{field}.custom[{i}].action"),
            c.action.as_deref().unwrap_or("mask"),
        );
        monitor_only &= action == SecretAction::Monitor;
        custom.push(CustomPattern {
            id: c.id.clone(),
            regex: c.pattern.clone(),
            action,
        });
    }
    let mut cfg = SecretConfig::default();
    if !detectors.is_empty() {
        cfg.detectors = detectors.clone();
    }
    cfg.custom = custom;
    let max_scan_body = v.size(
        &format!("{field}.max_scan_body"),
        &raw.max_scan_body,
        4 << 20,
    );
    match SecretScanner::new(&cfg) {
        Ok(scanner) => Some(DataProtectionPolicy {
            scanner: Arc::new(scanner),
            detectors: raw
                .detectors
                .iter()
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect(),
            request_bodies: raw.request_bodies,
            response_headers: raw.response_headers.unwrap_or(true),
            max_scan_body,
            monitor_only,
        }),
        Err(e) => {
            v.err(&field, e.to_string());
            None
        }
    }
}
