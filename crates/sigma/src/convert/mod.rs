//! Sigma rules → SIEM queries (Splunk SPL, Elasticsearch Lucene query strings, ES|QL, KQL), so
//! the detections Portcullis runs at the gateway can also run in a SIEM over the events every
//! gateway instance ships there.
//!
//! Conversion has two halves: `tree` turns a rule's detection into a boolean tree of
//! `field = value` leaves with the modifiers applied (target-independent), and `text` renders
//! that tree in a query language. Field names are translated with [`FieldNames`], whose default
//! maps Sigma's web server/proxy taxonomy onto the dotted OCSF HTTP Activity fields Portcullis
//! events have in the SIEM.
//!
//! The output follows pySigma (the reference Sigma converter) token for token wherever that gives
//! a correct query; `tests/convert_pysigma.rs` checks this against pySigma's own output and
//! `tests/fixtures/convert/DIFFERENCES.md` explains each deliberate difference.
//!
//! Case sensitivity, per target (Sigma matches strings case-insensitively unless `cased`):
//! - Splunk compares field values case-insensitively, as Sigma does; `cased` uses `CASE()`.
//! - KQL: `=~`, `in~`, `contains`, `startswith`, `endswith` are case-insensitive; `cased` uses
//!   `==` and the `_cs` operators.
//! - Lucene and ES|QL compare `keyword` fields case-sensitively and have no per-query switch
//!   (Lucene query strings have no `case_insensitive` flag; ES|QL `like`/`==` neither). Like
//!   pySigma's Elasticsearch backends, values are emitted as written in the rule, so matching is
//!   exact-case there. Index the string fields with a lowercase normalizer (or as `wildcard`
//!   fields queried through a lowercasing analyzer) to get Sigma's semantics for rules written
//!   in lower case; regular expressions can opt in with `|re|i`, which becomes `(?i)` — honoured
//!   by ES|QL `rlike` and KQL, ignored by Lucene's regexp syntax.

mod correlation;
mod text;
mod tree;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::ast::{Detection, Rule, RuleBody};
use crate::error::SigmaError;

/// A SIEM query language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Splunk SPL search.
    Splunk,
    /// Elasticsearch / OpenSearch Lucene query string (`query_string`, Kibana "Lucene").
    Lucene,
    /// Elasticsearch ES|QL.
    Esql,
    /// Kusto Query Language (Microsoft Sentinel, Azure Data Explorer): the `where` predicate.
    Kql,
}

impl Target {
    /// All targets, in a stable order.
    pub const ALL: [Target; 4] = [Target::Splunk, Target::Lucene, Target::Esql, Target::Kql];

