//! Compiling parsed detections into matchers, and matching field values with them.
//!
//! Everything that can be decided once is decided here: wildcard patterns become exact, prefix,
//! suffix or substring tests on pre-lowercased literals (compared ASCII-case-insensitively, so
//! matching allocates nothing), all the substring alternatives of one item share one
//! Aho-Corasick automaton, and only what needs it (inner wildcards, non-ASCII literals compared
//! case-insensitively, `re`) becomes a `regex` (linear time, no backtracking).
//!
//! Compiled tests do not know about field mapping: the [`crate::Engine`] binds field names to
//! event paths when it is built.

use std::collections::HashMap;
use std::net::IpAddr;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use ipnet::IpNet;
use regex::{Regex, RegexBuilder};

use crate::ast::{Detection, FieldMatch, Modifier, Value};
use crate::event::FieldValue;
use crate::modifiers::{self, Pattern, Piece, Position};

/// Separates the event's strings in the engine's keyword buffer.
pub(crate) const KEYWORD_SEPARATOR: char = '\0';

/// Regexes are bounded in compiled size so that a hostile or careless rule cannot take the
/// engine's memory.
const REGEX_SIZE_LIMIT: usize = 2 * 1024 * 1024;

/// A test on one string (one alternative of a value).
#[derive(Clone, Debug)]
enum StrMatcher {
    /// `lit` is lowercased when not `cased`.
    Exact {
        lit: String,
        cased: bool,
    },
    Prefix {
        lit: String,
        cased: bool,
    },
    Suffix {
        lit: String,
        cased: bool,
    },
    /// `*`: any string.
    Any,
    Regex(Regex),
}

