//! The public result model of attack inspection: families, severities, findings.
//!
//! Findings carry stable identifiers and classification (CWE, MITRE ATT&CK) so that the
//! gateway can log them as security events and operators can switch individual detectors
//! off; they never carry the matched value, only where it was found.

/// The attack class a detector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting (HTML/JavaScript injection into pages).
    Xss,
    /// Path traversal and local file inclusion.
    PathTraversal,
    /// Remote file inclusion.
    RemoteFileInclusion,
    /// OS command injection (Unix shells and Windows cmd/PowerShell).
    CommandInjection,
    /// PHP code injection.
    PhpInjection,
    /// Server-side request forgery towards internal addresses.
    Ssrf,
    /// NoSQL (MongoDB-style) operator injection.
    NoSqlInjection,
    /// JavaScript prototype pollution.
    PrototypePollution,
    /// XML external entities.
    Xxe,
    /// CR/LF injection into headers (response splitting).
    HeaderInjection,
    /// Java injection: Log4Shell lookups, OGNL, SpEL, dangerous classes and gadgets.
    JavaInjection,
    /// Session fixation through session ids in parameters.
    SessionFixation,
    /// Node.js / server-side JavaScript injection.
    NodeInjection,
    /// Server-side template injection.
    TemplateInjection,
}

impl Family {
    /// Every family, in a fixed order (the order is also the prefilter bit index).
    pub const ALL: [Family; 15] = [
        Family::Sqli,
        Family::Xss,
        Family::PathTraversal,
        Family::RemoteFileInclusion,
        Family::CommandInjection,
        Family::PhpInjection,
        Family::Ssrf,
        Family::NoSqlInjection,
        Family::PrototypePollution,
        Family::Xxe,
        Family::HeaderInjection,
        Family::JavaInjection,
        Family::SessionFixation,
        Family::NodeInjection,
        Family::TemplateInjection,
    ];

    /// The stable family name, also the prefix of its detectors' ids and accepted in
    /// [`crate::AttackConfig::disabled`].
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Sqli => "sqli",
            Family::Xss => "xss",
            Family::PathTraversal => "lfi",
            Family::RemoteFileInclusion => "rfi",
            Family::CommandInjection => "rce",
            Family::PhpInjection => "php",
            Family::Ssrf => "ssrf",
            Family::NoSqlInjection => "nosqli",
            Family::PrototypePollution => "proto",
            Family::Xxe => "xxe",
            Family::HeaderInjection => "crlf",
            Family::JavaInjection => "java",
            Family::SessionFixation => "session",
            Family::NodeInjection => "node",
            Family::TemplateInjection => "ssti",
        }
    }

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// How bad a finding is; the score contribution follows the OWASP CRS anomaly scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// CRS "notice": 2 points.
    Low,
    /// CRS "warning": 3 points.
    Medium,
    /// CRS "error": 4 points.
    High,
    /// CRS "critical": 5 points, enough alone to reach the default threshold.
    Critical,
}

impl Severity {
    /// The anomaly-score contribution.
    pub fn score(self) -> u32 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }
}

/// One detector firing on one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttackFinding {
    /// Stable detector id, e.g. `sqli.tautology`.
    pub id: &'static str,
    /// The attack family.
    pub family: Family,
    /// The detector's severity.
    pub severity: Severity,
    /// The score contribution (`severity.score()`).
    pub score: u32,
    /// CWE id of the weakness the attack targets.
    pub cwe: u32,
    /// MITRE ATT&CK technique id.
    pub attack_technique: &'static str,
    /// Where the value was, JSON-pointer style (`/query/q`, `/body/user/name`); never the value.
    pub location: String,
}

/// The result of inspecting one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Every finding, unique per (detector, location).
    pub findings: Vec<AttackFinding>,
    /// Anomaly score: the sum of the scores of the distinct detectors that fired (a
    /// payload repeated in many fields counts once).
    pub score: u32,
    /// True when the value or byte cap was reached and part of the request was not inspected.
    pub capped: bool,
    /// How many values were inspected.
    pub values_inspected: usize,
}

impl Inspection {
    /// Whether the score reaches `threshold`.
    pub fn exceeds(&self, threshold: u32) -> bool {
        self.score >= threshold
    }
}
