//! The parsed, uncompiled form of Sigma rules: what the YAML said, with line numbers, and nothing
//! resolved or optimised yet.
//!
//! This model is public and kept stable on purpose: besides the matcher (which compiles it), query
//! converters (Splunk, Lucene, ES|QL, KQL…) read it to turn rules into other languages. So it keeps
//! the rule's own vocabulary — Sigma field names before any mapping, modifiers in the order they
//! were written, values as written (wildcards and escapes still in the text; see
//! [`crate::modifiers::parse_wildcards`]) and the condition as a tree of search identifiers.

use std::path::PathBuf;

/// Severity of a rule (`level`). Ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Level {
    Informational,
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

impl Level {
    /// Parses a Sigma `level` value (lower case in rules; matched case-insensitively).
    pub fn parse(text: &str) -> Option<Level> {
        match text.to_ascii_lowercase().as_str() {
            "informational" => Some(Level::Informational),
            "low" => Some(Level::Low),
            "medium" => Some(Level::Medium),
            "high" => Some(Level::High),
            "critical" => Some(Level::Critical),
            _ => None,
        }
    }

    /// The spelling used in Sigma rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `logsource`: which logs a rule (or filter) is meant for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSource {
    pub category: Option<String>,
    pub product: Option<String>,
    pub service: Option<String>,
    pub definition: Option<String>,
}

impl LogSource {
    /// True when every attribute that `self` (a filter's log source) names is equal in `rule`.
    /// An attribute the filter leaves out matches anything, as in pySigma.
    pub fn covers(&self, rule: &LogSource) -> bool {
        fn same(want: &Option<String>, have: &Option<String>) -> bool {
            match want {
                None => true,
                Some(want) => have
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(want)),
            }
        }
        same(&self.category, &rule.category)
            && same(&self.product, &rule.product)
            && same(&self.service, &rule.service)
    }
}

/// Descriptive metadata shared by detection, correlation and filter rules.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleMeta {
    /// `id` (usually a UUID). Rules without one get no id; they can still be named.
    pub id: Option<String>,
    /// `name`: the human-readable handle correlation rules may use instead of the id.
    pub name: Option<String>,
    pub title: String,
    pub status: Option<String>,
    pub level: Option<Level>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    pub date: Option<String>,
    pub modified: Option<String>,
    pub logsource: LogSource,
    /// File the rule came from and the line its YAML document starts on (1-based).
    pub file: PathBuf,
    pub line: usize,
}

impl RuleMeta {
    /// The identifier matches report: the id, else the name, else the title.
    pub fn key(&self) -> &str {
        self.id
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(self.title.as_str())
    }
}

/// One parsed YAML document of a rule file.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub meta: RuleMeta,
    pub body: RuleBody,
}

/// What kind of Sigma document this is.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleBody {
    Detection(Detection),
    Correlation(Correlation),
    Filter(Filter),
}

/// A scalar value as written in a rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string, still with its wildcards (`*`, `?`) and backslash escapes.
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl Value {
    /// The value as text, as Sigma treats every value ("all values are treated as strings").
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => None,
        }
    }
}

/// A value modifier (`field|modifier: value`), in the order written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Re,
    /// `re` sub-modifier `i`: case-insensitive regular expression.
    ReI,
    /// `re` sub-modifier `m`: `^`/`$` match at line boundaries.
    ReM,
    /// `re` sub-modifier `s`: `.` matches newlines.
    ReS,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    /// Alias of `utf16le`.
    Wide,
    Windash,
    Cidr,
    Exists,
    Lt,
    Lte,
    Gt,
    Gte,
    Neq,
    Expand,
    FieldRef,
    Cased,
}

impl Modifier {
    /// Parses a modifier name; `None` for names the specification does not define (or this
    /// engine does not implement, such as the time modifiers).
    pub fn parse(name: &str) -> Option<Modifier> {
        Some(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "re" => Modifier::Re,
            "i" => Modifier::ReI,
            "m" => Modifier::ReM,
            "s" => Modifier::ReS,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "wide" => Modifier::Wide,
            "windash" => Modifier::Windash,
            "cidr" => Modifier::Cidr,
            "exists" => Modifier::Exists,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "neq" => Modifier::Neq,
            "expand" => Modifier::Expand,
            "fieldref" => Modifier::FieldRef,
            "cased" => Modifier::Cased,
            _ => return None,
        })
    }

    /// The spelling used in rules.
    pub fn as_str(self) -> &'static str {
        match self {
            Modifier::Contains => "contains",
            Modifier::StartsWith => "startswith",
            Modifier::EndsWith => "endswith",
            Modifier::All => "all",
            Modifier::Re => "re",
            Modifier::ReI => "i",
            Modifier::ReM => "m",
            Modifier::ReS => "s",
            Modifier::Base64 => "base64",
            Modifier::Base64Offset => "base64offset",
            Modifier::Utf16Le => "utf16le",
            Modifier::Utf16Be => "utf16be",
            Modifier::Utf16 => "utf16",
            Modifier::Wide => "wide",
            Modifier::Windash => "windash",
            Modifier::Cidr => "cidr",
            Modifier::Exists => "exists",
            Modifier::Lt => "lt",
            Modifier::Lte => "lte",
            Modifier::Gt => "gt",
            Modifier::Gte => "gte",
            Modifier::Neq => "neq",
            Modifier::Expand => "expand",
            Modifier::FieldRef => "fieldref",
            Modifier::Cased => "cased",
        }
    }
}

