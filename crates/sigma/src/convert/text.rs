//! The target-specific half of query conversion: a [`Cond`] tree rendered as query text.
//!
//! One renderer serves the four targets; a [`Dialect`] holds what differs (tokens, quoting,
//! escaping, templates, operator precedence), like the class attributes of pySigma's
//! `TextQueryBackend`, and the few places where a pySigma backend overrides the generic logic are
//! explicit `match`es on the target. Keeping that structure is what makes the output comparable
//! with pySigma's token for token (see `tests/convert_pysigma.rs`); the deliberate departures are
//! marked "(differs from pySigma)" and listed in `tests/fixtures/convert/DIFFERENCES.md`.

use super::tree::{CompareOp, Cond, Part, Regex, SigmaStr, Val};
use super::{ConvertError, Target};

/// Operator kinds, for precedence decisions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Not,
    And,
    Or,
}

/// The query-language specifics of a target.
pub(crate) struct Dialect {
    pub target: Target,
    /// Operators from most to least binding.
    precedence: [Op; 3],
    /// Put parentheses around every non-leaf operand.
    parenthesize: bool,
    or_token: &'static str,
    and_token: &'static str,
    not_token: &'static str,
    eq_token: &'static str,
    str_quote: &'static str,
    /// Quote every string (`true`) or only empty ones (Lucene).
    quote_always: bool,
    escape_char: &'static str,
    wildcard_multi: &'static str,
    wildcard_single: &'static str,
    add_escaped: &'static str,
    startswith: Option<&'static str>,
    endswith: Option<&'static str>,
    contains: Option<&'static str>,
    wildcard_match: Option<&'static str>,
    re_expression: &'static str,
    re_escape: &'static [&'static str],
    re_escape_escape_char: bool,
    cidr: &'static str,
    compare: &'static str,
    null: &'static str,
    exists: &'static str,
    not_exists: &'static str,
    or_as_in: bool,
    and_as_in: bool,
    in_allows_wildcards: bool,
    in_list: &'static str,
    or_in_op: &'static str,
    and_in_op: &'static str,
    list_separator: &'static str,
    keyword_str: Option<&'static str>,
    keyword_num: Option<&'static str>,
    keyword_re: Option<&'static str>,
}

