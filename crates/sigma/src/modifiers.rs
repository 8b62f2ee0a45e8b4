//! Value modifiers and Sigma string values: wildcard/escape parsing, the transformation modifiers
//! (`windash`, `base64`, `base64offset`, `utf16*`/`wide`, `expand`), and the checks of which
//! modifiers may be combined.
//!
//! Transformations run on values as sequences of literal bytes and wildcards, in the order the
//! modifiers were written, and may turn one value into several alternatives (`base64offset`
//! gives three, `windash` every dash permutation, `expand` every value of a placeholder). The
//! result is then turned into matchers by [`crate::compile`].

use std::collections::HashMap;

use base64::Engine as _;

use crate::ast::{FieldMatch, Modifier, Value};

/// A piece of a Sigma string value after wildcard and escape processing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WildPart {
    Literal(String),
    /// `*`: any run of characters, possibly empty.
    AnyMany,
    /// `?`: exactly one character.
    AnyOne,
}

/// Splits a Sigma string into literals and wildcards, applying the escape rules of the
/// specification: `\*`, `\?` are plain characters, `\\` is one backslash, and a backslash not
/// before `*`, `?` or `\` is plain.
pub fn parse_wildcards(text: &str) -> Vec<WildPart> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    literal.push(next);
                    chars.next();
                }
                _ => literal.push('\\'),
            },
            '*' | '?' => {
                if !literal.is_empty() {
                    parts.push(WildPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(if c == '*' {
                    WildPart::AnyMany
                } else {
                    WildPart::AnyOne
                });
            }
            _ => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(WildPart::Literal(literal));
    }
    parts
}

/// A value during transformation: literal bytes (which may stop being UTF-8 after `utf16`) and
/// wildcards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    AnyMany,
    AnyOne,
}

pub(crate) type Pattern = Vec<Piece>;

fn to_pattern(parts: Vec<WildPart>) -> Pattern {
    parts
        .into_iter()
        .map(|p| match p {
            WildPart::Literal(s) => Piece::Bytes(s.into_bytes()),
            WildPart::AnyMany => Piece::AnyMany,
            WildPart::AnyOne => Piece::AnyOne,
        })
        .collect()
}

/// The literal bytes of a pattern without wildcards (what encoding modifiers need).
fn plain_bytes(pattern: &Pattern, modifier: Modifier) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for piece in pattern {
        match piece {
            Piece::Bytes(b) => out.extend_from_slice(b),
            _ => {
                return Err(format!(
                    "modifier '{}' cannot encode a value containing wildcards (escape them with \\)",
                    modifier.as_str()
                ));
            }
        }
    }
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `base64offset`: the three encodings of `value` at byte offsets 0, 1 and 2 of an enclosing
/// string, trimmed to the characters that do not depend on the surrounding bytes (as pySigma).
pub fn base64_offsets(value: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    let mut out = Vec::new();
    for shift in 0..3 {
        let mut input = vec![b' '; shift];
        input.extend_from_slice(value);
        let encoded = b64(&input);
        let end_trim = match (value.len() + shift) % 3 {
            0 => 0,
            1 => 3,
            _ => 2,
        };
        let end = encoded.len().saturating_sub(end_trim);
        if START[shift] < end {
            out.push(encoded[START[shift]..end].to_string());
        }
    }
    out
}

const WINDASH_CHARS: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
const WINDASH_MAX_VARIANTS: usize = 4096;

fn windash(pattern: &Pattern) -> Result<Vec<Pattern>, String> {
    let mut variants: Vec<Pattern> = vec![Vec::new()];
    for piece in pattern {
        match piece {
            Piece::Bytes(bytes) => {
                let text = String::from_utf8(bytes.clone())
                    .map_err(|_| "modifier 'windash' needs a text value".to_string())?;
                // Split the literal at dash characters; each dash becomes every dash variant.
                let mut segments: Vec<Vec<String>> = vec![vec![String::new()]];
                for c in text.chars() {
                    if WINDASH_CHARS.contains(&c) {
                        segments.push(WINDASH_CHARS.iter().map(|d| d.to_string()).collect());
                        segments.push(vec![String::new()]);
                    } else if let Some(last) = segments.last_mut().and_then(|s| s.last_mut()) {
                        last.push(c);
                    }
                }
                let mut literal_variants = vec![String::new()];
                for choices in segments {
                    let mut next = Vec::with_capacity(literal_variants.len() * choices.len());
                    for prefix in &literal_variants {
                        for choice in &choices {
                            next.push(format!("{prefix}{choice}"));
                        }
                    }
                    literal_variants = next;
                    if literal_variants.len() * variants.len() > WINDASH_MAX_VARIANTS {
                        return Err(format!(
                            "modifier 'windash' would create more than {WINDASH_MAX_VARIANTS} variants"
                        ));
                    }
                }
                let mut next = Vec::new();
                for v in &variants {
                    for lit in &literal_variants {
                        let mut p = v.clone();
                        p.push(Piece::Bytes(lit.clone().into_bytes()));
                        next.push(p);
                    }
                }
                variants = next;
            }
            other => variants.iter_mut().for_each(|v| v.push(other.clone())),
        }
    }
    Ok(variants)
}

