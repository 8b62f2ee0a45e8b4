//! The target-independent half of query conversion: a rule's detection turned into a boolean
//! tree of `field = value` leaves, with every value modifier already applied.
//!
//! The tree mirrors the one pySigma builds before its backends run (`ConditionOR`/`AND`/`NOT`,
//! `ConditionFieldEqualsValueExpression`, value types such as `SigmaString`, `SigmaExpansion`),
//! on purpose: the converter is cross-checked against pySigma's output, and the shape of the tree
//! decides where parentheses and `IN` lists appear. So the rules of that shape are followed here:
//! one search item is its single leaf, several items are an AND, a list of maps an OR, a value
//! list an OR (an AND with `all`), `1 of x*` an OR of the matching searches, and any AND/OR left
//! with one argument is replaced by that argument.

use base64::Engine as _;

use crate::ast::{Condition, Detection, FieldMatch, Modifier, Search, Value};
use crate::condition::name_matches;

use super::ConvertError;

/// A piece of a Sigma string value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(String),
    /// `*`
    Many,
    /// `?`
    One,
}

/// A Sigma string: literals and wildcards (pySigma's `SigmaString`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct SigmaStr {
    pub parts: Vec<Part>,
}

impl SigmaStr {
    /// Parses a value as written in a rule: `*` and `?` are wildcards, a backslash escapes a
    /// following `*`, `?` or backslash and is a plain character before anything else.
    pub fn parse(text: &str) -> SigmaStr {
        let mut s = SigmaStr::default();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&next @ ('*' | '?' | '\\')) => {
                        s.push_char(next);
                        chars.next();
                    }
                    _ => s.push_char('\\'),
                },
                '*' => s.parts.push(Part::Many),
                '?' => s.parts.push(Part::One),
                _ => s.push_char(c),
            }
        }
        s
    }

    /// A string without wildcards.
    pub fn literal(text: &str) -> SigmaStr {
        let mut s = SigmaStr::default();
        if !text.is_empty() {
            s.parts.push(Part::Lit(text.to_string()));
        }
        s
    }

    fn push_char(&mut self, c: char) {
        match self.parts.last_mut() {
            Some(Part::Lit(l)) => l.push(c),
            _ => self.parts.push(Part::Lit(c.to_string())),
        }
    }

    pub fn starts_with_many(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Many))
    }

    pub fn ends_with_many(&self) -> bool {
        matches!(self.parts.last(), Some(Part::Many))
    }

    pub fn contains_special(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Lit(_)))
    }

    /// The string without its first `skip_front` and last `skip_back` wildcard parts (callers
    /// check these are wildcards).
    pub fn trimmed(&self, skip_front: bool, skip_back: bool) -> SigmaStr {
        let start = usize::from(skip_front);
        let end = self
            .parts
            .len()
            .saturating_sub(usize::from(skip_back))
            .max(start);
        SigmaStr {
            parts: self.parts[start..end].to_vec(),
        }
    }

    /// The literal text (wildcards dropped), for encodings which refuse wildcards anyway.
    pub fn plain(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                _ => return None,
            }
        }
        Some(out)
    }

    /// pySigma's `SigmaString.convert`: wildcards become `multi`/`single` and each character of
    /// `escaped` (plus the wildcard characters themselves) found in a literal is preceded by
    /// `escape_char`.
    pub fn render(&self, escape_char: &str, multi: &str, single: &str, escaped: &str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => {
                    for c in l.chars() {
                        if multi.contains(c) || single.contains(c) || escaped.contains(c) {
                            out.push_str(escape_char);
                        }
                        out.push(c);
                    }
                }
                Part::Many => out.push_str(multi),
                Part::One => out.push_str(single),
            }
        }
        out
    }

    /// The string as a regular expression (pySigma's `to_regex`).
    pub fn to_regex(&self) -> String {
        self.render("\\", ".*", ".", ".*+?^$[](){}\\|")
    }

    fn prepend_many(&mut self) {
        if !self.starts_with_many() {
            self.parts.insert(0, Part::Many);
        }
    }

    fn append_many(&mut self) {
        if !self.ends_with_many() {
            self.parts.push(Part::Many);
        }
    }
}

/// A regular expression value with its `i`/`m`/`s` flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Regex {
    pub pattern: String,
    pub flags: Vec<char>,
}