/// One `field|modifiers: values` item of a selection map, or a keyword list (`field: None`).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMatch {
    /// Sigma field name as written (before field mapping); `None` for keywords, which are
    /// searched in the whole event.
    pub field: Option<String>,
    pub modifiers: Vec<Modifier>,
    /// Alternatives (OR), or all required with the `all` modifier. Never empty.
    pub values: Vec<Value>,
    pub line: usize,
}

/// A search identifier of the `detection` section: OR of alternatives, each an AND of items.
/// A map is one alternative; a list of maps is several; a list of plain values is one keyword
/// item.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    pub name: String,
    pub alternatives: Vec<Vec<FieldMatch>>,
    pub line: usize,
}

/// A condition expression over search identifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// A search identifier by name.
    Search(String),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    /// `1 of pattern` (`*` wildcards in the pattern).
    OneOf(String),
    /// `all of pattern`.
    AllOf(String),
    /// `1 of them`: any search identifier not starting with `_`.
    OneOfThem,
    /// `all of them`.
    AllOfThem,
}

/// The `detection` section of a rule (or the body of a filter).
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Search identifiers in the order they were written.
    pub searches: Vec<Search>,
    /// The conditions (a list of conditions is their OR), parsed.
    pub conditions: Vec<Condition>,
    /// The condition text(s) as written.
    pub condition_text: Vec<String>,
    pub condition_line: usize,
}

/// Correlation type (`correlation.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CorrelationType {
    EventCount,
    ValueCount,
    Temporal,
    TemporalOrdered,
    ValueSum,
    ValueAvg,
}

impl CorrelationType {
    pub fn parse(text: &str) -> Option<CorrelationType> {
        Some(match text {
            "event_count" => CorrelationType::EventCount,
            "value_count" => CorrelationType::ValueCount,
            "temporal" => CorrelationType::Temporal,
            "temporal_ordered" => CorrelationType::TemporalOrdered,
            "value_sum" => CorrelationType::ValueSum,
            "value_avg" => CorrelationType::ValueAvg,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationType::EventCount => "event_count",
            CorrelationType::ValueCount => "value_count",
            CorrelationType::Temporal => "temporal",
            CorrelationType::TemporalOrdered => "temporal_ordered",
            CorrelationType::ValueSum => "value_sum",
            CorrelationType::ValueAvg => "value_avg",
        }
    }
}

/// A comparison of a correlation `condition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl CmpOp {
    pub fn parse(text: &str) -> Option<CmpOp> {
        Some(match text {
            "gt" => CmpOp::Gt,
            "gte" => CmpOp::Gte,
            "lt" => CmpOp::Lt,
            "lte" => CmpOp::Lte,
            "eq" => CmpOp::Eq,
            "neq" => CmpOp::Neq,
            _ => return None,
        })
    }

    /// Applies the comparison `value OP threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            CmpOp::Gt => value > threshold,
            CmpOp::Gte => value >= threshold,
            CmpOp::Lt => value < threshold,
            CmpOp::Lte => value <= threshold,
            CmpOp::Eq => value == threshold,
            CmpOp::Neq => value != threshold,
        }
    }
}

/// A field-name alias of a correlation: one name, a field per referenced rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    /// (rule name or id, field name in that rule's events)
    pub fields: Vec<(String, String)>,
}

/// The `correlation` section of a correlation rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Correlation {
    pub kind: CorrelationType,
    /// Referenced rules by id or name, in order (the order matters for `temporal_ordered`).
    pub rules: Vec<String>,
    pub group_by: Vec<String>,
    /// `timespan` as written, and in milliseconds.
    pub timespan: String,
    pub timespan_ms: i64,
    /// AND of comparisons; empty for temporal types without a condition (meaning: all rules).
    pub condition: Vec<(CmpOp, f64)>,
    /// `condition.field` for value_count (one or several fields: their values together are
    /// counted) / value_sum / value_avg (exactly one field).
    pub fields: Vec<String>,
    pub aliases: Vec<Alias>,
    /// `generate` (top level of the rule): also emit the referenced rules' own matches.
    pub generate: bool,
    pub line: usize,
}

/// The `filter` section of a filter (meta-filter) rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    /// Rules (by id or name) the filter applies to.
    pub rules: Vec<String>,
    /// The filter's selections and condition; a rule's match is dropped where this matches.
    pub detection: Detection,
    pub line: usize,
}