fn utf16(bytes: &[u8], modifier: Modifier) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("modifier '{}' needs a text value", modifier.as_str()))?;
    let mut out = Vec::new();
    if modifier == Modifier::Utf16 {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in text.encode_utf16() {
        let b = if modifier == Modifier::Utf16Be {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        };
        out.extend_from_slice(&b);
    }
    Ok(out)
}

/// Replaces `%name%` placeholders (the `expand` modifier) with every value configured for them.
/// `\%` is a plain percent sign. Unknown placeholders are an error: the specification says a
/// tool that cannot resolve a placeholder must reject the rule.
pub fn expand_placeholders(
    raw: &str,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<Vec<String>, String> {
    let mut results = vec![String::new()];
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("\\%") {
            results.iter_mut().for_each(|r| r.push('%'));
            rest = after;
        } else if let Some(after) = rest.strip_prefix('%') {
            let Some(end) = after.find('%') else {
                results.iter_mut().for_each(|r| r.push('%'));
                rest = after;
                continue;
            };
            let name = &after[..end];
            let values = placeholders.get(name).ok_or_else(|| {
                format!(
                    "unresolved placeholder '%{name}%' (configure it with RuleSet::set_placeholder)"
                )
            })?;
            if values.is_empty() {
                return Err(format!("placeholder '%{name}%' has no values"));
            }
            let mut next = Vec::new();
            for r in &results {
                for v in values {
                    next.push(format!("{r}{v}"));
                }
            }
            results = next;
            rest = &after[end + 1..];
        } else {
            let next = rest
                .char_indices()
                .skip(1)
                .find(|(_, c)| *c == '%' || *c == '\\')
                .map_or(rest.len(), |(i, _)| i);
            results.iter_mut().for_each(|r| r.push_str(&rest[..next]));
            rest = &rest[next..];
        }
    }
    Ok(results)
}

/// Where a string value must appear in the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    Whole,
    Contains,
    StartsWith,
    EndsWith,
}

/// The modifiers of one item, sorted by role.
#[derive(Clone, Debug, Default)]
pub(crate) struct ModifierSet {
    pub position: Option<Position>,
    pub all: bool,
    pub re: bool,
    pub re_flags: (bool, bool, bool),
    pub cased: bool,
    pub neq: bool,
    pub exists: bool,
    pub cidr: bool,
    pub compare: Option<Modifier>,
    pub fieldref: bool,
    pub expand: bool,
    /// Transformations in order (windash and encodings).
    pub transforms: Vec<Modifier>,
}

