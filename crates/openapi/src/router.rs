//! Operation matching: server base paths, then a segment trie of path templates.
//!
//! The raw request path is split on `/` first and each segment is percent-decoded once afterwards,
//! so `%2F` stays inside its segment (and inside a parameter's value) and can never create a new
//! segment; `%252F` decodes to the text `%2F`, never further. At every level a literal segment is
//! tried before a parameter (`/users/me` beats `/users/{id}`), backtracking when the literal
//! branch leads nowhere. Trailing slashes are exact: `/items/` is not `/items`.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::fasthash::FnvMap;

/// One piece of a segment template such as `{name}.{ext}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Piece {
    Literal(Vec<u8>),
    Param,
}

/// A node of the trie: children by literal segment, by whole-segment parameter, by mixed template.
#[derive(Debug, Default)]
struct TrieNode {
    literal: FnvMap<Box<[u8]>, usize>,
    param: Option<usize>,
    mixed: Vec<(Vec<Piece>, usize)>,
    /// The path (index into the spec's path list) ending here.
    endpoint: Option<usize>,
}

/// The compiled path table.
#[derive(Debug, Default)]
pub(crate) struct Router {
    nodes: Vec<TrieNode>,
    /// Server base paths, without trailing `/` ("" when the API sits at the root).
    prefixes: Vec<String>,
}

/// Splits a template segment into literal and parameter pieces; `None` if it has no parameter.
fn template_pieces(segment: &str) -> Option<(Vec<Piece>, Vec<String>)> {
    if !segment.contains('{') {
        return None;
    }
    let mut pieces = Vec::new();
    let mut names = Vec::new();
    let mut rest = segment;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest.as_bytes()[..open].to_vec()));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        names.push(after[..close].to_owned());
        pieces.push(Piece::Param);
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.as_bytes().to_vec()));
    }
    Some((pieces, names))
}

/// Normalises a server URL to its base path: scheme and host dropped, variables given their
/// defaults by the caller, no trailing `/`.
pub(crate) fn server_prefix(url: &str) -> String {
    let path = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("", |j| &after[j..])
        }
        None if url.starts_with("//") => {
            let after = &url[2..];
            after.find('/').map_or("", |j| &after[j..])
        }
        None => url,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

impl Router {
    pub(crate) fn new(mut prefixes: Vec<String>) -> Router {
        if prefixes.is_empty() {
            prefixes.push(String::new());
        }
        // Longest first so that `/v1/admin` is stripped before `/v1`.
        prefixes.sort_by_key(|p| std::cmp::Reverse(p.len()));
        prefixes.dedup();
        Router {
            nodes: vec![TrieNode::default()],
            prefixes,
        }
    }

    /// Inserts a path template; returns the parameter names in order of appearance.
    pub(crate) fn insert(
        &mut self,
        template: &str,
        path_index: usize,
    ) -> Result<Vec<String>, String> {
        let Some(rest) = template.strip_prefix('/') else {
            return Err("a path must start with `/`".into());
        };
        let mut node = 0;
        let mut names = Vec::new();
        for segment in rest.split('/') {
            node = match template_pieces(segment) {
                None => {
                    let key: Box<[u8]> = segment.as_bytes().into();
                    match self.nodes[node].literal.get(&key) {
                        Some(&n) => n,
                        None => {
                            let n = self.push();
                            self.nodes[node].literal.insert(key, n);
                            n
                        }
                    }
                }
                Some((pieces, seg_names)) => {
                    names.extend(seg_names);
                    if pieces.len() == 1 {
                        match self.nodes[node].param {
                            Some(n) => n,
                            None => {
                                let n = self.push();
                                self.nodes[node].param = Some(n);
                                n
                            }
                        }
                    } else if let Some(&(_, n)) =
                        self.nodes[node].mixed.iter().find(|(p, _)| *p == pieces)
                    {
                        n
                    } else {
                        let n = self.push();
                        self.nodes[node].mixed.push((pieces, n));
                        n
                    }
                }
            };
        }
        if self.nodes[node].endpoint.is_some() {
            return Err("another path template has the same shape".into());
        }
        self.nodes[node].endpoint = Some(path_index);
        Ok(names)
    }

    fn push(&mut self) -> usize {
        self.nodes.push(TrieNode::default());
        self.nodes.len() - 1
    }