/// Numeric comparison (`lt`, `lte`, `gt`, `gte`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// A value after the modifiers (pySigma's value types).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    Str(SigmaStr),
    /// `cased`: a case-sensitive string.
    Cased(SigmaStr),
    /// A number, kept as written.
    Num(String),
    Bool(bool),
    Re(Regex),
    Cidr(ipnet::IpNet),
    Compare(CompareOp, String),
    Null,
    Exists(bool),
    /// Alternatives produced by one value (`windash`, `base64offset`): their OR.
    Expansion(Vec<Val>),
    /// `fieldref`: the other field's (mapped) name, and the position modifiers.
    FieldRef {
        field: String,
        starts_with: bool,
        ends_with: bool,
    },
}

/// The boolean tree of a rule's condition.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    /// A value bound to a (mapped) field.
    Field(String, Val),
    /// A keyword: a value searched anywhere in the event.
    Keyword(Val),
}

impl Cond {
    /// AND/OR with one argument collapses into it (pySigma does the same).
    fn join(and: bool, mut args: Vec<Cond>) -> Option<Cond> {
        match args.len() {
            0 => None,
            1 => args.pop(),
            _ => Some(if and { Cond::And(args) } else { Cond::Or(args) }),
        }
    }
}

/// Builds the condition trees of a detection (one per `condition` entry).
pub(crate) fn build(
    detection: &Detection,
    map_field: &dyn Fn(&str) -> String,
) -> Result<Vec<Cond>, ConvertError> {
    let builder = Builder {
        searches: &detection.searches,
        map_field,
    };
    detection
        .conditions
        .iter()
        .map(|c| {
            builder
                .condition(c)?
                .ok_or_else(|| ConvertError::Invalid("the condition selects nothing".to_string()))
        })
        .collect()
}

/// Builds the condition trees of a detection with filter rules applied: each filter's condition
/// is added as `and not (filter)`, in the order given — a match is dropped where a filter
/// matches, as the engine evaluates filters (pySigma 1.5.1 instead ANDs the filter condition
/// as written).
pub(crate) fn build_filtered(
    detection: &Detection,
    filters: &[&Detection],
    map_field: &dyn Fn(&str) -> String,
) -> Result<Vec<Cond>, ConvertError> {
    let mut trees = build(detection, map_field)?;
    for filter in filters {
        for filter_tree in build(filter, map_field)? {
            for tree in &mut trees {
                let original = std::mem::replace(tree, Cond::And(Vec::new()));
                *tree = Cond::And(vec![original, Cond::Not(Box::new(filter_tree.clone()))]);
            }
        }
    }
    Ok(trees)
}

struct Builder<'a> {
    searches: &'a [Search],
    map_field: &'a dyn Fn(&str) -> String,
}

