//! The `condition` language of Sigma detections: a small boolean grammar over search
//! identifiers (`and`, `or`, `not`, parentheses, `1 of X*`, `all of X*`, `1 of them`,
//! `all of them`), parsed into [`ast::Condition`] and checked against the identifiers a rule
//! defines.
//!
//! Precedence, least to most binding, per the specification: `or`, `and`, `not`, `x of`,
//! parentheses.

use crate::ast::Condition;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(at, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            tokens.push(Token::Open);
            chars.next();
        } else if c == ')' {
            tokens.push(Token::Close);
            chars.next();
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
            let mut word = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
                    word.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(word));
        } else if c == '|' {
            return Err(format!(
                "bad condition: '|' at column {} (aggregations in conditions are the obsolete \
                 Sigma 1 syntax; use a correlation rule)",
                at + 1
            ));
        } else {
            return Err(format!(
                "bad condition: unexpected character '{c}' at column {}",
                at + 1
            ));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

fn is_keyword(word: &str, keyword: &str) -> bool {
    word.eq_ignore_ascii_case(keyword)
}

impl Parser {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn or_expr(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.and_expr()?];
        while self.peek_word().is_some_and(|w| is_keyword(w, "or")) {
            self.pos += 1;
            parts.push(self.and_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn and_expr(&mut self) -> Result<Condition, String> {
        let mut parts = vec![self.not_expr()?];
        while self.peek_word().is_some_and(|w| is_keyword(w, "and")) {
            self.pos += 1;
            parts.push(self.not_expr()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn not_expr(&mut self) -> Result<Condition, String> {
        if self.peek_word().is_some_and(|w| is_keyword(w, "not")) {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not_expr()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, String> {
        match self.tokens.get(self.pos).cloned() {
            None => Err("bad condition: expression ends too early".to_string()),
            Some(Token::Close) => Err("bad condition: unexpected ')'".to_string()),
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or_expr()?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err("bad condition: missing ')'".to_string()),
                }
            }
            Some(Token::Word(word)) => {
                let quantifier = if word == "1" || is_keyword(&word, "any") {
                    Some(false)
                } else if is_keyword(&word, "all") {
                    Some(true)
                } else {
                    None
                };
                let followed_by_of = matches!(self.tokens.get(self.pos + 1),
                    Some(Token::Word(w)) if is_keyword(w, "of"));
                if let (Some(all), true) = (quantifier, followed_by_of) {
                    self.pos += 2;
                    let target = match self.tokens.get(self.pos) {
                        Some(Token::Word(w)) => w.clone(),
                        _ => {
                            return Err(format!(
                                "bad condition: '{word} of' needs 'them' or a search identifier pattern"
                            ));
                        }
                    };
                    self.pos += 1;
                    return Ok(match (all, is_keyword(&target, "them")) {
                        (false, true) => Condition::OneOfThem,
                        (true, true) => Condition::AllOfThem,
                        (false, false) => Condition::OneOf(target),
                        (true, false) => Condition::AllOf(target),
                    });
                }
                if ["and", "or", "not", "of", "them"]
                    .iter()
                    .any(|k| is_keyword(&word, k))
                {
                    return Err(format!("bad condition: unexpected '{word}'"));
                }
                if word.contains('*') {
                    return Err(format!(
                        "bad condition: wildcard identifier '{word}' must be used as '1 of {word}' or 'all of {word}'"
                    ));
                }
                self.pos += 1;
                Ok(Condition::Search(word))
            }
        }
    }
}

/// Parses a condition expression.
pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err("bad condition: empty".to_string());
    }
    let mut parser = Parser { tokens, pos: 0 };
    let condition = parser.or_expr()?;
    if let Some(rest) = parser.tokens.get(parser.pos) {
        let shown = match rest {
            Token::Open => "(".to_string(),
            Token::Close => ")".to_string(),
            Token::Word(w) => w.clone(),
        };
        return Err(format!(
            "bad condition: unexpected '{shown}' (missing 'and'/'or'?)"
        ));
    }
    Ok(condition)
}

/// Does a search identifier name match an `x of` pattern (`*` matches any run of characters)?
pub fn name_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The search identifiers an `x of` target selects, in definition order. `them` (pattern `None`)
/// selects every identifier not starting with `_`.
pub fn select_names<'a>(pattern: Option<&str>, names: &'a [String]) -> Vec<&'a str> {
    names
        .iter()
        .filter(|n| match pattern {
            None => !n.starts_with('_'),
            Some(p) => name_matches(p, n),
        })
        .map(String::as_str)
        .collect()
}

/// Checks that every identifier and pattern of `condition` refers to defined search identifiers.
pub fn check_references(condition: &Condition, names: &[String]) -> Result<(), String> {
    match condition {
        Condition::Search(name) => {
            if names.iter().any(|n| n == name) {
                Ok(())
            } else {
                Err(format!(
                    "undefined search identifier '{name}' in condition (defined: {})",
                    names.join(", ")
                ))
            }
        }
        Condition::And(parts) | Condition::Or(parts) => {
            parts.iter().try_for_each(|p| check_references(p, names))
        }
        Condition::Not(inner) => check_references(inner, names),
        Condition::OneOf(p) | Condition::AllOf(p) => {
            if select_names(Some(p), names).is_empty() {
                Err(format!(
                    "condition pattern '{p}' matches no search identifier"
                ))
            } else {
                Ok(())
            }
        }
        Condition::OneOfThem | Condition::AllOfThem => {
            if select_names(None, names).is_empty() {
                Err("'of them' but no search identifier is defined".to_string())
            } else {
                Ok(())
            }
        }
    }
}
