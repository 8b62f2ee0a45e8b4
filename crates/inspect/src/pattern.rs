//! Pattern preparation shared by both engines.
//!
//! The detectors are written with the usual `\b`, `\w`, `\s`, `\d` escapes. In the `regex`
//! crate these are Unicode-aware, and a Unicode word boundary makes the fast lazy DFA give
//! up on any non-ASCII input (names like "Siobhán" are common), falling back to the much
//! slower PikeVM. Every payload and secret we look for is ASCII, so the escapes are
//! rewritten to their ASCII forms before compiling; non-ASCII text still matches `.` and
//! negated classes.

/// Rewrites `\b \B \w \W \s \S \d \D` to ASCII-only equivalents, leaving other escapes
/// (including an escaped backslash followed by a letter) untouched.
pub(crate) fn ascii_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            out.push('\\');
            break;
        };
        match next {
            'b' => out.push_str(r"(?-u:\b)"),
            'B' => out.push_str(r"(?-u:\B)"),
            'w' => out.push_str("[0-9A-Za-z_]"),
            'W' => out.push_str("[^0-9A-Za-z_]"),
            's' => out.push_str(r"[\t\n\x0B\x0C\r ]"),
            'S' => out.push_str(r"[^\t\n\x0B\x0C\r ]"),
            'd' => out.push_str("[0-9]"),
            'D' => out.push_str("[^0-9]"),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ascii_escapes;

    #[test]
    fn rewrites_shorthand_classes_but_not_escaped_backslashes() {
        assert_eq!(
            ascii_escapes(r"\bx\s*\\w"),
            r"(?-u:\b)x[\t\n\x0B\x0C\r ]*\\w"
        );
        assert_eq!(ascii_escapes(r"[\w.-]"), "[[0-9A-Za-z_].-]");
        let re = regex::Regex::new(&ascii_escapes(r"\bon\w+\s*=")).unwrap();
        assert!(re.is_match("é onload ="));
        assert!(!re.is_match("xonload="));
    }
}