    /// Finds the path for `raw_path`: the first (in precedence order) for which `accept` is true,
    /// else the first found at all (for 405). Parameter values are pushed to `params`.
    /// Values are pushed with an empty name, which the caller fills from the matched path: the
    /// vector is the only allocation of a match (besides the decoded values themselves).
    pub(crate) fn find(
        &self,
        raw_path: &str,
        accept: &dyn Fn(usize) -> bool,
        params: &mut Vec<(&str, String)>,
    ) -> Found {
        let mut fallback = None;
        for prefix in &self.prefixes {
            let Some(rest) = raw_path.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('/') else {
                continue;
            };
            params.clear();
            if let Some(p) = self.walk(0, rest, accept, params, &mut fallback) {
                return Found::Accepted(p);
            }
        }
        params.clear();
        match fallback {
            Some(p) => Found::Rejected(p),
            None => Found::None,
        }
    }

    fn walk<'a>(
        &self,
        node: usize,
        rest: &str,
        accept: &dyn Fn(usize) -> bool,
        params: &mut Vec<(&'a str, String)>,
        fallback: &mut Option<usize>,
    ) -> Option<usize> {
        let (segment, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let decoded: Cow<'_, [u8]> = percent_decode_str(segment).into();
        let here = &self.nodes[node];
        let mut next = |child: usize, params: &mut Vec<(&'a str, String)>| -> Option<usize> {
            match tail {
                Some(t) => self.walk(child, t, accept, params, fallback),
                None => {
                    let p = self.nodes[child].endpoint?;
                    if accept(p) {
                        Some(p)
                    } else {
                        fallback.get_or_insert(p);
                        None
                    }
                }
            }
        };
        if let Some(&child) = here.literal.get(decoded.as_ref())
            && let Some(p) = next(child, params)
        {
            return Some(p);
        }
        if decoded.is_empty() {
            return None;
        }
        for (pieces, child) in &here.mixed {
            let depth = params.len();
            if match_pieces(pieces, &decoded, params)
                && let Some(p) = next(*child, params)
            {
                return Some(p);
            }
            params.truncate(depth);
        }
        if let Some(child) = here.param {
            params.push(("", String::from_utf8_lossy(&decoded).into_owned()));
            if let Some(p) = next(child, params) {
                return Some(p);
            }
            params.pop();
        }
        None
    }
}

/// Matches a decoded segment against a mixed template (`{name}.{ext}`), pushing the values.
/// Each parameter takes the shortest non-empty text up to the next literal (the last one takes the rest).
fn match_pieces(pieces: &[Piece], segment: &[u8], params: &mut Vec<(&str, String)>) -> bool {
    let mut pos = 0;
    let mut i = 0;
    while i < pieces.len() {
        match &pieces[i] {
            Piece::Literal(lit) => {
                if !segment[pos..].starts_with(lit) {
                    return false;
                }
                pos += lit.len();
            }
            Piece::Param => {
                let end = match pieces.get(i + 1) {
                    Some(Piece::Literal(lit)) => {
                        let hay = &segment[pos..];
                        let found = (1..=hay.len().saturating_sub(lit.len()))
                            .find(|&k| hay[k..].starts_with(lit));
                        match found {
                            Some(k) => pos + k,
                            None => return false,
                        }
                    }
                    _ => segment.len(),
                };
                if end <= pos {
                    return false;
                }
                params.push(("", String::from_utf8_lossy(&segment[pos..end]).into_owned()));
                pos = end;
            }
        }
        i += 1;
    }
    pos == segment.len()
}

/// The outcome of [`Router::find`].
pub(crate) enum Found {
    Accepted(usize),
    Rejected(usize),
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_prefixes() {
        assert_eq!(server_prefix("https://api.example.com/v1/"), "/v1");
        assert_eq!(server_prefix("https://api.example.com"), "");
        assert_eq!(server_prefix("/v2"), "/v2");
        assert_eq!(server_prefix("v3"), "/v3");
    }

    #[test]
    fn mixed_segments() {
        let mut p = Vec::new();
        let (pieces, _) = template_pieces("{name}.{ext}").unwrap();
        assert!(match_pieces(&pieces, b"report.final.pdf", &mut p));
        assert_eq!(
            p,
            vec![("", "report".to_owned()), ("", "final.pdf".to_owned())]
        );
    }
}
