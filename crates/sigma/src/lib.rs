//! Sigma rule engine: loads Sigma 2.x detection, filter and correlation rules from YAML and
//! evaluates them on a stream of events — standalone, with no dependency on the rest of
//! Portcullis.
//!
//! - [`RuleSet`] parses and compiles rules ([`RuleSet::add_yaml`], [`RuleSet::load_dir`]);
//!   errors name the file, line and problem ([`SigmaError`]). The parsed form stays available
//!   ([`RuleSet::parsed`], [`ast`]) for converters to other query languages.
//! - [`FieldMapping`] maps Sigma field names to event paths; [`FieldMapping::web_to_ocsf`] maps
//!   the web server / proxy taxonomy onto OCSF HTTP Activity events.
//! - [`Event`] is what the engine reads; implemented for `serde_json::Value`.
//! - [`Engine`] evaluates events: single-event matches and correlations over sliding windows
//!   with bounded state ([`CorrelationLimits`]).
//! - [`attack_ids`] pulls ATT&CK tactics and techniques out of rule tags.

pub mod ast;
pub mod attack;
pub mod attack_names;
mod compile;
pub mod condition;
pub mod convert;
pub mod correlation;
mod engine;
pub mod error;
pub mod event;
pub mod mapping;
pub mod modifiers;
mod parse;
mod ruleset;

pub use ast::Level;
pub use attack::attack_ids;
pub use correlation::{CorrelationLimits, CorrelationStats};
pub use engine::{Engine, Match, MatchKind};
pub use error::{LoadProblem, SigmaError};
pub use event::{Event, FieldValue, KeywordFields};
pub use mapping::{Derive, FieldMapping, FieldTarget};
pub use parse::{parse_rules, parse_timespan};
pub use ruleset::{RuleId, RuleSet, rule_files};
