//! Correlation rules as aggregation queries: the referenced rules' searches, tagged by rule where
//! the type needs it, bucketed by the timespan, grouped by the `group-by` fields, then filtered
//! by the condition — Splunk `| stats … by`, ES|QL `STATS … BY`, KQL `summarize … by`.
//!
//! Splunk and ES|QL follow pySigma's templates (the `stats` method). pySigma has no KQL
//! correlation support; the KQL form here is this project's own, built the same way. Lucene
//! query strings cannot aggregate, so correlations are refused for Lucene with a reason.
//! Sliding windows are approximated by fixed time buckets, as pySigma does: a burst that
//! straddles a bucket boundary can be missed.

use crate::ast::{CmpOp, Correlation, CorrelationType, Rule, RuleBody};

use super::text::{Dialect, Renderer};
use super::tree;
use super::{ConvertError, FieldNames, Target};

/// One referenced rule: the id it is tagged with and its search expression.
struct Search {
    id: String,
    expression: String,
    rule_refs: Vec<String>,
}

pub(crate) fn convert(
    rule: &Rule,
    rules: &[Rule],
    fields: &[Vec<String>],
    target: Target,
    mapping: &FieldNames,
) -> Result<Vec<String>, ConvertError> {
    let RuleBody::Correlation(corr) = &rule.body else {
        return Err(ConvertError::Invalid("not a correlation rule".to_string()));
    };
    if target == Target::Lucene {
        return Err(lucene_refusal());
    }
    if corr.kind == CorrelationType::TemporalOrdered {
        return Err(ConvertError::Unsupported(
            "temporal_ordered correlations need per-group event ordering, which these query \
             templates do not express"
                .to_string(),
        ));
    }
    let dialect = Dialect::of(target);
    let mut searches = Vec::new();
    let mut shown_fields: Vec<String> = Vec::new();
    for reference in &corr.rules {
        let (index, referred) = rules
            .iter()
            .enumerate()
            .find(|(_, r)| {
                r.meta.name.as_deref() == Some(reference) || r.meta.id.as_deref() == Some(reference)
            })
            .ok_or_else(|| ConvertError::UnknownRule(reference.clone()))?;
        for field in fields.get(index).into_iter().flatten() {
            let mapped = mapping.resolve(field).to_string();
            if !shown_fields.contains(&mapped) {
                shown_fields.push(mapped);
            }
        }
        let RuleBody::Detection(detection) = &referred.body else {
            return Err(ConvertError::Unsupported(format!(
                "correlation over '{reference}', which is not a detection rule"
            )));
        };
        let filters = super::filters_for(referred, rules);
        let trees = tree::build_filtered(detection, &filters, &|f| mapping.resolve(f).to_string())?;
        let [cond] = trees.as_slice() else {
            return Err(ConvertError::Unsupported(format!(
                "rule '{reference}' has several conditions"
            )));
        };
        let expression = Renderer::new(&dialect).expression(cond)?;
        let id = referred
            .meta
            .name
            .clone()
            .or_else(|| referred.meta.id.clone())
            .unwrap_or_else(|| reference.clone());
        let mut rule_refs = vec![reference.clone()];
        rule_refs.extend(referred.meta.name.clone());
        rule_refs.extend(referred.meta.id.clone());
        searches.push(Search {
            id,
            expression,
            rule_refs,
        });
    }
    let query = match target {
        Target::Splunk => splunk(corr, &searches, mapping)?,
        Target::Esql => esql(corr, &searches, &shown_fields, mapping)?,
        Target::Kql => kql(corr, &searches, mapping)?,
        Target::Lucene => return Err(lucene_refusal()),
    };
    Ok(vec![query])
}

fn lucene_refusal() -> ConvertError {
    ConvertError::Unsupported(
        "Lucene query strings cannot aggregate events (correlation rules)".to_string(),
    )
}

/// The group-by field as the SIEM names it: alias names stay, Sigma fields are mapped.
fn group_field(corr: &Correlation, field: &str, mapping: &FieldNames) -> String {
    if corr.aliases.iter().any(|a| a.name == field) {
        field.to_string()
    } else {
        mapping.resolve(field).to_string()
    }
}