    /// Parses a target name as the CLI takes it (`splunk`, `lucene`, `esql`, `kql`; `kusto` is
    /// accepted for KQL, `es|ql` for ES|QL).
    pub fn parse(name: &str) -> Option<Target> {
        match name.to_ascii_lowercase().as_str() {
            "splunk" | "spl" => Some(Target::Splunk),
            "lucene" | "elasticsearch" => Some(Target::Lucene),
            "esql" | "es|ql" => Some(Target::Esql),
            "kql" | "kusto" => Some(Target::Kql),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Target::Splunk => "splunk",
            Target::Lucene => "lucene",
            Target::Esql => "esql",
            Target::Kql => "kql",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a rule could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The target language cannot express something the rule uses.
    #[error("not supported by the target: {0}")]
    Unsupported(String),
    /// The rule itself is inconsistent (e.g. a modifier on a value it cannot apply to).
    #[error("invalid rule: {0}")]
    Invalid(String),
    /// A correlation rule refers to a rule that was not given.
    #[error("correlation refers to unknown rule '{0}'")]
    UnknownRule(String),
    /// Parsing the rule text failed.
    #[error(transparent)]
    Parse(#[from] SigmaError),
}

/// Sigma field name → the field name events have in the SIEM. Names without an entry are used
/// as they are, so rules may also name SIEM fields directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNames {
    names: HashMap<String, String>,
}

/// The Portcullis OCSF web mapping: Sigma `webserver`/`proxy` fields onto OCSF HTTP Activity.
/// Kept equal to `tools/portcullis_pipeline.yml`, the pySigma pipeline of the cross-check.
/// The engine's [`crate::FieldMapping::web_to_ocsf`] starts from this table too, so a rule
/// means the same thing live and in the SIEM.
pub(crate) const OCSF_WEB: &[(&str, &str)] = &[
    ("cs-method", "http_request.http_method"),
    ("cs-uri-stem", "http_request.url.path"),
    ("c-uri-stem", "http_request.url.path"),
    ("cs-uri-query", "http_request.url.query_string"),
    ("c-uri-query", "http_request.url.query_string"),
    ("cs-uri", "http_request.url.url_string"),
    ("c-uri", "http_request.url.url_string"),
    ("sc-status", "http_response.code"),
    ("c-ip", "src_endpoint.ip"),
    ("src_ip", "src_endpoint.ip"),
    ("cs-user-agent", "http_request.user_agent"),
    ("c-useragent", "http_request.user_agent"),
    ("cs-referer", "http_request.referrer"),
    ("cs-referrer", "http_request.referrer"),
    ("cs-host", "http_request.url.hostname"),
    ("r-dns", "http_request.url.hostname"),
    ("cs-bytes", "http_request.length"),
    ("sc-bytes", "http_response.length"),
    ("cs-version", "http_request.version"),
];

impl Default for FieldNames {
    /// The Portcullis OCSF HTTP Activity mapping.
    fn default() -> Self {
        FieldNames::identity().with_pairs(OCSF_WEB.iter().copied())
    }
}

impl FieldNames {
    /// No renaming at all.
    pub fn identity() -> Self {
        FieldNames {
            names: HashMap::new(),
        }
    }

    /// Adds (or replaces) `sigma field → SIEM field` pairs.
    pub fn with_pairs<I, K, V>(mut self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in pairs {
            self.names.insert(k.into(), v.into());
        }
        self
    }

    /// Reads `sigma field: SIEM field` pairs from a YAML map, on top of `self`.
    pub fn from_yaml(self, text: &str) -> Result<Self, String> {
        let pairs: std::collections::BTreeMap<String, String> =
            serde_saphyr::from_str(text).map_err(|e| format!("field names: {e}"))?;
        Ok(self.with_pairs(pairs))
    }

    /// The SIEM field for a Sigma field.
    pub fn resolve<'a>(&'a self, sigma_field: &'a str) -> &'a str {
        self.names
            .get(sigma_field)
            .map_or(sigma_field, String::as_str)
    }
}

/// Converts one detection rule into its queries (one per `condition` entry; usually one).
///
/// Correlation rules need the rules they refer to: use [`convert_rules`], or
/// [`convert_correlation`]. Filter rules are applied to other rules, not converted on their own.
pub fn convert_rule(
    rule: &Rule,
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<String>, ConvertError> {
    convert_rule_with_fields(rule, &[], target, mapping)
}

/// [`convert_rule`] for a rule whose `fields` list (the fields worth showing with a match) is
/// known: Splunk queries then end in `| table` of those fields, as pySigma writes them.
pub fn convert_rule_with_fields(
    rule: &Rule,
    fields: &[String],
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<String>, ConvertError> {
    detection_queries(rule, &[], fields, target, mapping)
}

/// The filter rules (meta-filters) among `rules` that apply to `rule`: those naming it (by id
/// or name) whose log source covers the rule's.
pub(crate) fn filters_for<'a>(rule: &Rule, rules: &'a [Rule]) -> Vec<&'a Detection> {
    rules
        .iter()
        .filter_map(|r| match &r.body {
            RuleBody::Filter(filter)
                if filter.rules.iter().any(|name| {
                    rule.meta.id.as_deref() == Some(name.as_str())
                        || rule.meta.name.as_deref() == Some(name.as_str())
                }) && r.meta.logsource.covers(&rule.meta.logsource) =>
            {
                Some(&filter.detection)
            }
            _ => None,
        })
        .collect()
}

fn detection_queries(
    rule: &Rule,
    filters: &[&Detection],
    fields: &[String],
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<String>, ConvertError> {
    match &rule.body {
        RuleBody::Detection(detection) => {
            let dialect = text::Dialect::of(target);
            let trees =
                tree::build_filtered(detection, filters, &|f| mapping.resolve(f).to_string())?;
            let table = if target == Target::Splunk && !fields.is_empty() {
                let mapped: Vec<&str> = fields.iter().map(|f| mapping.resolve(f)).collect();
                format!(" | table {}", mapped.join(","))
            } else {
                String::new()
            };
            trees
                .iter()
                .map(|cond| {
                    text::Renderer::new(&dialect)
                        .query(cond)
                        .map(|q| format!("{q}{table}"))
                })
                .collect()
        }
        RuleBody::Correlation(_) => Err(ConvertError::Unsupported(
            "a correlation rule is converted together with the rules it refers to (convert_rules)"
                .to_string(),
        )),
        RuleBody::Filter(_) => Err(ConvertError::Unsupported(
            "filter rules modify other rules and have no query of their own".to_string(),
        )),
    }
}

/// Converts a correlation rule; `rules` must contain the rules it refers to (by name or id).
pub fn convert_correlation(
    rule: &Rule,
    rules: &[Rule],
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<String>, ConvertError> {
    correlation::convert(rule, rules, &[], target, mapping)
}

/// What [`convert_rules`] produced for one rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Converted {
    /// The rule's key (id, else name, else title).
    pub rule: String,
    /// The file the rule came from.
    pub file: PathBuf,
    pub title: String,
    pub queries: Result<Vec<String>, ConvertError>,
}

/// Converts a set of rules (typically all documents of a directory), resolving correlation
/// references among them. As in pySigma, a detection rule referred to by a correlation is not
/// output on its own unless the correlation says `generate: true`. Filter rules are not output;
/// they are applied to the rules they name (`and not (filter)`).
pub fn convert_rules(rules: &[Rule], target: Target, mapping: &FieldNames) -> Vec<Converted> {
    convert_rules_with_fields(rules, &[], target, mapping)
}

/// [`convert_rules`] with each rule's `fields` list (`fields[i]` belongs to `rules[i]`; missing
/// entries mean none). ES|QL correlations collect the referenced rules' fields with `values()`.
pub fn convert_rules_with_fields(
    rules: &[Rule],
    fields: &[Vec<String>],
    target: Target,
    mapping: &FieldNames,
) -> Vec<Converted> {
    let mut referenced: Vec<&str> = Vec::new();
    for rule in rules {
        if let RuleBody::Correlation(c) = &rule.body
            && !c.generate
        {
            referenced.extend(c.rules.iter().map(String::as_str));
        }
    }
    let is_referenced = |rule: &Rule| {
        referenced
            .iter()
            .any(|r| rule.meta.id.as_deref() == Some(*r) || rule.meta.name.as_deref() == Some(*r))
    };
    rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| !matches!(rule.body, RuleBody::Filter(_)) && !is_referenced(rule))
        .map(|(i, rule)| Converted {
            rule: rule.meta.key().to_string(),
            file: rule.meta.file.clone(),
            title: rule.meta.title.clone(),
            queries: match rule.body {
                RuleBody::Correlation(_) => {
                    correlation::convert(rule, rules, fields, target, mapping)
                }
                _ => detection_queries(
                    rule,
                    &filters_for(rule, rules),
                    fields.get(i).map_or(&[][..], Vec::as_slice),
                    target,
                    mapping,
                ),
            },
        })
        .collect()
}

/// Parses rule YAML (one or more documents) and converts it, like [`convert_rules`].
pub fn convert_yaml(
    text: &str,
    origin: &Path,
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<Converted>, ConvertError> {
    let rules = crate::parse::parse_rules(text, origin)?;
    let fields = fields_lists(text, rules.len());
    Ok(convert_rules_with_fields(&rules, &fields, target, mapping))
}

/// The `fields` list of every (non-empty) YAML document, aligned with what `parse_rules`
/// returns. The rule model does not keep `fields`; a document whose list cannot be read as
/// strings simply contributes none.
fn fields_lists(text: &str, expected: usize) -> Vec<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct FieldsOnly {
        #[serde(default)]
        fields: Vec<String>,
    }
    match serde_saphyr::from_multiple::<Option<FieldsOnly>>(text) {
        Ok(docs) => {
            let lists: Vec<Vec<String>> = docs.into_iter().flatten().map(|d| d.fields).collect();
            if lists.len() == expected {
                lists
            } else {
                tracing::debug!("fields lists do not line up with the rules; ignoring them");
                Vec::new()
            }
        }
        Err(e) => {
            tracing::debug!("cannot read fields lists: {e}");
            Vec::new()
        }
    }
}

/// Everything [`convert_dir`] produced: one entry per converted rule, and the files that could
/// not be read or parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirConversion {
    pub converted: Vec<Converted>,
    pub problems: Vec<(PathBuf, ConvertError)>,
}

/// Converts every `.yml`/`.yaml` rule file under `dir` (recursively, in path order). The rules
/// of all files are converted together, so a correlation may refer to rules in other files.
pub fn convert_dir(dir: &Path, target: Target, mapping: &FieldNames) -> DirConversion {
    let mut result = DirConversion::default();
    let files = match crate::rule_files(dir) {
        Ok(files) => files,
        Err(e) => {
            let err = SigmaError::new(dir, None, format!("cannot read directory: {e}"));
            result.problems.push((dir.to_path_buf(), err.into()));
            Vec::new()
        }
    };
    let mut rules = Vec::new();
    let mut fields = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                let err = SigmaError::new(&file, None, format!("cannot read: {e}"));
                result.problems.push((file, err.into()));
                continue;
            }
        };
        match crate::parse::parse_rules(&text, &file) {
            Ok(parsed) => {
                let mut lists = fields_lists(&text, parsed.len());
                lists.resize(parsed.len(), Vec::new());
                rules.extend(parsed);
                fields.extend(lists);
            }
            Err(e) => result.problems.push((file, e.into())),
        }
    }
    result.converted = convert_rules_with_fields(&rules, &fields, target, mapping);
    result
}
