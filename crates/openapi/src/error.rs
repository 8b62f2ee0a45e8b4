//! Errors of spec loading and the small locator that turns a JSON pointer into a line number.
//!
//! An operator who breaks the spec must be told where: the file, the line (best effort) and the
//! JSON pointer of the faulty element. The locator does not re-parse the document: it searches the
//! text for each key of the pointer in turn, which is good enough for JSON and for block YAML.

use std::fmt;
use std::path::{Path, PathBuf};

/// A spec that cannot be loaded or compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The file at fault (the root spec or a file reached through `$ref`).
    pub file: PathBuf,
    /// 1-based line of the faulty element, when it could be located.
    pub line: Option<usize>,
    /// JSON pointer of the faulty element inside `file` ("" for the whole document).
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, ": at {pointer}: {}", self.message)
    }
}

impl SpecError {
    /// An error at `pointer` of `file`, whose line is located in `text` when given.
    pub(crate) fn at(
        file: &Path,
        text: Option<&str>,
        pointer: &str,
        message: impl Into<String>,
    ) -> Self {
        SpecError {
            file: file.to_path_buf(),
            line: text.and_then(|t| locate_line(t, pointer)),
            pointer: pointer.to_owned(),
            message: message.into(),
        }
    }
}

/// Escapes one JSON pointer reference token (RFC 6901).
pub(crate) fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Appends `token` to `pointer`.
pub(crate) fn join_pointer(pointer: &str, token: &str) -> String {
    let mut out = String::with_capacity(pointer.len() + token.len() + 1);
    out.push_str(pointer);
    out.push('/');
    if token.contains(['~', '/']) {
        out.push_str(&escape_token(token));
    } else {
        out.push_str(token);
    }
    out
}

/// Splits a JSON pointer into its unescaped reference tokens.
pub(crate) fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// Finds the 1-based line of the last key of `pointer` in a JSON or YAML `text`, best effort.
///
/// Each key is searched after the position of the previous one, as `"key"` followed by `:` (JSON
/// or quoted YAML) or as `key:` at the start of a line (block YAML). Array indices are skipped:
/// they have no text of their own. Returns `None` when a key cannot be found.
pub(crate) fn locate_line(text: &str, pointer: &str) -> Option<usize> {
    let mut pos = 0usize;
    let mut found_any = false;
    for token in pointer_tokens(pointer) {
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        pos = find_key(text, pos, &token)?;
        found_any = true;
    }
    if !found_any {
        return if pointer.is_empty() { Some(1) } else { None };
    }
    Some(text[..pos].bytes().filter(|&b| b == b'\n').count() + 1)
}

/// Offset of the next occurrence of `key` used as a mapping key at or after `from`.
fn find_key(text: &str, from: usize, key: &str) -> Option<usize> {
    let candidates = [format!("\"{key}\""), format!("'{key}'"), key.to_owned()];
    let mut best: Option<usize> = None;
    for needle in &candidates {
        let mut start = from;
        while let Some(rel) = text.get(start..).and_then(|t| t.find(needle.as_str())) {
            let at = start + rel;
            let after = text[at + needle.len()..].trim_start_matches([' ', '\t']);
            let bare = !needle.starts_with(['"', '\'']);
            let before_ok = !bare
                || text[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|c| c == '\n' || c == ' ' || c == '\t' || c == '{' || c == ',');
            if after.starts_with(':') && before_ok {
                best = Some(best.map_or(at, |b: usize| b.min(at)));
                break;
            }
            start = at + needle.len().max(1);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_yaml_and_json_keys() {
        let yaml = "openapi: 3.0.3\npaths:\n  /items:\n    get:\n      responses: {}\n";
        assert_eq!(locate_line(yaml, "/paths/~1items/get"), Some(4));
        let json = "{\n \"paths\": {\n  \"/a\": {\n   \"get\": 1\n  }\n }\n}";
        assert_eq!(locate_line(json, "/paths/~1a/get"), Some(4));
        assert_eq!(locate_line(json, "/paths/~1b"), None);
    }

    #[test]
    fn display_names_file_line_and_pointer() {
        let e = SpecError {
            file: PathBuf::from("api.yaml"),
            line: Some(7),
            pointer: "/paths/~1items/get".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "api.yaml:7: at /paths/~1items/get: bad");
    }
}