fn value_field(corr: &Correlation, mapping: &FieldNames) -> Result<String, ConvertError> {
    match corr.fields.as_slice() {
        [one] => Ok(group_field(corr, one, mapping)),
        [] => Err(ConvertError::Invalid(format!(
            "{} correlation without condition.field",
            corr.kind.as_str()
        ))),
        _ => Err(ConvertError::Unsupported(
            "value_count over several fields".to_string(),
        )),
    }
}

fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
        CmpOp::Eq => "==",
        CmpOp::Neq => "!=",
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// The condition comparisons; temporal correlations without one require every rule.
fn conditions(corr: &Correlation, searches: usize) -> Vec<(CmpOp, String)> {
    if corr.condition.is_empty() {
        vec![(CmpOp::Gte, searches.to_string())]
    } else {
        corr.condition
            .iter()
            .map(|(op, n)| (*op, number(*n)))
            .collect()
    }
}

/// Name of the aggregated value and the aggregation, per correlation type.
fn aggregate(
    corr: &Correlation,
    mapping: &FieldNames,
    count: &str,
    distinct: &str,
    sum: &str,
    avg: &str,
) -> Result<(&'static str, String), ConvertError> {
    Ok(match corr.kind {
        CorrelationType::EventCount => ("event_count", count.to_string()),
        CorrelationType::ValueCount => (
            "value_count",
            distinct.replace("{field}", &value_field(corr, mapping)?),
        ),
        CorrelationType::Temporal | CorrelationType::TemporalOrdered => (
            "event_type_count",
            distinct.replace("{field}", "event_type"),
        ),
        CorrelationType::ValueSum => (
            "value_sum",
            sum.replace("{field}", &value_field(corr, mapping)?),
        ),
        CorrelationType::ValueAvg => (
            "value_avg",
            avg.replace("{field}", &value_field(corr, mapping)?),
        ),
    })
}

/// Splits `5m` into (5, 'm').
fn timespan(corr: &Correlation) -> Result<(String, char), ConvertError> {
    let text = corr.timespan.trim();
    let unit = text
        .chars()
        .last()
        .ok_or_else(|| ConvertError::Invalid("empty timespan".to_string()))?;
    let amount = &text[..text.len() - unit.len_utf8()];
    if amount.is_empty() || !amount.chars().all(|c| c.is_ascii_digit()) {
        return Err(ConvertError::Invalid(format!("bad timespan '{text}'")));
    }
    Ok((amount.to_string(), unit))
}

fn splunk(
    corr: &Correlation,
    searches: &[Search],
    mapping: &FieldNames,
) -> Result<String, ConvertError> {
    let search = if let [single] = searches {
        single.expression.clone()
    } else {
        let parts: Vec<String> = searches
            .iter()
            .map(|s| {
                let mut normalization = String::new();
                for alias in &corr.aliases {
                    if let Some((_, field)) =
                        alias.fields.iter().find(|(r, _)| s.rule_refs.contains(r))
                    {
                        normalization.push_str(&format!(
                            " | rename {} as {}",
                            mapping.resolve(field),
                            alias.name
                        ));
                    }
                }
                format!(
                    "[ search {} | eval event_type=\"{}\"{normalization} ]",
                    s.expression, s.id
                )
            })
            .collect();
        format!("| multisearch\n{}", parts.join("\n"))
    };
    let (amount, unit) = timespan(corr)?;
    let span = if unit == 'M' {
        format!("{amount}mon")
    } else {
        format!("{amount}{unit}")
    };
    let (name, agg) = aggregate(
        corr,
        mapping,
        "count",
        "dc({field})",
        "sum({field})",
        "avg({field})",
    )?;
    let groupby: String = corr
        .group_by
        .iter()
        .map(|f| format!(" {}", group_field(corr, f, mapping)))
        .collect();
    let condition: Vec<String> = conditions(corr, searches.len())
        .into_iter()
        // Splunk's search command compares with a single `=`.
        .map(|(op, n)| {
            let op = if op == CmpOp::Eq { "=" } else { op_text(op) };
            format!("{name} {op} {n}")
        })
        .collect();
    Ok(format!(
        "{search}\n\n| bin _time span={span}\n| stats {agg} as {name} by _time{groupby}\n\n| search {}",
        condition.join(" ")
    ))
}

fn no_aliases(corr: &Correlation, target: Target) -> Result<(), ConvertError> {
    if corr.aliases.is_empty() {
        Ok(())
    } else {
        Err(ConvertError::Unsupported(format!(
            "field aliases in correlations are only converted for Splunk, not {target}"
        )))
    }
}