impl Dialect {
    pub fn of(target: Target) -> Dialect {
        match target {
            Target::Splunk => Dialect {
                target,
                precedence: [Op::Not, Op::Or, Op::And],
                parenthesize: false,
                or_token: "OR",
                // Splunk's AND is implicit: terms separated by a space.
                and_token: "",
                not_token: "NOT",
                eq_token: "=",
                str_quote: "\"",
                quote_always: true,
                escape_char: "\\",
                wildcard_multi: "*",
                // Splunk has no single-character wildcard: `?` widens to `*`.
                wildcard_single: "*",
                add_escaped: "\\",
                startswith: None,
                endswith: None,
                contains: None,
                wildcard_match: None,
                re_expression: "{regex}",
                re_escape: &["\""],
                re_escape_escape_char: true,
                cidr: "{field}=\"{value}\"",
                compare: "{field}{operator}{value}",
                null: "NOT {field}=*",
                exists: "{field}=*",
                not_exists: "NOT {field}=*",
                or_as_in: true,
                and_as_in: false,
                in_allows_wildcards: true,
                in_list: "{field} {op} ({list})",
                or_in_op: "IN",
                and_in_op: "",
                list_separator: ", ",
                keyword_str: Some("{value}"),
                keyword_num: Some("{value}"),
                keyword_re: Some("{value}"),
            },
            Target::Lucene => Dialect {
                target,
                precedence: [Op::Not, Op::Or, Op::And],
                parenthesize: true,
                or_token: "OR",
                and_token: "AND",
                not_token: "NOT",
                eq_token: ":",
                str_quote: "\"",
                quote_always: false,
                escape_char: "\\",
                wildcard_multi: "*",
                wildcard_single: "?",
                add_escaped: "+-=&|!(){}[]<>^\"~*?:\\/ ",
                startswith: None,
                endswith: None,
                contains: None,
                wildcard_match: None,
                re_expression: "{field}:/{regex}/",
                re_escape: &["/"],
                re_escape_escape_char: false,
                cidr: "{field}:{network}\\/{prefixlen}",
                compare: "{field}:{operator}{value}",
                null: "NOT _exists_:{field}",
                exists: "_exists_:{field}",
                not_exists: "NOT _exists_:{field}",
                or_as_in: true,
                and_as_in: false,
                in_allows_wildcards: true,
                in_list: "{field}{op}({list})",
                or_in_op: ":",
                and_in_op: "",
                list_separator: " OR ",
                keyword_str: Some("*{value}*"),
                keyword_num: Some("{value}"),
                keyword_re: None,
            },
            Target::Esql => Dialect {
                target,
                precedence: [Op::Not, Op::And, Op::Or],
                parenthesize: false,
                or_token: "or",
                and_token: "and",
                not_token: "not",
                eq_token: "==",
                str_quote: "\"",
                quote_always: true,
                escape_char: "\\",
                wildcard_multi: "*",
                wildcard_single: "?",
                add_escaped: "\\",
                startswith: Some("starts_with({field}, {value})"),
                endswith: Some("ends_with({field}, {value})"),
                contains: None,
                wildcard_match: Some("{field} like {value}"),
                re_expression: "{field} rlike \"{regex}\"",
                re_escape: &["\""],
                re_escape_escape_char: true,
                cidr: "cidr_match({field}, \"{value}\")",
                compare: "{field}{operator}{value}",
                null: "{field} is null",
                exists: "{field} is not null",
                not_exists: "{field} is null",
                or_as_in: true,
                and_as_in: false,
                in_allows_wildcards: false,
                in_list: "{field} {op} ({list})",
                or_in_op: "in",
                and_in_op: "",
                list_separator: ", ",
                keyword_str: None,
                keyword_num: None,
                keyword_re: None,
            },
            Target::Kql => Dialect {
                target,
                precedence: [Op::Not, Op::And, Op::Or],
                parenthesize: true,
                or_token: "or",
                and_token: "and",
                not_token: "not",
                eq_token: " =~ ",
                str_quote: "\"",
                quote_always: true,
                escape_char: "\\",
                wildcard_multi: "*",
                wildcard_single: "*",
                add_escaped: "\\",
                startswith: Some("{field} startswith {value}"),
                endswith: Some("{field} endswith {value}"),
                contains: Some("{field} contains {value}"),
                wildcard_match: Some("{field} matches regex \"{regex}\""),
                re_expression: "{field} matches regex \"{regex}\"",
                re_escape: &["\""],
                re_escape_escape_char: true,
                cidr: "ipv4_is_in_range({field}, \"{value}\")",
                compare: "{field} {operator} {value}",
                null: "isnull({field})",
                exists: "isnotempty({field})",
                not_exists: "isempty({field})",
                or_as_in: true,
                and_as_in: true,
                in_allows_wildcards: true,
                in_list: "{field} {op} ({list})",
                or_in_op: "in~",
                and_in_op: "has_all",
                list_separator: ", ",
                keyword_str: Some("* contains {value}"),
                keyword_num: Some("* contains \"{value}\""),
                keyword_re: Some("* matches regex {value}"),
            },
        }
    }

    fn rank(&self, op: Op) -> usize {
        self.precedence.iter().position(|o| *o == op).unwrap_or(0)
    }
}

