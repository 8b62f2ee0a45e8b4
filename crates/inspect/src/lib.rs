//! Payload inspection for the Portcullis gateway.
//!
//! Two independent engines live here, both built once at configuration load and shared
//! (`Send + Sync`) by every request:
//!
//! * [`AttackDetector`] looks for attack payloads (SQL injection, XSS, path traversal,
//!   command injection, SSRF, Log4Shell, ...) in every user-controlled value of a request,
//!   after undoing the encodings attackers use to hide them, and produces a CRS-like
//!   anomaly score that the gateway compares with the route's threshold.
//! * [`SecretScanner`] finds credentials and personal data (private keys, cloud and SaaS
//!   tokens, card numbers, IBANs, password fields) in JSON or text and masks them in place.
//!
//! Both engines only use linear-time matching (`regex` and `aho-corasick`): attacker input
//! can never trigger catastrophic backtracking.

mod attack;
mod error;
mod pattern;
mod secrets;

pub use attack::{
    AttackConfig, AttackDetector, AttackFinding, Family, Inspection, RequestView, Severity,
    detector_ids,
};
pub use error::InspectError;
pub use secrets::{
    CustomPattern, SecretAction, SecretConfig, SecretFinding, SecretScanner, secret_detector_ids,
};