/// Sorts the modifiers of an item and rejects combinations that have no meaning.
pub(crate) fn classify(item: &FieldMatch) -> Result<ModifierSet, String> {
    let mut set = ModifierSet::default();
    for m in &item.modifiers {
        let pos = match m {
            Modifier::Contains => Some(Position::Contains),
            Modifier::StartsWith => Some(Position::StartsWith),
            Modifier::EndsWith => Some(Position::EndsWith),
            _ => None,
        };
        if let Some(pos) = pos {
            if set.position.is_some() {
                return Err("only one of contains, startswith, endswith may be used".to_string());
            }
            set.position = Some(pos);
            continue;
        }
        match m {
            Modifier::All => set.all = true,
            Modifier::Re => set.re = true,
            Modifier::ReI => set.re_flags.0 = true,
            Modifier::ReM => set.re_flags.1 = true,
            Modifier::ReS => set.re_flags.2 = true,
            Modifier::Cased => set.cased = true,
            Modifier::Neq => set.neq = true,
            Modifier::Exists => set.exists = true,
            Modifier::Cidr => set.cidr = true,
            Modifier::Lt | Modifier::Lte | Modifier::Gt | Modifier::Gte => {
                if set.compare.is_some() {
                    return Err("only one of lt, lte, gt, gte may be used".to_string());
                }
                set.compare = Some(*m);
            }
            Modifier::FieldRef => set.fieldref = true,
            Modifier::Expand => set.expand = true,
            Modifier::Base64
            | Modifier::Base64Offset
            | Modifier::Utf16Le
            | Modifier::Utf16Be
            | Modifier::Utf16
            | Modifier::Wide
            | Modifier::Windash => set.transforms.push(*m),
            _ => {}
        }
    }
    let (i, mm, s) = set.re_flags;
    if (i || mm || s) && !set.re {
        return Err("modifiers 'i', 'm' and 's' are sub-modifiers of 're' and need it".to_string());
    }
    let types = [
        set.re,
        set.cidr,
        set.compare.is_some(),
        set.exists,
        set.fieldref,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if types > 1 {
        return Err("re, cidr, lt/lte/gt/gte, exists and fieldref cannot be combined".to_string());
    }
    let stringy = set.position.is_some() || !set.transforms.is_empty() || set.expand || set.cased;
    if (set.re || set.cidr || set.compare.is_some() || set.exists) && stringy {
        return Err(
            "re, cidr, lt/lte/gt/gte and exists cannot be combined with string modifiers"
                .to_string(),
        );
    }
    if set.fieldref && (!set.transforms.is_empty() || set.expand) {
        return Err("fieldref cannot be combined with transformation modifiers".to_string());
    }
    if set.exists {
        if item.values.len() != 1 || !matches!(item.values[0], Value::Bool(_)) {
            return Err("exists takes a single true or false".to_string());
        }
        if set.all || set.neq {
            return Err("exists cannot be combined with other modifiers".to_string());
        }
    }
    if item.field.is_none() && (set.exists || set.fieldref || set.compare.is_some() || set.cidr) {
        return Err("keyword searches (no field name) only take string modifiers".to_string());
    }
    if item.values.iter().any(|v| matches!(v, Value::Null)) && !item.modifiers.is_empty() {
        return Err("null cannot be combined with modifiers".to_string());
    }
    Ok(set)
}

/// Structural checks run while parsing (so that the error carries the item's line).
pub(crate) fn check(item: &FieldMatch) -> Result<(), String> {
    classify(item).map(|_| ())
}

/// Runs the string pipeline for one value: `expand`, wildcard parsing, then the transformations
/// in order, then the position wildcards. Returns the alternatives (OR) the value stands for.
pub(crate) fn string_alternatives(
    value: &Value,
    set: &ModifierSet,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<Vec<Pattern>, String> {
    let raw = match value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => return Err("null is not a string value".to_string()),
    };
    let raws = if set.expand {
        expand_placeholders(&raw, placeholders)?
    } else {
        vec![raw]
    };
    let mut patterns: Vec<Pattern> = raws
        .iter()
        .map(|r| to_pattern(parse_wildcards(r)))
        .collect();
    for m in &set.transforms {
        let mut next = Vec::new();
        for p in &patterns {
            match m {
                Modifier::Windash => next.extend(windash(p)?),
                Modifier::Base64 => {
                    next.push(vec![Piece::Bytes(b64(&plain_bytes(p, *m)?).into_bytes())])
                }
                Modifier::Base64Offset => {
                    for enc in base64_offsets(&plain_bytes(p, *m)?) {
                        next.push(vec![Piece::Bytes(enc.into_bytes())]);
                    }
                }
                Modifier::Utf16Le | Modifier::Wide | Modifier::Utf16Be | Modifier::Utf16 => {
                    next.push(vec![Piece::Bytes(utf16(&plain_bytes(p, *m)?, *m)?)])
                }
                _ => next.push(p.clone()),
            }
        }
        patterns = next;
    }
    for p in &mut patterns {
        match set.position.unwrap_or(Position::Whole) {
            Position::Whole => {}
            Position::Contains => {
                p.insert(0, Piece::AnyMany);
                p.push(Piece::AnyMany);
            }
            Position::StartsWith => p.push(Piece::AnyMany),
            Position::EndsWith => p.insert(0, Piece::AnyMany),
        }
    }
    Ok(patterns)
}

/// True when the transformations produce text that must be matched case-sensitively.
pub(crate) fn encodes(set: &ModifierSet) -> bool {
    set.transforms
        .iter()
        .any(|m| matches!(m, Modifier::Base64 | Modifier::Base64Offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_and_escapes() {
        use WildPart::*;
        assert_eq!(
            parse_wildcards(r"a*b?c"),
            vec![
                Literal("a".into()),
                AnyMany,
                Literal("b".into()),
                AnyOne,
                Literal("c".into())
            ]
        );
        assert_eq!(parse_wildcards(r"a\*b\?"), vec![Literal("a*b?".into())]);
        assert_eq!(
            parse_wildcards(r"C:\\*"),
            vec![Literal(r"C:\".into()), AnyMany]
        );
        assert_eq!(parse_wildcards(r"C:\\\*"), vec![Literal(r"C:\*".into())]);
        assert_eq!(parse_wildcards(r"C:\Win"), vec![Literal(r"C:\Win".into())]);
        assert_eq!(parse_wildcards(r"\\\\"), vec![Literal(r"\\".into())]);
        assert_eq!(parse_wildcards(""), Vec::<WildPart>::new());
    }

    #[test]
    fn base64offset_matches_the_sigma_reference_values() {
        // The three shifted encodings of '/bin/bash' as Sigma tooling produces them.
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn windash_permutes_every_dash() {
        let variants = windash(&vec![Piece::Bytes(b"-a -b".to_vec())]).unwrap_or_default();
        assert_eq!(variants.len(), 25);
        assert!(variants.contains(&vec![Piece::Bytes("/a \u{2014}b".as_bytes().to_vec())]));
    }

    #[test]
    fn placeholders_expand_to_every_value() {
        let mut map = HashMap::new();
        map.insert("A".to_string(), vec!["1".to_string(), "2".to_string()]);
        assert_eq!(
            expand_placeholders("x%A%y%A%", &map).unwrap_or_default(),
            vec!["x1y1", "x1y2", "x2y1", "x2y2"]
        );
        assert!(expand_placeholders("%B%", &map).is_err());
        assert_eq!(
            expand_placeholders("50% off", &map).unwrap_or_default(),
            vec!["50% off"]
        );
    }
}
