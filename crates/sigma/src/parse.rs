//! From YAML text to the rule model ([`crate::ast`]).
//!
//! The YAML is read with `serde-saphyr` into a small generic tree whose every node carries its
//! line ([`Node`]), so that semantic errors found later — an unknown modifier, an undefined
//! search identifier, a bad timespan — can still point at the line that holds them. A file may
//! contain several documents separated by `---` (correlation rules and the rules they refer to
//! usually come together).

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use crate::ast::{
    Alias, CmpOp, Correlation, CorrelationType, Detection, FieldMatch, Filter, Level, LogSource,
    Modifier, Rule, RuleBody, RuleMeta, Search, Value,
};
use crate::condition;
use crate::error::SigmaError;

/// A YAML node with the (1-based) line it was written on.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub value: NodeValue,
    pub line: usize,
}

#[derive(Clone, Debug)]
pub(crate) enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            line: usize::try_from(spanned.referenced.line()).unwrap_or(0),
        })
    }
}

struct NodeValueVisitor;

impl<'de> Visitor<'de> for NodeValueVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => NodeValue::Int(i),
            Err(_) => NodeValue::Str(v.to_string()),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
        Ok(NodeValue::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeValue, E> {
        Ok(NodeValue::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<NodeValue, D::Error> {
        NodeValue::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(NodeValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeValueVisitor)
    }
}

impl Node {
    fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Int(_) => "an integer",
            NodeValue::Float(_) => "a number",
            NodeValue::Str(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a map",
        }
    }

    /// Scalar as text (keys and most attributes are strings; numbers are accepted as text).
    fn scalar_text(&self) -> Option<String> {
        match &self.value {
            NodeValue::Str(s) => Some(s.clone()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::Float(f) => Some(f.to_string()),
            NodeValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The line of `key` itself (sections are reported where their name is written).
    fn key_line(&self, key: &str) -> Option<usize> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar_text().as_deref() == Some(key))
                .map(|(k, _)| k.line),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.scalar_text().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Context for building errors that name the file.
struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, line: usize, message: impl Into<String>) -> SigmaError {
        SigmaError::new(self.file, Some(line), message)
    }

    fn string(&self, node: &Node, what: &str) -> Result<String, SigmaError> {
        node.scalar_text().ok_or_else(|| {
            self.err(
                node.line,
                format!("{what} must be a string, not {}", node.kind()),
            )
        })
    }

    fn opt_string(&self, root: &Node, key: &str) -> Result<Option<String>, SigmaError> {
        match root.get(key) {
            None => Ok(None),
            Some(Node {
                value: NodeValue::Null,
                ..
            }) => Ok(None),
            Some(node) => self.string(node, key).map(Some),
        }
    }

    fn string_list(&self, root: &Node, key: &str) -> Result<Vec<String>, SigmaError> {
        match root.get(key) {
            None => Ok(Vec::new()),
            Some(node) => match &node.value {
                NodeValue::Null => Ok(Vec::new()),
                NodeValue::Seq(items) => items.iter().map(|i| self.string(i, key)).collect(),
                _ => Ok(vec![self.string(node, key)?]),
            },
        }
    }
}

/// Parses every YAML document of `text` into rules. Errors name `origin` and the line.
pub fn parse_rules(text: &str, origin: &Path) -> Result<Vec<Rule>, SigmaError> {
    // YAML 1.2 booleans only: Sigma values such as `yes`, `no`, `on` or `y` are strings.
    let options = serde_saphyr::options! { strict_booleans: true };
    let docs: Vec<Node> = serde_saphyr::from_multiple_with_options(text, options).map_err(|e| {
        let line = e
            .location()
            .and_then(|l| usize::try_from(l.line()).ok())
            .filter(|l| *l > 0);
        let message = e.to_string();
        let first = message.lines().next().unwrap_or("");
        let first = first.strip_prefix("error: ").unwrap_or(first).to_string();
        SigmaError::new(origin, line, format!("invalid YAML: {first}"))
    })?;
    let ctx = Ctx { file: origin };
    docs.iter()
        .filter(|d| !matches!(d.value, NodeValue::Null))
        .map(|doc| parse_document(&ctx, doc))
        .collect()
}

fn parse_document(ctx: &Ctx<'_>, doc: &Node) -> Result<Rule, SigmaError> {
    if !matches!(doc.value, NodeValue::Map(_)) {
        return Err(ctx.err(
            doc.line,
            format!("a rule document must be a map, not {}", doc.kind()),
        ));
    }
    let meta = parse_meta(ctx, doc)?;
    // Section errors point at the section's name rather than at its first entry.
    let section = |key: &str| {
        doc.get(key).map(|node| Node {
            value: node.value.clone(),
            line: doc.key_line(key).unwrap_or(node.line),
        })
    };
    let body = if let Some(node) = section("correlation") {
        RuleBody::Correlation(parse_correlation(ctx, &node, doc)?)
    } else if let Some(node) = section("filter") {
        RuleBody::Filter(parse_filter(ctx, &node)?)
    } else if let Some(node) = section("detection") {
        RuleBody::Detection(parse_detection(ctx, &node, &[])?)
    } else {
        return Err(ctx.err(
            doc.line,
            format!(
                "rule '{}' has no detection (nor correlation or filter) section",
                meta.title
            ),
        ));
    };
    Ok(Rule { meta, body })
}

fn parse_meta(ctx: &Ctx<'_>, doc: &Node) -> Result<RuleMeta, SigmaError> {
    let title = match doc.get("title") {
        Some(node) => ctx.string(node, "title")?,
        None => return Err(ctx.err(doc.line, "missing title")),
    };
    let level = match doc.get("level") {
        None => None,
        Some(node) => {
            let text = ctx.string(node, "level")?;
            Some(Level::parse(&text).ok_or_else(|| {
                ctx.err(
                    node.line,
                    format!("unknown level '{text}' (informational, low, medium, high, critical)"),
                )
            })?)
        }
    };
    let logsource = match doc.get("logsource") {
        None => LogSource::default(),
        Some(node) => {
            if !matches!(node.value, NodeValue::Map(_)) {
                return Err(ctx.err(node.line, "logsource must be a map"));
            }
            LogSource {
                category: ctx.opt_string(node, "category")?,
                product: ctx.opt_string(node, "product")?,
                service: ctx.opt_string(node, "service")?,
                definition: ctx.opt_string(node, "definition")?,
            }
        }
    };
    Ok(RuleMeta {
        id: ctx.opt_string(doc, "id")?,
        name: ctx.opt_string(doc, "name")?,
        title,
        status: ctx.opt_string(doc, "status")?,
        level,
        description: ctx.opt_string(doc, "description")?,
        author: ctx.opt_string(doc, "author")?,
        references: ctx.string_list(doc, "references")?,
        tags: ctx.string_list(doc, "tags")?,
        falsepositives: ctx.string_list(doc, "falsepositives")?,
        date: ctx.opt_string(doc, "date")?,
        modified: ctx.opt_string(doc, "modified")?,
        logsource,
        file: ctx.file.to_path_buf(),
        line: doc.line,
    })
}

fn scalar_value(ctx: &Ctx<'_>, node: &Node) -> Result<Value, SigmaError> {
    Ok(match &node.value {
        NodeValue::Null => Value::Null,
        NodeValue::Bool(b) => Value::Bool(*b),
        NodeValue::Int(i) => Value::Int(*i),
        NodeValue::Float(f) => Value::Float(*f),
        NodeValue::Str(s) => Value::Str(s.clone()),
        NodeValue::Seq(_) | NodeValue::Map(_) => {
            return Err(ctx.err(
                node.line,
                format!(
                    "expected a value (string, number, boolean or null), found {}",
                    node.kind()
                ),
            ));
        }
    })
}

/// `field|mod1|mod2` → field and modifiers.
fn parse_field_key(
    ctx: &Ctx<'_>,
    key: &Node,
) -> Result<(Option<String>, Vec<Modifier>), SigmaError> {
    let text = ctx.string(key, "field name")?;
    let mut parts = text.split('|');
    let field = parts.next().unwrap_or("");
    let mut modifiers = Vec::new();
    for name in parts {
        match Modifier::parse(name) {
            Some(m) => modifiers.push(m),
            None => {
                let hint = match name {
                    "minute" | "hour" | "day" | "week" | "month" | "year" => {
                        " (time modifiers are not supported by this engine)"
                    }
                    _ => "",
                };
                return Err(ctx.err(
                    key.line,
                    format!("unknown modifier '{name}' in '{text}'{hint}"),
                ));
            }
        }
    }
    let field = if field.is_empty() {
        None
    } else {
        Some(field.to_string())
    };
    Ok((field, modifiers))
}

fn parse_field_match(ctx: &Ctx<'_>, key: &Node, value: &Node) -> Result<FieldMatch, SigmaError> {
    let (field, modifiers) = parse_field_key(ctx, key)?;
    let values = match &value.value {
        NodeValue::Seq(items) => {
            if items.is_empty() {
                return Err(ctx.err(value.line, "empty list of values"));
            }
            let values = items
                .iter()
                .map(|i| scalar_value(ctx, i))
                .collect::<Result<Vec<_>, _>>()?;
            if values.len() > 1 && values.iter().any(|v| matches!(v, Value::Null)) {
                return Err(ctx.err(
                    value.line,
                    "null cannot be part of a list of values (use a separate selection)",
                ));
            }
            values
        }
        _ => vec![scalar_value(ctx, value)?],
    };
    let item = FieldMatch {
        field,
        modifiers,
        values,
        line: key.line,
    };
    crate::modifiers::check(&item).map_err(|m| ctx.err(key.line, m))?;
    Ok(item)
}

fn parse_map_alternative(ctx: &Ctx<'_>, node: &Node) -> Result<Vec<FieldMatch>, SigmaError> {
    let NodeValue::Map(entries) = &node.value else {
        return Err(ctx.err(node.line, "expected a map"));
    };
    if entries.is_empty() {
        return Err(ctx.err(node.line, "empty selection map"));
    }
    entries
        .iter()
        .map(|(k, v)| parse_field_match(ctx, k, v))
        .collect()
}

fn parse_search(
    ctx: &Ctx<'_>,
    name: String,
    key_line: usize,
    node: &Node,
) -> Result<Search, SigmaError> {
    let alternatives = match &node.value {
        NodeValue::Map(_) => vec![parse_map_alternative(ctx, node)?],
        NodeValue::Seq(items) => {
            if items.is_empty() {
                return Err(ctx.err(
                    node.line,
                    format!("search identifier '{name}' is an empty list"),
                ));
            }
            let mut alternatives = Vec::new();
            let mut keywords = Vec::new();
            for item in items {
                match &item.value {
                    NodeValue::Map(_) => alternatives.push(parse_map_alternative(ctx, item)?),
                    NodeValue::Seq(_) => {
                        return Err(ctx.err(
                            item.line,
                            "nested lists are not allowed in a search identifier",
                        ));
                    }
                    _ => keywords.push(scalar_value(ctx, item)?),
                }
            }
            if !keywords.is_empty() {
                alternatives.push(vec![FieldMatch {
                    field: None,
                    modifiers: Vec::new(),
                    values: keywords,
                    line: node.line,
                }]);
            }
            alternatives
        }
        NodeValue::Str(_) | NodeValue::Int(_) | NodeValue::Float(_) => vec![vec![FieldMatch {
            field: None,
            modifiers: Vec::new(),
            values: vec![scalar_value(ctx, node)?],
            line: node.line,
        }]],
        _ => {
            return Err(ctx.err(
                node.line,
                format!(
                    "search identifier '{name}' must be a map or a list, not {}",
                    node.kind()
                ),
            ));
        }
    };
    Ok(Search {
        name,
        alternatives,
        line: key_line,
    })
}

/// Parses a detection section; `skip` lists keys that are not search identifiers (a filter's
/// `rules`).
fn parse_detection(ctx: &Ctx<'_>, node: &Node, skip: &[&str]) -> Result<Detection, SigmaError> {
    let NodeValue::Map(entries) = &node.value else {
        return Err(ctx.err(
            node.line,
            format!("detection must be a map, not {}", node.kind()),
        ));
    };
    let mut searches = Vec::new();
    let mut condition_node = None;
    for (key, value) in entries {
        let name = ctx.string(key, "search identifier")?;
        if name == "condition" {
            condition_node = Some(value);
        } else if name == "timeframe" {
            return Err(ctx.err(
                key.line,
                "'timeframe' in detection is the obsolete Sigma 1 aggregation syntax; use a correlation rule",
            ));
        } else if !skip.contains(&name.as_str()) {
            searches.push(parse_search(ctx, name, key.line, value)?);
        }
    }
    let Some(condition_node) = condition_node else {
        return Err(ctx.err(node.line, "detection has no condition"));
    };
    let condition_text = match &condition_node.value {
        NodeValue::Seq(items) => items
            .iter()
            .map(|i| ctx.string(i, "condition"))
            .collect::<Result<Vec<_>, _>>()?,
        _ => vec![ctx.string(condition_node, "condition")?],
    };
    if condition_text.is_empty() {
        return Err(ctx.err(condition_node.line, "empty condition list"));
    }
    if searches.is_empty() {
        return Err(ctx.err(node.line, "detection defines no search identifier"));
    }
    let names: Vec<String> = searches.iter().map(|s| s.name.clone()).collect();
    let mut conditions = Vec::new();
    for text in &condition_text {
        let parsed = condition::parse_condition(text)
            .and_then(|c| condition::check_references(&c, &names).map(|()| c))
            .map_err(|m| ctx.err(condition_node.line, format!("{m} — in condition '{text}'")))?;
        conditions.push(parsed);
    }
    Ok(Detection {
        searches,
        conditions,
        condition_text,
        condition_line: condition_node.line,
    })
}

fn parse_filter(ctx: &Ctx<'_>, node: &Node) -> Result<Filter, SigmaError> {
    let rules = match node.get("rules") {
        Some(_) => ctx.string_list(node, "rules")?,
        None => return Err(ctx.err(node.line, "filter has no 'rules' list")),
    };
    if rules.is_empty() {
        return Err(ctx.err(node.line, "filter 'rules' is empty"));
    }
    let detection = parse_detection(ctx, node, &["rules"])?;
    Ok(Filter {
        rules,
        detection,
        line: node.line,
    })
}

/// `10s`, `5m`, `1h`, `2d` → milliseconds.
pub fn parse_timespan(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let number: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let factor = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return None,
    };
    if number <= 0 {
        return None;
    }
    number.checked_mul(factor)
}

fn parse_correlation(ctx: &Ctx<'_>, node: &Node, doc: &Node) -> Result<Correlation, SigmaError> {
    if !matches!(node.value, NodeValue::Map(_)) {
        return Err(ctx.err(node.line, "correlation must be a map"));
    }
    let kind_node = node
        .get("type")
        .ok_or_else(|| ctx.err(node.line, "correlation has no type"))?;
    let kind_text = ctx.string(kind_node, "correlation type")?;
    let kind = CorrelationType::parse(&kind_text).ok_or_else(|| {
        ctx.err(
            kind_node.line,
            format!(
                "unsupported correlation type '{kind_text}' (event_count, value_count, temporal, \
                 temporal_ordered, value_sum, value_avg)"
            ),
        )
    })?;
    let rules = ctx.string_list(node, "rules")?;
    if rules.is_empty() {
        return Err(ctx.err(node.line, "correlation refers to no rules"));
    }
    let group_by = ctx.string_list(node, "group-by")?;
    let timespan_node = node
        .get("timespan")
        .ok_or_else(|| ctx.err(node.line, "correlation has no timespan"))?;
    let timespan = ctx.string(timespan_node, "timespan")?;
    let timespan_ms = parse_timespan(&timespan).ok_or_else(|| {
        ctx.err(
            timespan_node.line,
            format!("bad timespan '{timespan}' (a number followed by s, m, h or d)"),
        )
    })?;
    let mut condition = Vec::new();
    let mut fields = Vec::new();
    if let Some(cond) = node.get("condition") {
        let NodeValue::Map(entries) = &cond.value else {
            return Err(ctx.err(
                cond.line,
                "correlation condition must be a map such as {gte: 10}",
            ));
        };
        for (k, v) in entries {
            let key = ctx.string(k, "condition key")?;
            if key == "field" {
                fields = match &v.value {
                    NodeValue::Seq(items) => items
                        .iter()
                        .map(|i| ctx.string(i, "condition field"))
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => vec![ctx.string(v, "condition field")?],
                };
                continue;
            }
            let op = CmpOp::parse(&key).ok_or_else(|| {
                ctx.err(
                    k.line,
                    format!(
                        "unknown correlation condition operator '{key}' (gt, gte, lt, lte, eq, neq)"
                    ),
                )
            })?;
            let threshold = match v.value {
                NodeValue::Int(i) => i as f64,
                NodeValue::Float(f) => f,
                _ => {
                    return Err(ctx.err(
                        v.line,
                        format!(
                            "correlation condition '{key}' needs a number, not {}",
                            v.kind()
                        ),
                    ));
                }
            };
            condition.push((op, threshold));
        }
    }
    let temporal = matches!(
        kind,
        CorrelationType::Temporal | CorrelationType::TemporalOrdered
    );
    if condition.is_empty() && !temporal {
        return Err(ctx.err(
            node.line,
            format!(
                "{} correlation needs a condition such as {{gte: 10}}",
                kind.as_str()
            ),
        ));
    }
    // Counts and sums only grow as events arrive, and a streaming engine decides when an event
    // comes in: a condition without a lower bound (`lt: 5` alone) would hold on the first
    // event of every group. Averages can fall, so any comparison is meaningful for them.
    let monotonic = !matches!(kind, CorrelationType::ValueAvg);
    if monotonic
        && !condition.is_empty()
        && !condition
            .iter()
            .any(|(op, _)| matches!(op, CmpOp::Gt | CmpOp::Gte | CmpOp::Eq))
    {
        return Err(ctx.err(
            node.line,
            format!(
                "unsupported {} condition: without gt, gte or eq it would fire on the first \
                 event of every group (windows are evaluated as events arrive)",
                kind.as_str()
            ),
        ));
    }
    let needs_field = matches!(
        kind,
        CorrelationType::ValueCount | CorrelationType::ValueSum | CorrelationType::ValueAvg
    );
    if needs_field && fields.is_empty() {
        return Err(ctx.err(
            node.line,
            format!(
                "{} correlation needs 'field' in its condition",
                kind.as_str()
            ),
        ));
    }
    if matches!(kind, CorrelationType::ValueSum | CorrelationType::ValueAvg) && fields.len() > 1 {
        return Err(ctx.err(
            node.line,
            format!("{} correlation takes exactly one field", kind.as_str()),
        ));
    }
    let mut aliases = Vec::new();
    if let Some(alias_node) = node.get("aliases") {
        let NodeValue::Map(entries) = &alias_node.value else {
            return Err(ctx.err(alias_node.line, "aliases must be a map"));
        };
        for (k, v) in entries {
            let name = ctx.string(k, "alias name")?;
            let NodeValue::Map(per_rule) = &v.value else {
                return Err(ctx.err(
                    v.line,
                    format!("alias '{name}' must map rule names to fields"),
                ));
            };
            let fields = per_rule
                .iter()
                .map(|(r, f)| Ok((ctx.string(r, "rule name")?, ctx.string(f, "field")?)))
                .collect::<Result<Vec<_>, SigmaError>>()?;
            aliases.push(Alias { name, fields });
        }
    }
    let generate = match doc.get("generate").or_else(|| node.get("generate")) {
        None => false,
        Some(Node {
            value: NodeValue::Bool(b),
            ..
        }) => *b,
        Some(other) => return Err(ctx.err(other.line, "generate must be true or false")),
    };
    Ok(Correlation {
        kind,
        rules,
        group_by,
        timespan,
        timespan_ms,
        condition,
        fields,
        aliases,
        generate,
        line: node.line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("30s"), Some(30_000));
        assert_eq!(parse_timespan("5m"), Some(300_000));
        assert_eq!(parse_timespan("1h"), Some(3_600_000));
        assert_eq!(parse_timespan("2d"), Some(172_800_000));
        for bad in ["", "m", "10", "10x", "-5m", "0s", "1.5h"] {
            assert_eq!(parse_timespan(bad), None, "{bad}");
        }
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let rules = parse_rules(
            "title: t\ndetection:\n    sel:\n        f: yes\n        g: on\n        h: true\n    condition: sel\n",
            Path::new("t.yml"),
        )
        .unwrap_or_default();
        let RuleBody::Detection(d) = &rules[0].body else {
            unreachable!("parsed as a detection")
        };
        let values: Vec<&Value> = d.searches[0].alternatives[0]
            .iter()
            .map(|i| &i.values[0])
            .collect();
        assert_eq!(
            values,
            vec![
                &Value::Str("yes".into()),
                &Value::Str("on".into()),
                &Value::Bool(true)
            ]
        );
    }
}