fn ascii_eq(a: &[u8], b: &[u8], cased: bool) -> bool {
    if cased {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

impl StrMatcher {
    fn is_match(&self, s: &str) -> bool {
        let b = s.as_bytes();
        match self {
            StrMatcher::Exact { lit, cased } => ascii_eq(b, lit.as_bytes(), *cased),
            StrMatcher::Prefix { lit, cased } => {
                b.len() >= lit.len() && ascii_eq(&b[..lit.len()], lit.as_bytes(), *cased)
            }
            StrMatcher::Suffix { lit, cased } => {
                b.len() >= lit.len() && ascii_eq(&b[b.len() - lit.len()..], lit.as_bytes(), *cased)
            }
            StrMatcher::Any => true,
            StrMatcher::Regex(re) => re.is_match(s),
        }
    }
}

/// The alternatives of an item (or of one value, under `all`): true when any matches.
#[derive(Clone, Debug)]
pub(crate) struct AnyOf {
    contains: Option<AhoCorasick>,
    contains_cased: Option<AhoCorasick>,
    /// The case-insensitive substrings `contains` searches (kept for the engine's indexes).
    contains_literals: Vec<String>,
    /// The case-sensitive substrings `contains_cased` searches (kept for [`AnyOf::needles`]).
    contains_cased_literals: Vec<String>,
    /// The same substrings lowercased, searched case-sensitively in text the engine has
    /// lowercased once (keyword search): this lets the automaton use its SIMD prefilters,
    /// which ASCII case-insensitive search cannot.
    lowered: Option<AhoCorasick>,
    others: Vec<StrMatcher>,
    /// Exact literals that are integers: an integer field is compared numerically against
    /// these without formatting it, when `others` holds nothing else.
    exact_ints: Vec<i64>,
    only_exact_ints: bool,
}

impl AnyOf {
    fn build(patterns: &[Pattern], cased: bool) -> Result<AnyOf, String> {
        let mut contains = Vec::new();
        let mut contains_cased = Vec::new();
        let mut others = Vec::new();
        let mut exact_ints = Vec::new();
        let mut only_exact_ints = true;
        for pattern in patterns {
            let texts: Vec<Option<String>> = pattern
                .iter()
                .map(|p| match p {
                    Piece::Bytes(b) => String::from_utf8(b.clone()).map(Some).map_err(|_| {
                        "value is not text after encoding (utf16 without base64?)".to_string()
                    }),
                    _ => Ok(None),
                })
                .collect::<Result<_, _>>()?;
            let non_ascii_ci = !cased && texts.iter().flatten().any(|t| !t.is_ascii());
            let lower = |t: &String| {
                if cased {
                    t.clone()
                } else {
                    t.to_ascii_lowercase()
                }
            };
            let shape: Vec<u8> = pattern
                .iter()
                .map(|p| match p {
                    Piece::Bytes(_) => b'L',
                    Piece::AnyMany => b'*',
                    Piece::AnyOne => b'?',
                })
                .collect();
            let literal = |i: usize| texts[i].clone().unwrap_or_default();
            let matcher = if non_ascii_ci {
                glob_regex(pattern, cased)?
            } else {
                match shape.as_slice() {
                    b"" => StrMatcher::Exact {
                        lit: String::new(),
                        cased,
                    },
                    b"L" => {
                        let lit = literal(0);
                        match lit.parse::<i64>() {
                            Ok(i) if i.to_string() == lit => exact_ints.push(i),
                            _ => only_exact_ints = false,
                        }
                        StrMatcher::Exact {
                            lit: lower(&lit),
                            cased,
                        }
                    }
                    b"L*" => StrMatcher::Prefix {
                        lit: lower(&literal(0)),
                        cased,
                    },
                    b"*L" => StrMatcher::Suffix {
                        lit: lower(&literal(1)),
                        cased,
                    },
                    b"*L*" => {
                        if cased {
                            contains_cased.push(literal(1));
                        } else {
                            contains.push(literal(1));
                        }
                        only_exact_ints = false;
                        continue;
                    }
                    s if !s.is_empty() && s.iter().all(|c| *c == b'*') => StrMatcher::Any,
                    _ => glob_regex(pattern, cased)?,
                }
            };
            if !matches!(matcher, StrMatcher::Exact { .. }) {
                only_exact_ints = false;
            }
            others.push(matcher);
        }
        let automaton = |pats: &[String], ci: bool| -> Result<Option<AhoCorasick>, String> {
            if pats.is_empty() {
                return Ok(None);
            }
            // A DFA: more memory per automaton, fastest scans (rules are few, events many).
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(ci)
                .kind(Some(AhoCorasickKind::DFA))
                .match_kind(MatchKind::LeftmostFirst)
                .build(pats)
                .map(Some)
                .map_err(|e| format!("cannot build substring matcher: {e}"))
        };
        let lowered =
            if contains.is_empty() || contains.iter().any(|c| c.contains(KEYWORD_SEPARATOR)) {
                None
            } else {
                let lower: Vec<String> = contains.iter().map(|c| c.to_ascii_lowercase()).collect();
                automaton(&lower, false)?
            };
        Ok(AnyOf {
            lowered,
            contains: automaton(&contains, true)?,
            contains_cased: automaton(&contains_cased, false)?,
            contains_literals: contains,
            contains_cased_literals: contains_cased,
            others,
            exact_ints,
            only_exact_ints,
        })
    }

    /// When every alternative is an exact literal: a key identifying the set (equal keys test
    /// the same thing, so the engine evaluates such a test once per event for all rules).
    pub fn exact_key(&self) -> Option<Vec<String>> {
        if self.contains.is_some() || self.contains_cased.is_some() || self.others.is_empty() {
            return None;
        }
        let mut key = self
            .others
            .iter()
            .map(|m| match m {
                StrMatcher::Exact { lit, cased } => Some(format!("{}{lit}", u8::from(*cased))),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        key.sort();
        Some(key)
    }

    /// Literals one of which occurs, ASCII-lowercased, in the ASCII-lowercased copy of every
    /// string this test matches: each alternative's literal, wherever it must be (exact, prefix,
    /// suffix or substring). The engine searches all the literals of a field at once per event
    /// and skips rules none of whose literals occur. `None` when an alternative has no literal
    /// (`*`, an inner wildcard, an empty value).
    pub(crate) fn needles(&self) -> Option<Vec<String>> {
        let mut out: Vec<String> = self
            .contains_literals
            .iter()
            .chain(&self.contains_cased_literals)
            .map(|l| l.to_ascii_lowercase())
            .collect();
        for m in &self.others {
            match m {
                StrMatcher::Exact { lit, .. }
                | StrMatcher::Prefix { lit, .. }
                | StrMatcher::Suffix { lit, .. } => out.push(lit.to_ascii_lowercase()),
                StrMatcher::Any | StrMatcher::Regex(_) => return None,
            }
        }
        if out.is_empty() || out.iter().any(String::is_empty) {
            return None;
        }
        out.sort();
        out.dedup();
        Some(out)
    }

    /// True when all alternatives are exact integers (the most selective kind of gate).
    pub fn is_integer_set(&self) -> bool {
        self.only_exact_ints
            && !self.exact_ints.is_empty()
            && self.exact_ints.len() == self.others.len()
    }

    /// The case-insensitive substrings, when that is all this test is.
    pub fn contains_only(&self) -> Option<&[String]> {
        if self.others.is_empty() && self.contains_cased.is_none() && self.contains.is_some() {
            Some(&self.contains_literals)
        } else {
            None
        }
    }

    /// Matches against the engine's lowercased keyword buffer, when this test is substrings
    /// only (`None` otherwise: the caller searches string by string).
    pub(crate) fn is_match_lowered(&self, buffer: &str) -> Option<bool> {
        self.contains_only()?;
        self.lowered.as_ref().map(|ac| ac.is_match(buffer))
    }

    /// Whether [`AnyOf::is_match_str_lowered`] can use a lowercased copy of the text.
    pub(crate) fn has_lowered(&self) -> bool {
        self.lowered.is_some()
    }

    /// [`AnyOf::is_match_str`] given also the ASCII-lowercased text (which the engine makes once
    /// per field and event): substrings are searched in it case-sensitively, with prefilters.
    pub(crate) fn is_match_str_lowered(&self, s: &str, lowered: &str) -> bool {
        match &self.lowered {
            Some(ac) if ac.is_match(lowered) => return true,
            Some(_) => {}
            None => {
                if self.contains.as_ref().is_some_and(|ac| ac.is_match(s)) {
                    return true;
                }
            }
        }
        self.contains_cased
            .as_ref()
            .is_some_and(|ac| ac.is_match(s))
            || self.others.iter().any(|m| m.is_match(s))
    }

    pub(crate) fn is_match_str(&self, s: &str) -> bool {
        self.contains.as_ref().is_some_and(|ac| ac.is_match(s))
            || self
                .contains_cased
                .as_ref()
                .is_some_and(|ac| ac.is_match(s))
            || self.others.iter().any(|m| m.is_match(s))
    }

    pub(crate) fn is_match(&self, v: &FieldValue<'_>) -> bool {
        match v {
            FieldValue::Str(s) => self.is_match_str(s),
            FieldValue::Int(i) if self.only_exact_ints => self.exact_ints.contains(i),
            FieldValue::List(items) => items.iter().any(|i| self.is_match(i)),
            FieldValue::Null => false,
            other => other.as_text().is_some_and(|t| self.is_match_str(&t)),
        }
    }
}

fn glob_regex(pattern: &Pattern, cased: bool) -> Result<StrMatcher, String> {
    let mut re = String::from(if cased { "(?s)^" } else { "(?si)^" });
    for piece in pattern {
        match piece {
            Piece::Bytes(b) => {
                let text = std::str::from_utf8(b).map_err(|_| {
                    "value is not text after encoding (utf16 without base64?)".to_string()
                })?;
                re.push_str(&regex::escape(text));
            }
            Piece::AnyMany => re.push_str(".*"),
            Piece::AnyOne => re.push('.'),
        }
    }
    re.push('$');
    build_regex(&re).map(StrMatcher::Regex)
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let first = e.to_string();
            let short = first.lines().last().unwrap_or("").trim().to_string();
            format!("bad regular expression '{pattern}': {short}")
        })
}

/// How a `fieldref` value is compared with the referenced field.
#[derive(Clone, Debug)]
pub(crate) struct FieldRef {
    pub fields: Vec<String>,
    pub position: Position,
    pub cased: bool,
    pub all: bool,
}

impl FieldRef {
    pub fn compare(&self, value: &str, reference: &str) -> bool {
        let (v, r) = (value.as_bytes(), reference.as_bytes());
        match self.position {
            Position::Whole => ascii_eq(v, r, self.cased),
            Position::StartsWith => v.len() >= r.len() && ascii_eq(&v[..r.len()], r, self.cased),
            Position::EndsWith => {
                v.len() >= r.len() && ascii_eq(&v[v.len() - r.len()..], r, self.cased)
            }
            Position::Contains => {
                if self.cased {
                    value.contains(reference)
                } else {
                    value
                        .to_ascii_lowercase()
                        .contains(&reference.to_ascii_lowercase())
                }
            }
        }
    }
}

/// What a compiled item tests on its field's value.
#[derive(Clone, Debug)]
pub(crate) enum ValueTest {
    /// Any alternative of any value.
    Str(AnyOf),
    /// `all`: every value (each with its own alternatives).
    StrAll(Vec<AnyOf>),
    Regex {
        regexes: Vec<Regex>,
        all: bool,
    },
    Cidr {
        nets: Vec<IpNet>,
        all: bool,
    },
    Compare {
        op: Modifier,
        values: Vec<f64>,
        all: bool,
    },
    Exists(bool),
    /// `field: null`: absent or null.
    Null,
    FieldRef(FieldRef),
}

fn any_or_all<T>(items: &[T], all: bool, f: impl Fn(&T) -> bool) -> bool {
    if all {
        items.iter().all(f)
    } else {
        items.iter().any(f)
    }
}

fn value_any(v: &FieldValue<'_>, f: &dyn Fn(&FieldValue<'_>) -> bool) -> bool {
    match v {
        FieldValue::List(items) => items.iter().any(|i| value_any(i, f)),
        other => f(other),
    }
}

impl ValueTest {
    /// Tests a present (or, for `Null`/`Exists`, possibly absent) value. `FieldRef` is handled
    /// by the engine, which can read the other field.
    pub fn matches(&self, value: Option<&FieldValue<'_>>) -> bool {
        match self {
            ValueTest::Exists(want) => value.is_some() == *want,
            ValueTest::Null => matches!(value, None | Some(FieldValue::Null)),
            _ => {
                let Some(v) = value else { return false };
                match self {
                    ValueTest::Str(any) => any.is_match(v),
                    ValueTest::StrAll(each) => each.iter().all(|a| a.is_match(v)),
                    ValueTest::Regex { regexes, all } => any_or_all(regexes, *all, |re| {
                        value_any(v, &|x| x.as_text().is_some_and(|t| re.is_match(&t)))
                    }),
                    ValueTest::Cidr { nets, all } => any_or_all(nets, *all, |net| {
                        value_any(v, &|x| {
                            x.as_text()
                                .and_then(|t| t.trim().parse::<IpAddr>().ok())
                                .is_some_and(|ip| net.contains(&ip))
                        })
                    }),
                    ValueTest::Compare { op, values, all } => any_or_all(values, *all, |want| {
                        value_any(v, &|x| {
                            x.as_f64().is_some_and(|have| match op {
                                Modifier::Lt => have < *want,
                                Modifier::Lte => have <= *want,
                                Modifier::Gt => have > *want,
                                _ => have >= *want,
                            })
                        })
                    }),
                    ValueTest::Exists(_) | ValueTest::Null | ValueTest::FieldRef(_) => false,
                }
            }
        }
    }

    /// Tests the engine's keyword buffer (every keyword string, ASCII-lowercased, separated by
    /// [`KEYWORD_SEPARATOR`]); `None` when this test cannot be decided on it.
    pub fn matches_keyword_buffer(&self, buffer: &str) -> Option<bool> {
        match self {
            ValueTest::Str(any) => any.is_match_lowered(buffer),
            ValueTest::StrAll(each) => {
                let mut all = true;
                for a in each {
                    all &= a.is_match_lowered(buffer)?;
                }
                Some(all)
            }
            _ => None,
        }
    }

    /// Tests keyword strings (an item without field): any string may satisfy each value.
    pub fn matches_keywords(&self, event: &dyn crate::event::Event) -> bool {
        match self {
            ValueTest::Str(any) => event.keywords(&mut |s| any.is_match_str(s)),
            ValueTest::StrAll(each) => each
                .iter()
                .all(|a| event.keywords(&mut |s| a.is_match_str(s))),
            ValueTest::Regex { regexes, all } => {
                any_or_all(regexes, *all, |re| event.keywords(&mut |s| re.is_match(s)))
            }
            _ => false,
        }
    }
}

/// A compiled item: the test plus whether it is negated (`neq`).
#[derive(Clone, Debug)]
pub(crate) struct CompiledItem {
    /// Sigma field name; `None` for keywords.
    pub field: Option<String>,
    pub test: ValueTest,
    /// `neq`: the field must be present and the test must fail.
    pub negate: bool,
}

/// A compiled detection: searches in definition order (same indices as the AST's).
#[derive(Clone, Debug)]
pub(crate) struct CompiledDetection {
    pub searches: Vec<Vec<Vec<CompiledItem>>>,
}

/// Compiles one item of a selection.
pub(crate) fn compile_item(
    item: &FieldMatch,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<CompiledItem, String> {
    let set = modifiers::classify(item)?;
    let negate = set.neq;
    let test = if set.exists {
        ValueTest::Exists(matches!(item.values.first(), Some(Value::Bool(true))))
    } else if item.values.len() == 1 && matches!(item.values[0], Value::Null) {
        ValueTest::Null
    } else if set.re {
        let (i, m, s) = set.re_flags;
        let regexes = item
            .values
            .iter()
            .map(|v| {
                let text = v
                    .as_text()
                    .ok_or_else(|| "re needs a string value".to_string())?;
                let mut flags = String::new();
                for (on, f) in [(i, 'i'), (m, 'm'), (s, 's')] {
                    if on {
                        flags.push(f);
                    }
                }
                let pattern = if flags.is_empty() {
                    text
                } else {
                    format!("(?{flags}){text}")
                };
                build_regex(&pattern)
            })
            .collect::<Result<Vec<_>, _>>()?;
        ValueTest::Regex {
            regexes,
            all: set.all,
        }
    } else if set.cidr {
        let nets = item
            .values
            .iter()
            .map(|v| {
                let text = v.as_text().unwrap_or_default();
                text.trim()
                    .parse::<IpNet>()
                    .or_else(|_| text.trim().parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("bad CIDR network '{text}'"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        ValueTest::Cidr { nets, all: set.all }
    } else if let Some(op) = set.compare {
        let values = item
            .values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i as f64),
                Value::Float(f) => Ok(*f),
                Value::Str(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| format!("'{}' needs a number, not '{s}'", op.as_str())),
                _ => Err(format!("'{}' needs a number", op.as_str())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        ValueTest::Compare {
            op,
            values,
            all: set.all,
        }
    } else if set.fieldref {
        let fields = item
            .values
            .iter()
            .map(|v| match v {
                Value::Str(s) => Ok(s.clone()),
                _ => Err("fieldref needs field names".to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        ValueTest::FieldRef(FieldRef {
            fields,
            position: set.position.unwrap_or(Position::Whole),
            cased: set.cased,
            all: set.all,
        })
    } else {
        let cased = set.cased || modifiers::encodes(&set);
        // Keywords are searched inside the event's strings: a plain keyword is a substring.
        let mut set = set;
        if item.field.is_none() && set.position.is_none() {
            set.position = Some(Position::Contains);
        }
        let per_value = item
            .values
            .iter()
            .map(|v| modifiers::string_alternatives(v, &set, placeholders))
            .collect::<Result<Vec<_>, _>>()?;
        if set.all && per_value.len() > 1 {
            ValueTest::StrAll(
                per_value
                    .iter()
                    .map(|alts| AnyOf::build(alts, cased))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            let flat: Vec<Pattern> = per_value.into_iter().flatten().collect();
            ValueTest::Str(AnyOf::build(&flat, cased)?)
        }
    };
    Ok(CompiledItem {
        field: item.field.clone(),
        test,
        negate,
    })
}

/// Compiles every search of a detection; errors carry the item's line.
pub(crate) fn compile_detection(
    detection: &Detection,
    placeholders: &HashMap<String, Vec<String>>,
) -> Result<CompiledDetection, (usize, String)> {
    let mut searches = Vec::new();
    for search in &detection.searches {
        let mut alternatives = Vec::new();
        for alternative in &search.alternatives {
            let items = alternative
                .iter()
                .map(|item| {
                    compile_item(item, placeholders).map_err(|m| {
                        let field = item.field.as_deref().unwrap_or("(keywords)");
                        (
                            item.line,
                            format!("{m} — in '{}' field '{field}'", search.name),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            alternatives.push(items);
        }
        searches.push(alternatives);
    }
    Ok(CompiledDetection { searches })
}