fn esql(
    corr: &Correlation,
    searches: &[Search],
    shown_fields: &[String],
    mapping: &FieldNames,
) -> Result<String, ConvertError> {
    no_aliases(corr, Target::Esql)?;
    let search = if let [single] = searches {
        single.expression.clone()
    } else {
        searches
            .iter()
            .map(|s| format!("({})", s.expression))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let (amount, unit) = timespan(corr)?;
    let unit = match unit {
        's' => "seconds",
        'm' => "minutes",
        'h' => "hours",
        'd' => "days",
        'w' => "weeks",
        'M' => "months",
        'y' => "years",
        other => {
            return Err(ConvertError::Invalid(format!(
                "bad timespan unit '{other}'"
            )));
        }
    };
    let (name, agg) = aggregate(
        corr,
        mapping,
        "count()",
        "count_distinct({field})",
        "sum({field})",
        "avg({field})",
    )?;
    let grouped: Vec<String> = corr
        .group_by
        .iter()
        .map(|f| group_field(corr, f, mapping))
        .collect();
    let groupby: String = grouped.iter().map(|f| format!(", {f}")).collect();
    // The referenced rules' `fields`, carried through the aggregation (as pySigma does).
    let values: String = shown_fields
        .iter()
        .filter(|f| !grouped.contains(f))
        .map(|f| format!(", {f}=values({f})"))
        .collect();
    let typing = if matches!(corr.kind, CorrelationType::Temporal) {
        let cases: Vec<String> = searches
            .iter()
            .map(|s| format!("{}, \"{}\"", s.expression, s.id))
            .collect();
        format!("\n| eval event_type=case({})", cases.join(", "))
    } else {
        String::new()
    };
    let condition: Vec<String> = conditions(corr, searches.len())
        .into_iter()
        .map(|(op, n)| format!("{name} {} {n}", op_text(op)))
        .collect();
    Ok(format!(
        "from * metadata _id, _index, _version | where {search}{typing}\n| eval timebucket=date_trunc({amount}{unit}, @timestamp) | stats {name}={agg}{values} by timebucket{groupby}\n| where {}",
        condition.join(" and ")
    ))
}

/// KQL (differs from pySigma, which does not convert correlations for Kusto). The output starts
/// with the `where` predicate, like detection queries, and `TimeGenerated` is the time column
/// (Microsoft Sentinel's).
fn kql(
    corr: &Correlation,
    searches: &[Search],
    mapping: &FieldNames,
) -> Result<String, ConvertError> {
    no_aliases(corr, Target::Kql)?;
    let search = if let [single] = searches {
        single.expression.clone()
    } else {
        searches
            .iter()
            .map(|s| format!("({})", s.expression))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let (amount, unit) = timespan(corr)?;
    let span = match unit {
        's' | 'm' | 'h' | 'd' => format!("{amount}{unit}"),
        'w' => {
            let weeks: u64 = amount
                .parse()
                .map_err(|_| ConvertError::Invalid(format!("bad timespan '{}'", corr.timespan)))?;
            format!("{}d", weeks * 7)
        }
        other => {
            return Err(ConvertError::Unsupported(format!(
                "KQL timespans have no month/year unit ('{other}')"
            )));
        }
    };
    let (name, agg) = aggregate(
        corr,
        mapping,
        "count()",
        "dcount({field})",
        "sum({field})",
        "avg({field})",
    )?;
    let groupby: String = corr
        .group_by
        .iter()
        .map(|f| format!(", tostring({})", group_field(corr, f, mapping)))
        .collect();
    let typing = if matches!(corr.kind, CorrelationType::Temporal) {
        let cases: Vec<String> = searches
            .iter()
            .map(|s| format!("{}, \"{}\"", s.expression, s.id))
            .collect();
        format!("\n| extend event_type = case({}, \"\")", cases.join(", "))
    } else {
        String::new()
    };
    let condition: Vec<String> = conditions(corr, searches.len())
        .into_iter()
        .map(|(op, n)| format!("{name} {} {n}", op_text(op)))
        .collect();
    Ok(format!(
        "{search}{typing}\n| summarize {name} = {agg} by bin(TimeGenerated, {span}){groupby}\n| where {}",
        condition.join(" and ")
    ))
}