/// Fills `{name}` placeholders in one pass (values are never re-scanned for placeholders).
pub(crate) fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}').and_then(|end| {
            let name = &after[..end];
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (end, *v))
        }) {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A Splunk expression that cannot live in the search itself and is appended as a pipeline
/// command (`| regex`, `| where`), like pySigma's deferred expressions.
#[derive(Clone, Debug)]
enum Deferred {
    Regex {
        field: String,
        regex: String,
        negated: bool,
    },
    FieldRef {
        field1: String,
        field2: String,
        negated: bool,
    },
}

impl Deferred {
    fn negate(self) -> Deferred {
        match self {
            Deferred::Regex {
                field,
                regex,
                negated,
            } => Deferred::Regex {
                field,
                regex,
                negated: !negated,
            },
            Deferred::FieldRef {
                field1,
                field2,
                negated,
            } => Deferred::FieldRef {
                field1,
                field2,
                negated: !negated,
            },
        }
    }

    fn render(&self) -> String {
        match self {
            Deferred::Regex {
                field,
                regex,
                negated,
            } => {
                format!(
                    "regex {field}{}\"{regex}\"",
                    if *negated { "!=" } else { "=" }
                )
            }
            Deferred::FieldRef {
                field1,
                field2,
                negated,
            } => {
                format!(
                    "where {}'{field1}'='{field2}'",
                    if *negated { "NOT " } else { "" }
                )
            }
        }
    }
}

/// Result of converting a sub-tree: text, or a Splunk pipeline part kept aside.
enum Out {
    Text(String),
    Deferred(Deferred),
}

/// Renders a condition tree as the target's query (without the target's query frame).
pub(crate) struct Renderer<'d> {
    d: &'d Dialect,
    deferred: Vec<Deferred>,
    /// Splunk regular expressions under OR: `rex` + `eval` commands run before the search,
    /// which then tests the flag field they set (pySigma's rewrite).
    or_regex: Vec<String>,
    /// How many such regexes each field has had (numbers the flag fields).
    or_regex_counts: Vec<(String, usize)>,
    /// The flag fields, which must not be moved ahead of the `rex` commands.
    or_regex_flags: Vec<String>,
}

impl<'d> Renderer<'d> {
    pub fn new(d: &'d Dialect) -> Self {
        Renderer {
            d,
            deferred: Vec::new(),
            or_regex: Vec::new(),
            or_regex_counts: Vec::new(),
            or_regex_flags: Vec::new(),
        }
    }

    /// The whole query of one condition, with deferred parts and the target's frame.
    pub fn query(mut self, cond: &Cond) -> Result<String, ConvertError> {
        let main = match self.convert(cond, false)? {
            Out::Text(t) => t,
            Out::Deferred(d) => {
                self.deferred.push(d);
                "*".to_string()
            }
        };
        Ok(match self.d.target {
            Target::Splunk => {
                let mut q = if self.or_regex.is_empty() {
                    main
                } else {
                    self.splunk_or_regex_frame(&main)
                };
                for d in &self.deferred {
                    q.push_str("\n| ");
                    q.push_str(&d.render());
                }
                q
            }
            Target::Esql => format!("from * metadata _id, _index, _version | where {main}"),
            Target::Lucene | Target::Kql => main,
        })
    }

    /// `<leading terms>\n| rex …\n| eval …\n| search <rest>`: as pySigma, the plain `field=value`
    /// terms at the start of the search run first, so Splunk can use its index for them.
    /// (pySigma also moves them when an OR follows, which leaves a dangling `OR`; that case keeps
    /// everything in the search here.)
    fn splunk_or_regex_frame(&self, main: &str) -> String {
        let rex = format!("\n| {}", self.or_regex.join("\n| "));
        let mut prefix = Vec::new();
        let mut rest = main;
        while let Some(len) = leading_term(rest) {
            let term = &rest[..len];
            let field = term.split('=').next().unwrap_or_default();
            if self.or_regex_flags.iter().any(|f| f == field) {
                break;
            }
            prefix.push(term.trim_end());
            rest = &rest[len..];
        }
        if prefix.is_empty() || rest.starts_with("OR ") {
            // A search cannot start with `| rex`: search everything first (pySigma writes
            // nothing before the pipe).
            return format!("*{rex}\n| search {main}");
        }
        format!("{}{rex}\n| search {rest}", prefix.join(" "))
    }