impl Builder<'_> {
    fn condition(&self, c: &Condition) -> Result<Option<Cond>, ConvertError> {
        Ok(match c {
            Condition::Search(name) => {
                let search = self
                    .searches
                    .iter()
                    .find(|s| &s.name == name)
                    .ok_or_else(|| ConvertError::Invalid(format!("undefined search '{name}'")))?;
                self.search(search)?
            }
            Condition::And(items) => Cond::join(true, self.all(items)?),
            Condition::Or(items) => Cond::join(false, self.all(items)?),
            Condition::Not(inner) => self.condition(inner)?.map(|c| Cond::Not(Box::new(c))),
            Condition::OneOf(pattern) => self.selector(Some(pattern), false)?,
            Condition::AllOf(pattern) => self.selector(Some(pattern), true)?,
            Condition::OneOfThem => self.selector(None, false)?,
            Condition::AllOfThem => self.selector(None, true)?,
        })
    }

    fn all(&self, items: &[Condition]) -> Result<Vec<Cond>, ConvertError> {
        let mut out = Vec::new();
        for item in items {
            if let Some(c) = self.condition(item)? {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// `1 of pattern` / `all of pattern`; `them` (no pattern) skips identifiers starting with
    /// `_`, and so does a pattern that does not start with `_` itself.
    fn selector(&self, pattern: Option<&str>, and: bool) -> Result<Option<Cond>, ConvertError> {
        let mut args = Vec::new();
        for search in self.searches {
            let selected = match pattern {
                None => !search.name.starts_with('_'),
                Some(p) => {
                    name_matches(p, &search.name)
                        && (p.starts_with('_') || !search.name.starts_with('_'))
                }
            };
            if selected && let Some(c) = self.search(search)? {
                args.push(c);
            }
        }
        Ok(Cond::join(and, args))
    }

    fn search(&self, search: &Search) -> Result<Option<Cond>, ConvertError> {
        let mut alternatives = Vec::new();
        for alternative in &search.alternatives {
            let mut items = Vec::new();
            for item in alternative {
                if let Some(c) = self.item(item)? {
                    items.push(c);
                }
            }
            if let Some(c) = Cond::join(true, items) {
                alternatives.push(c);
            }
        }
        Ok(Cond::join(false, alternatives))
    }

    fn item(&self, item: &FieldMatch) -> Result<Option<Cond>, ConvertError> {
        let field = item.field.as_deref().map(|f| (self.map_field)(f));
        let all = item.modifiers.contains(&Modifier::All);
        let negated = item.modifiers.contains(&Modifier::Neq);
        let mut leaves = Vec::new();
        for value in &item.values {
            let val = apply_modifiers(value, &item.modifiers, self.map_field)?;
            leaves.push(match &field {
                Some(f) => Cond::Field(f.clone(), val),
                None => Cond::Keyword(val),
            });
        }
        let cond = Cond::join(all, leaves);
        Ok(if negated {
            cond.map(|c| Cond::Not(Box::new(c)))
        } else {
            cond
        })
    }
}

fn unsupported(what: impl Into<String>) -> ConvertError {
    ConvertError::Unsupported(what.into())
}

/// Applies an item's modifiers to one value, in the order written (as pySigma does).
fn apply_modifiers(
    value: &Value,
    modifiers: &[Modifier],
    map_field: &dyn Fn(&str) -> String,
) -> Result<Val, ConvertError> {
    let raw_text = value.as_text();
    let mut val = match value {
        Value::Str(s) => Val::Str(SigmaStr::parse(s)),
        Value::Int(i) => Val::Num(i.to_string()),
        Value::Float(f) => Val::Num(f.to_string()),
        Value::Bool(b) => Val::Bool(*b),
        Value::Null => Val::Null,
    };
    let mut applied = 0usize;
    for m in modifiers {
        val = apply_one(val, *m, raw_text.as_deref(), applied, map_field)?;
        if !matches!(m, Modifier::All | Modifier::Neq) {
            applied += 1;
        }
    }
    check_encodable(&val)?;
    Ok(val)
}

/// Values that came out of `utf16*`/`wide` without a following base64 step hold NUL
/// characters, which no SIEM query language can carry.
fn check_encodable(val: &Val) -> Result<(), ConvertError> {
    match val {
        Val::Str(s) | Val::Cased(s) => {
            let has_nul = s
                .parts
                .iter()
                .any(|p| matches!(p, Part::Lit(l) if l.contains('\0')));
            if has_nul {
                return Err(unsupported(
                    "utf16/wide values are only convertible when base64-encoded afterwards",
                ));
            }
            Ok(())
        }
        Val::Expansion(vs) => vs.iter().try_for_each(check_encodable),
        _ => Ok(()),
    }
}

/// Numbers meeting a string modifier are strings (Sigma: "all values are treated as strings").
fn as_string(val: Val) -> Val {
    match val {
        Val::Num(n) => Val::Str(SigmaStr::literal(&n)),
        Val::Bool(b) => Val::Str(SigmaStr::literal(&b.to_string())),
        other => other,
    }
}

fn map_strings(
    val: Val,
    f: &dyn Fn(SigmaStr) -> Result<Val, ConvertError>,
) -> Result<Val, ConvertError> {
    match as_string(val) {
        Val::Str(s) => f(s),
        Val::Expansion(vs) => Ok(Val::Expansion(
            vs.into_iter()
                .map(|v| map_strings(v, f))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flat_map(|v| match v {
                    Val::Expansion(inner) => inner,
                    other => vec![other],
                })
                .collect(),
        )),
        other => Err(ConvertError::Invalid(format!(
            "string modifier applied to a non-string value {other:?}"
        ))),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn apply_one(
    val: Val,
    m: Modifier,
    raw: Option<&str>,
    applied: usize,
    map_field: &dyn Fn(&str) -> String,
) -> Result<Val, ConvertError> {
    let position = |val: Val, front: bool, back: bool| -> Result<Val, ConvertError> {
        match val {
            Val::Re(mut r) => {
                if front && !r.pattern.starts_with(".*") && !r.pattern.starts_with('^') {
                    r.pattern.insert_str(0, ".*");
                }
                if back && !r.pattern.ends_with(".*") && !r.pattern.ends_with('$') {
                    r.pattern.push_str(".*");
                }
                Ok(Val::Re(r))
            }
            Val::FieldRef {
                field,
                starts_with,
                ends_with,
            } => Ok(Val::FieldRef {
                field,
                // contains sets both, startswith sets starts_with, endswith sets ends_with.
                starts_with: starts_with || back,
                ends_with: ends_with || front,
            }),
            Val::Cased(mut s) => {
                if front {
                    s.prepend_many();
                }
                if back {
                    s.append_many();
                }
                Ok(Val::Cased(s))
            }
            other => map_strings(other, &|mut s| {
                if front {
                    s.prepend_many();
                }
                if back {
                    s.append_many();
                }
                Ok(Val::Str(s))
            }),
        }
    };
    match m {
        Modifier::Contains => position(val, true, true),
        Modifier::StartsWith => position(val, false, true),
        Modifier::EndsWith => position(val, true, false),
        Modifier::All | Modifier::Neq => Ok(val),
        Modifier::Base64 => map_strings(val, &|s| {
            let plain = s.plain().ok_or_else(|| {
                ConvertError::Invalid("base64 of a value with wildcards is not allowed".into())
            })?;
            Ok(Val::Str(SigmaStr::literal(&b64(plain.as_bytes()))))
        }),
        Modifier::Base64Offset => map_strings(val, &|s| {
            let plain = s.plain().ok_or_else(|| {
                ConvertError::Invalid(
                    "base64offset of a value with wildcards is not allowed".into(),
                )
            })?;
            Ok(Val::Expansion(base64_offsets(plain.as_bytes())))
        }),
        Modifier::Utf16Le | Modifier::Wide | Modifier::Utf16Be | Modifier::Utf16 => {
            map_strings(val, &|s| {
                let mut out = SigmaStr::default();
                if m == Modifier::Utf16 {
                    out.parts.push(Part::Lit("\u{feff}".into()));
                }
                for p in s.parts {
                    match p {
                        Part::Lit(l) => {
                            if !l.is_ascii() {
                                return Err(unsupported(format!(
                                    "modifier '{}' on non-ASCII text",
                                    m.as_str()
                                )));
                            }
                            let mut wide = String::new();
                            for c in l.chars() {
                                if m == Modifier::Utf16Be {
                                    wide.push('\0');
                                    wide.push(c);
                                } else {
                                    wide.push(c);
                                    wide.push('\0');
                                }
                            }
                            out.push_str_part(wide);
                        }
                        other => out.parts.push(other),
                    }
                }
                Ok(Val::Str(out))
            })
        }
        Modifier::Windash => map_strings(val, &|s| Ok(Val::Expansion(windash(&s)))),
        Modifier::Re => {
            if applied > 0 {
                return Err(ConvertError::Invalid(
                    "re only applies to unmodified values".into(),
                ));
            }
            let pattern = raw.ok_or_else(|| ConvertError::Invalid("re needs a value".into()))?;
            Ok(Val::Re(Regex {
                pattern: pattern.to_string(),
                flags: Vec::new(),
            }))
        }
        Modifier::ReI | Modifier::ReM | Modifier::ReS => match val {
            Val::Re(mut r) => {
                let flag = match m {
                    Modifier::ReI => 'i',
                    Modifier::ReM => 'm',
                    _ => 's',
                };
                if !r.flags.contains(&flag) {
                    r.flags.push(flag);
                }
                Ok(Val::Re(r))
            }
            _ => Err(ConvertError::Invalid(
                "i/m/s need the re modifier first".into(),
            )),
        },
        Modifier::Cidr => {
            let text = raw.ok_or_else(|| ConvertError::Invalid("cidr needs a value".into()))?;
            let net: ipnet::IpNet = text
                .parse()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConvertError::Invalid(format!("'{text}' is not a CIDR network")))?;
            Ok(Val::Cidr(net.trunc()))
        }
        Modifier::Exists => match val {
            Val::Bool(b) => Ok(Val::Exists(b)),
            _ => Err(ConvertError::Invalid("exists takes true or false".into())),
        },
        Modifier::Lt | Modifier::Lte | Modifier::Gt | Modifier::Gte => {
            let op = match m {
                Modifier::Lt => CompareOp::Lt,
                Modifier::Lte => CompareOp::Lte,
                Modifier::Gt => CompareOp::Gt,
                _ => CompareOp::Gte,
            };
            match val {
                Val::Num(n) => Ok(Val::Compare(op, n)),
                _ => Err(ConvertError::Invalid(format!(
                    "{} needs a number",
                    m.as_str()
                ))),
            }
        }
        Modifier::Cased => match as_string(val) {
            Val::Str(s) => Ok(Val::Cased(s)),
            _ => Err(ConvertError::Invalid("cased needs a string value".into())),
        },
        Modifier::FieldRef => {
            let name = raw.ok_or_else(|| ConvertError::Invalid("fieldref needs a field".into()))?;
            Ok(Val::FieldRef {
                field: map_field(name),
                starts_with: false,
                ends_with: false,
            })
        }
        Modifier::Expand => Err(unsupported(
            "placeholders (expand) have no values in a SIEM query; resolve them first",
        )),
    }
}

impl SigmaStr {
    fn push_str_part(&mut self, text: String) {
        match self.parts.last_mut() {
            Some(Part::Lit(l)) => l.push_str(&text),
            _ => self.parts.push(Part::Lit(text)),
        }
    }
}

/// `base64offset`: the value encoded at the three byte offsets, trimmed to what does not depend
/// on the surrounding bytes (pySigma's start offsets 0, 2, 3 and end trims).
fn base64_offsets(value: &[u8]) -> Vec<Val> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|shift| {
            let mut input = vec![b' '; shift];
            input.extend_from_slice(value);
            let encoded = b64(&input);
            let end = encoded.len() - END_TRIM[(value.len() + shift) % 3];
            let text = encoded.get(START[shift]..end).unwrap_or("");
            Val::Str(SigmaStr::literal(text))
        })
        .collect()
}

const WINDASH: [&str; 5] = ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"];

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `windash`: every `-` or `/` that starts a word after a non-word character (pySigma's
/// `\B[-/]\b`) becomes each of `-`, `/`, en dash, em dash and horizontal bar; all combinations.
fn windash(s: &SigmaStr) -> Vec<Val> {
    let mut variants: Vec<SigmaStr> = vec![SigmaStr::default()];
    for part in &s.parts {
        match part {
            Part::Lit(l) => {
                let chars: Vec<char> = l.chars().collect();
                for (i, c) in chars.iter().enumerate() {
                    let prev_word = i > 0 && is_word(chars[i - 1]);
                    let next_word = chars.get(i + 1).is_some_and(|n| is_word(*n));
                    if matches!(c, '-' | '/') && !prev_word && next_word {
                        let mut next = Vec::new();
                        for v in &variants {
                            for dash in WINDASH {
                                let mut nv = v.clone();
                                nv.push_str_part(dash.to_string());
                                next.push(nv);
                            }
                        }
                        variants = next;
                    } else {
                        variants.iter_mut().for_each(|v| v.push_char(*c));
                    }
                }
            }
            other => variants
                .iter_mut()
                .for_each(|v| v.parts.push(other.clone())),
        }
    }
    variants.into_iter().map(Val::Str).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_sigma() {
        let s = SigmaStr::parse(r"a\*b\\c\d*?");
        assert_eq!(
            s.parts,
            vec![Part::Lit(r"a*b\c\d".into()), Part::Many, Part::One]
        );
        assert_eq!(s.to_regex(), r"a\*b\\c\\d.*.");
    }

    #[test]
    fn position_modifiers_do_not_double_wildcards() {
        let v = apply_modifiers(&Value::Str("*x".into()), &[Modifier::Contains], &|f| {
            f.to_string()
        })
        .unwrap();
        assert_eq!(
            v,
            Val::Str(SigmaStr {
                parts: vec![Part::Many, Part::Lit("x".into()), Part::Many]
            })
        );
    }

    #[test]
    fn windash_only_replaces_option_dashes() {
        // `a-b`: the dash follows a word character, so it is not an option dash.
        assert_eq!(windash(&SigmaStr::literal("a-b")).len(), 1);
        assert_eq!(windash(&SigmaStr::literal(" -b")).len(), 5);
        assert_eq!(windash(&SigmaStr::literal("-")).len(), 1);
    }

    #[test]
    fn base64_offsets_match_pysigma() {
        let texts: Vec<Val> = base64_offsets(b"admin");
        assert_eq!(
            texts,
            ["YWRtaW", "FkbWlu", "hZG1pb"]
                .map(|t| Val::Str(SigmaStr::literal(t)))
                .to_vec()
        );
    }

    #[test]
    fn one_of_skips_underscore_identifiers_unless_asked() {
        let item = |name: &str| Search {
            name: name.to_string(),
            alternatives: vec![vec![FieldMatch {
                field: Some(name.to_string()),
                modifiers: vec![],
                values: vec![Value::Int(1)],
                line: 1,
            }]],
            line: 1,
        };
        let detection = Detection {
            searches: vec![item("sel_a"), item("_sel_b")],
            conditions: vec![Condition::OneOfThem, Condition::OneOf("_sel*".into())],
            condition_text: vec![],
            condition_line: 1,
        };
        let trees = build(&detection, &|f| f.to_string()).unwrap();
        assert_eq!(trees[0], Cond::Field("sel_a".into(), Val::Num("1".into())));
        assert_eq!(trees[1], Cond::Field("_sel_b".into(), Val::Num("1".into())));
    }
}