    /// Registers a regular expression under OR (Splunk) and returns the flag field it sets.
    fn splunk_or_regex(&mut self, field: &str, regex: &str) -> String {
        let count = match self.or_regex_counts.iter_mut().find(|(f, _)| f == field) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.or_regex_counts.push((field.to_string(), 1));
                1
            }
        };
        let suffix = if count == 1 {
            String::new()
        } else {
            count.to_string()
        };
        let short = field.rsplit('.').next().unwrap_or(field);
        let flag = format!("{short}Condition{suffix}");
        let match_suffix = format!("Match{suffix}");
        let mut group = format!("{short}{match_suffix}");
        // Splunk limits capture group names to 32 characters. pySigma shortens with a BLAKE2s
        // digest; FNV-1a here (differs from pySigma for field names over 27 characters).
        if group.len() > 32 {
            let digest = format!("{:08x}", fnv1a(short.as_bytes()) as u32);
            let keep = 32usize.saturating_sub(match_suffix.len() + digest.len());
            let head: String = short.chars().take(keep).collect();
            group = format!("{head}{digest}{match_suffix}");
        }
        self.or_regex.push(format!(
            "rex field={field} \"(?<{group}>{regex})\"\n| eval {flag}=if(isnotnull({group}), \"true\", \"false\")"
        ));
        self.or_regex_flags.push(flag.clone());
        flag
    }

    /// The condition as a boolean expression only (used inside correlation searches).
    pub fn expression(mut self, cond: &Cond) -> Result<String, ConvertError> {
        match self.convert(cond, false)? {
            Out::Text(t) if self.deferred.is_empty() => Ok(t),
            _ => Err(ConvertError::Unsupported(
                "regular expressions and field references cannot be part of a Splunk correlation search"
                    .to_string(),
            )),
        }
    }

    fn quote_field(&self, field: &str) -> String {
        let plain = !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
        match self.d.target {
            Target::Splunk if !plain => format!("\"{field}\""),
            Target::Esql if !plain => format!("`{}`", field.replace('`', "``")),
            // (differs from pySigma) pySigma's Kusto backend writes 'a.b', a string literal in
            // KQL; a dotted path is how KQL reads members of the dynamic OCSF objects, and other
            // names need the ['...'] bracket form.
            Target::Kql if !plain => format!("['{}']", field.replace('\'', "\\'")),
            Target::Lucene => {
                let mut out = String::new();
                for c in field.chars() {
                    if c.is_whitespace() || c == '*' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out
            }
            _ => field.to_string(),
        }
    }

    /// pySigma `convert_value_str`.
    fn value_str(&self, s: &SigmaStr) -> String {
        let d = self.d;
        let escaped = format!("{}{}", d.str_quote, d.add_escaped);
        if d.target == Target::Lucene && !s.contains_special() && has_space(s) {
            let no_space: String = escaped.chars().filter(|c| *c != ' ').collect();
            let inner = s.render(
                d.escape_char,
                d.wildcard_multi,
                d.wildcard_single,
                &no_space,
            );
            return format!("\"{inner}\"");
        }
        self.value_str_plain(s, &escaped)
    }

    fn value_str_plain(&self, s: &SigmaStr, escaped: &str) -> String {
        let d = self.d;
        let mut converted = s.render(d.escape_char, d.wildcard_multi, d.wildcard_single, escaped);
        if d.target == Target::Kql {
            converted = converted.replace("\\*", "*");
        }
        let quote = d.quote_always || s.parts.is_empty();
        if quote {
            format!("{}{converted}{}", d.str_quote, d.str_quote)
        } else {
            converted
        }
    }

    /// pySigma `convert_value_re` (escapes and the `(?flags)` prefix).
    fn regex(&self, r: &Regex) -> String {
        let mut escapes: Vec<&str> = self.d.re_escape.to_vec();
        if self.d.re_escape_escape_char {
            escapes.push("\\");
        }
        let mut out = String::new();
        let mut flags = r.flags.clone();
        flags.sort_unstable();
        if !flags.is_empty() {
            out.push_str("(?");
            out.extend(flags);
            out.push(')');
        }
        let mut rest = r.pattern.as_str();
        while !rest.is_empty() {
            if let Some(e) = escapes.iter().find(|e| rest.starts_with(**e)) {
                out.push('\\');
                out.push_str(e);
                rest = &rest[e.len()..];
            } else {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    fn op_of(cond: &Cond) -> Option<Op> {
        match cond {
            Cond::Or(_) => Some(Op::Or),
            Cond::And(_) => Some(Op::And),
            Cond::Not(_) => Some(Op::Not),
            Cond::Field(_, Val::Expansion(_)) | Cond::Keyword(Val::Expansion(_)) => Some(Op::Or),
            _ => None,
        }
    }

    /// True when `inner` needs no parentheses inside `outer` (pySigma `compare_precedence`).
    fn binds_tighter(&self, outer: Op, inner: &Cond) -> bool {
        if self.d.target == Target::Lucene {
            if let Cond::Not(n) = inner
                && matches!(**n, Cond::Field(_, Val::Null))
            {
                return true;
            }
            if matches!(inner, Cond::Field(_, Val::Null)) {
                return false;
            }
        }
        let leaf = matches!(inner, Cond::Field(..) | Cond::Keyword(_));
        if self.d.parenthesize && !leaf {
            return false;
        }
        match Self::op_of(inner) {
            None => true,
            Some(op) => self.d.rank(op) <= self.d.rank(outer),
        }
    }

    fn group(&mut self, cond: &Cond) -> Result<Out, ConvertError> {
        Ok(match self.convert(cond, false)? {
            Out::Text(t) => Out::Text(format!("({t})")),
            deferred => deferred,
        })
    }

    fn convert(&mut self, cond: &Cond, in_or: bool) -> Result<Out, ConvertError> {
        match cond {
            Cond::Or(args) | Cond::And(args) => {
                let is_and = matches!(cond, Cond::And(_));
                if self.as_in_applies(args, is_and) {
                    return self.as_in(args, is_and);
                }
                let op = if is_and { Op::And } else { Op::Or };
                let token = if is_and {
                    self.d.and_token
                } else {
                    self.d.or_token
                };
                let joiner = if token.is_empty() {
                    " ".to_string()
                } else {
                    format!(" {token} ")
                };
                let mut parts = Vec::new();
                for arg in args {
                    let out = if self.binds_tighter(op, arg) {
                        self.convert(arg, in_or || !is_and)?
                    } else {
                        self.group_in(arg, in_or || !is_and)?
                    };
                    match out {
                        Out::Text(t) => parts.push(t),
                        Out::Deferred(d) => self.defer(d, in_or || !is_and)?,
                    }
                }
                Ok(Out::Text(parts.join(&joiner)))
            }
            Cond::Not(arg) => self.not(arg, in_or),
            Cond::Field(field, val) => self.field(field, val, in_or),
            Cond::Keyword(val) => self.keyword(val).map(Out::Text),
        }
    }

    fn group_in(&mut self, cond: &Cond, in_or: bool) -> Result<Out, ConvertError> {
        Ok(match self.convert(cond, in_or)? {
            Out::Text(t) => Out::Text(format!("({t})")),
            deferred => deferred,
        })
    }

    fn defer(&mut self, d: Deferred, in_or: bool) -> Result<(), ConvertError> {
        if in_or {
            return Err(ConvertError::Unsupported(
                "a regular expression or field reference under OR cannot be converted for Splunk"
                    .to_string(),
            ));
        }
        self.deferred.push(d);
        Ok(())
    }

    fn not(&mut self, arg: &Cond, in_or: bool) -> Result<Out, ConvertError> {
        let d = self.d;
        // `not field: null` is "the field exists". pySigma does this for Lucene only; for Splunk
        // it writes `NOT NOT f=*`, which Splunk rejects (differs from pySigma).
        if let Cond::Field(field, Val::Null) = arg
            && matches!(d.target, Target::Lucene | Target::Splunk)
        {
            return Ok(Out::Text(fill(
                d.exists,
                &[("field", &self.quote_field(field))],
            )));
        }
        let is_op = matches!(arg, Cond::Or(_) | Cond::And(_) | Cond::Not(_));
        let out = if is_op {
            self.group(arg)?
        } else {
            self.convert(arg, in_or)?
        };
        Ok(match out {
            Out::Deferred(def) => Out::Deferred(def.negate()),
            // KQL's not() is a function: its argument is always parenthesised.
            Out::Text(t) if d.target == Target::Kql => Out::Text(format!("not({t})")),
            Out::Text(t) => Out::Text(format!("{} {t}", d.not_token)),
        })
    }

    fn as_in_applies(&self, args: &[Cond], is_and: bool) -> bool {
        let d = self.d;
        if (is_and && !d.and_as_in) || (!is_and && !d.or_as_in) {
            return false;
        }
        let mut field_name: Option<&str> = None;
        for arg in args {
            let Cond::Field(f, v) = arg else {
                return false;
            };
            if field_name.is_some_and(|n| n != f) {
                return false;
            }
            field_name = Some(f);
            match v {
                Val::Str(s) => {
                    if !d.in_allows_wildcards && s.contains_special() {
                        return false;
                    }
                }
                Val::Num(_) => {}
                _ => return false,
            }
        }
        true
    }

    fn list_item(&self, v: &Val) -> String {
        match v {
            Val::Str(s) => self.value_str(s),
            // KQL's in~ compares strings (as pySigma's Kusto backend writes it).
            Val::Num(n) if self.d.target == Target::Kql => self.value_str(&SigmaStr::literal(n)),
            Val::Num(n) => n.clone(),
            _ => String::new(),
        }
    }

    fn as_in(&mut self, args: &[Cond], is_and: bool) -> Result<Out, ConvertError> {
        let d = self.d;
        let Some(Cond::Field(field, _)) = args.first() else {
            return Err(ConvertError::Invalid("empty value list".to_string()));
        };
        let quoted = self.quote_field(field);
        let op = if is_and { d.and_in_op } else { d.or_in_op };
        let values: Vec<&Val> = args
            .iter()
            .filter_map(|a| match a {
                Cond::Field(_, v) => Some(v),
                _ => None,
            })
            .collect();
        if d.target != Target::Kql {
            let list: Vec<String> = values.iter().map(|v| self.list_item(v)).collect();
            return Ok(Out::Text(fill(
                d.in_list,
                &[
                    ("field", &quoted),
                    ("op", op),
                    ("list", &list.join(d.list_separator)),
                ],
            )));
        }
        // Kusto: plain values go into `in~`/`has_all`, wildcard values become their own
        // startswith/endswith/contains tests joined with the same boolean operator.
        let joiner = if is_and { " and " } else { " or " };
        let plain: Vec<String> = values
            .iter()
            .filter(|v| match v {
                Val::Str(s) => !s.contains_special(),
                _ => true,
            })
            .map(|v| self.list_item(v))
            .collect();
        let mut exprs = Vec::new();
        if !plain.is_empty() {
            exprs.push(fill(
                d.in_list,
                &[
                    ("field", &quoted),
                    ("op", op),
                    ("list", &plain.join(d.list_separator)),
                ],
            ));
        }
        for v in values {
            let Val::Str(s) = v else { continue };
            if !s.contains_special() {
                continue;
            }
            let inner = s.trimmed(true, true);
            let inner_special = s.parts.len() > 2 && inner.contains_special();
            if inner_special {
                let parts: Vec<String> = s
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Lit(l) => Some(fill(
                            d.contains.unwrap_or_default(),
                            &[
                                ("field", &quoted),
                                ("value", &self.value_str(&SigmaStr::parse(l))),
                            ],
                        )),
                        _ => None,
                    })
                    .collect();
                exprs.push(format!("({})", parts.join(" and ")));
            } else {
                exprs.push(self.str_eq(field, s));
            }
        }
        Ok(Out::Text(exprs.join(joiner)))
    }

    /// pySigma `convert_condition_field_eq_val_str`.
    fn str_eq(&self, field: &str, s: &SigmaStr) -> String {
        let d = self.d;
        let (template, value) = if let Some(t) = d
            .startswith
            .filter(|_| s.ends_with_many() && !s.trimmed(false, true).contains_special())
        {
            (t, s.trimmed(false, true))
        } else if let Some(t) = d
            .endswith
            .filter(|_| s.starts_with_many() && !s.trimmed(true, false).contains_special())
        {
            (t, s.trimmed(true, false))
        } else if let Some(t) = d.contains.filter(|_| {
            s.starts_with_many() && s.ends_with_many() && !s.trimmed(true, true).contains_special()
        }) {
            (t, s.trimmed(true, true))
        } else if let Some(t) = d.wildcard_match.filter(|_| s.contains_special()) {
            (t, s.clone())
        } else {
            ("{field}{eq}{value}", s.clone())
        };
        let regex = self.regex(&Regex {
            pattern: value.to_regex(),
            flags: Vec::new(),
        });
        fill(
            template,
            &[
                ("field", &self.quote_field(field)),
                ("eq", d.eq_token),
                ("value", &self.value_str(&value)),
                ("regex", &regex),
            ],
        )
    }

    /// `cased` (differs from pySigma, whose four backends refuse it): Splunk's `CASE()`, KQL's
    /// `_cs` operators; Lucene and ES|QL already compare keyword fields case-sensitively.
    fn cased_eq(&self, field: &str, s: &SigmaStr) -> String {
        let d = self.d;
        let f = self.quote_field(field);
        match d.target {
            Target::Splunk => format!("{f}=CASE({})", self.value_str(s)),
            Target::Lucene | Target::Esql => self.str_eq(field, s),
            Target::Kql => {
                let value = |v: &SigmaStr| self.value_str(v);
                if !s.contains_special() {
                    format!("{f} == {}", value(s))
                } else if s.ends_with_many() && !s.trimmed(false, true).contains_special() {
                    format!("{f} startswith_cs {}", value(&s.trimmed(false, true)))
                } else if s.starts_with_many() && !s.trimmed(true, false).contains_special() {
                    format!("{f} endswith_cs {}", value(&s.trimmed(true, false)))
                } else if s.starts_with_many()
                    && s.ends_with_many()
                    && !s.trimmed(true, true).contains_special()
                {
                    format!("{f} contains_cs {}", value(&s.trimmed(true, true)))
                } else {
                    let regex = self.regex(&Regex {
                        pattern: s.to_regex(),
                        flags: Vec::new(),
                    });
                    format!("{f} matches regex \"{regex}\"")
                }
            }
        }
    }

    fn field(&mut self, field: &str, val: &Val, in_or: bool) -> Result<Out, ConvertError> {
        let d = self.d;
        let f = self.quote_field(field);
        let text = match val {
            Val::Str(s) => self.str_eq(field, s),
            Val::Cased(s) => self.cased_eq(field, s),
            Val::Num(n) => {
                let eq = if d.target == Target::Kql {
                    " == "
                } else {
                    d.eq_token
                };
                format!("{f}{eq}{n}")
            }
            Val::Bool(b) => format!("{f}{}{b}", d.eq_token),
            Val::Re(r) => {
                let regex = self.regex(r);
                if d.target == Target::Splunk && in_or {
                    let flag = self.splunk_or_regex(field, &regex);
                    return Ok(Out::Text(self.str_eq(&flag, &SigmaStr::literal("true"))));
                }
                if d.target == Target::Splunk {
                    return Ok(Out::Deferred(Deferred::Regex {
                        field: field.to_string(),
                        regex,
                        negated: false,
                    }));
                }
                fill(d.re_expression, &[("field", &f), ("regex", &regex)])
            }
            Val::Cidr(net) => {
                let value = net.to_string();
                let network = net.network().to_string();
                let prefix = net.prefix_len().to_string();
                // pySigma puts the field unquoted into CIDR templates.
                let mut text = fill(
                    d.cidr,
                    &[
                        ("field", field),
                        ("value", &value),
                        ("network", &network),
                        ("prefixlen", &prefix),
                    ],
                );
                if d.target == Target::Lucene && value.contains(':') {
                    // Escape the IPv6 colons, not the field's.
                    let (head, tail) = text.split_at(field.len() + 1);
                    text = format!("{head}{}", tail.replace(':', "\\:"));
                }
                if d.target == Target::Kql && net.addr().is_ipv6() {
                    text = fill(
                        "ipv6_is_in_range({field}, \"{value}\")",
                        &[("field", field), ("value", &value)],
                    );
                }
                text
            }
            Val::Compare(op, n) => {
                let operator = match op {
                    CompareOp::Lt => "<",
                    CompareOp::Lte => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Gte => ">=",
                };
                fill(
                    d.compare,
                    &[("field", &f), ("operator", operator), ("value", n)],
                )
            }
            Val::Null => fill(d.null, &[("field", &f)]),
            Val::Exists(true) => fill(d.exists, &[("field", &f)]),
            Val::Exists(false) => fill(d.not_exists, &[("field", &f)]),
            Val::Expansion(values) => {
                let args: Vec<Cond> = values
                    .iter()
                    .map(|v| Cond::Field(field.to_string(), v.clone()))
                    .collect();
                if d.target == Target::Lucene && self.as_in_applies(&args, false) {
                    return self.as_in(&args, false);
                }
                let mut parts = Vec::new();
                for arg in &args {
                    match self.convert(arg, true)? {
                        Out::Text(t) => parts.push(t),
                        Out::Deferred(def) => self.defer(def, true)?,
                    }
                }
                parts.join(&format!(" {} ", d.or_token))
            }
            Val::FieldRef {
                field: other,
                starts_with,
                ends_with,
            } => {
                if *starts_with || *ends_with {
                    return Err(ConvertError::Unsupported(
                        "fieldref with contains/startswith/endswith".to_string(),
                    ));
                }
                match d.target {
                    Target::Splunk => {
                        return Ok(Out::Deferred(Deferred::FieldRef {
                            field1: field.to_string(),
                            field2: other.clone(),
                            negated: false,
                        }));
                    }
                    Target::Lucene => {
                        return Err(ConvertError::Unsupported(
                            "Lucene queries cannot compare two fields (fieldref)".to_string(),
                        ));
                    }
                    Target::Esql => format!("{f}=={}", self.quote_field(other)),
                    Target::Kql => format!("{f} == {}", self.quote_field(other)),
                }
            }
        };
        Ok(Out::Text(text))
    }

    fn keyword(&mut self, val: &Val) -> Result<String, ConvertError> {
        let d = self.d;
        let none = || {
            ConvertError::Unsupported(format!(
                "keyword searches (values without a field) have no {} equivalent",
                d.target
            ))
        };
        match val {
            Val::Str(s) => {
                let template = d.keyword_str.ok_or_else(none)?;
                let value = if d.target == Target::Lucene {
                    // Lucene writes keywords unquoted even when they contain spaces.
                    let escaped = format!("{}{}", d.str_quote, d.add_escaped);
                    s.render(d.escape_char, d.wildcard_multi, d.wildcard_single, &escaped)
                } else {
                    self.value_str(s)
                };
                Ok(fill(template, &[("value", &value)]))
            }
            Val::Num(n) => Ok(fill(d.keyword_num.ok_or_else(none)?, &[("value", n)])),
            Val::Re(r) => {
                let regex = self.regex(r);
                let value = if d.target == Target::Kql {
                    format!("\"{regex}\"")
                } else {
                    regex
                };
                Ok(fill(d.keyword_re.ok_or_else(none)?, &[("value", &value)]))
            }
            Val::Expansion(values) => {
                let mut parts = Vec::new();
                for v in values {
                    parts.push(self.keyword(v)?);
                }
                Ok(parts.join(&format!(" {} ", d.or_token)))
            }
            Val::Cased(_) => Err(ConvertError::Unsupported(
                "case-sensitive keyword searches".to_string(),
            )),
            other => Err(ConvertError::Invalid(format!(
                "value {other:?} cannot be searched without a field"
            ))),
        }
    }
}

/// Length of a leading Splunk `field="value"` or `field=value` term (with trailing spaces), as
/// pySigma's `([\w.]+)(?:="[^"]*"|=[^\s")]+)\s*`.
fn leading_term(text: &str) -> Option<usize> {
    let name_len = text
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(text.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let rest = text[name_len..].strip_prefix('=')?;
    let value_len = if let Some(quoted) = rest.strip_prefix('"') {
        quoted.find('"')? + 2
    } else {
        let n = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || *c == '"' || *c == ')')
            .map_or(rest.len(), |(i, _)| i);
        if n == 0 {
            return None;
        }
        n
    };
    let end = name_len + 1 + value_len;
    let spaces = text[end..].len() - text[end..].trim_start().len();
    Some(end + spaces)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn has_space(s: &SigmaStr) -> bool {
    s.parts
        .iter()
        .any(|p| matches!(p, Part::Lit(l) if l.contains(' ')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_substitutes_once() {
        assert_eq!(
            fill("{field}:{value}", &[("field", "{value}"), ("value", "x")]),
            "{value}:x"
        );
        assert_eq!(fill("{unknown} {a}", &[("a", "1")]), "{unknown} 1");
    }

    #[test]
    fn regex_escaping_per_target() {
        let r = Regex {
            pattern: r#"a/"\d"#.into(),
            flags: vec!['s', 'i'],
        };
        let lucene = Dialect::of(Target::Lucene);
        let esql = Dialect::of(Target::Esql);
        assert_eq!(Renderer::new(&lucene).regex(&r), r#"(?is)a\/"\d"#);
        assert_eq!(Renderer::new(&esql).regex(&r), r#"(?is)a/\"\\d"#);
    }
}
