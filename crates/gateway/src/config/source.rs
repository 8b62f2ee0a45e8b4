//! Where things are in the config file: a map from field path (`routes[2].upstream`) to
//! line and column, and the error type that carries both.
//!
//! serde-saphyr reports positions for syntax and type errors, but validation happens after
//! deserialization, on plain values. So the file is read a second time into a tree of
//! `Spanned` nodes and flattened into a path → position map; every validation error names a
//! path and takes its position from here.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// One problem in the config, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    /// Dotted field path, for example `routes[0].request.max_body`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            if self.field.is_empty() {
                "(file)"
            } else {
                &self.field
            },
            self.message
        )
    }
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Field path → (line, column), 1-based.
#[derive(Debug, Default)]
pub struct SourceMap {
    file: PathBuf,
    positions: HashMap<String, (u64, u64)>,
}

impl SourceMap {
    /// Index `text`; a file that does not parse yields an empty map (the deserializer will
    /// already have reported the syntax error with its own position).
    pub fn build(file: &Path, text: &str) -> Self {
        let mut positions = HashMap::new();
        if let Ok(root) = serde_saphyr::from_str::<Spanned<Node>>(text) {
            index(&root, String::new(), &mut positions);
        }
        SourceMap {
            file: file.to_path_buf(),
            positions,
        }
    }

    /// An error at `field`, positioned at the field itself or, when the field is absent (a
    /// required value left out), at its nearest present parent.
    pub fn error(&self, field: &str, message: impl Into<String>) -> ConfigError {
        let mut probe = field.to_string();
        let (line, column) = loop {
            if let Some(pos) = self.positions.get(&probe) {
                break *pos;
            }
            match parent(&probe) {
                Some(p) => probe = p,
                None => break (1, 1),
            }
        };
        ConfigError {
            file: self.file.clone(),
            line,
            column,
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
fn parent(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(path[..cut].to_string())
}

fn index(node: &Spanned<Node>, path: String, out: &mut HashMap<String, (u64, u64)>) {
    out.insert(
        path.clone(),
        (node.referenced.line(), node.referenced.column()),
    );
    match &node.value {
        Node::Map(entries) => {
            for (key, value) in entries {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                index(value, child, out);
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                index(item, format!("{path}[{i}]"), out);
            }
        }
        Node::Leaf => {}
    }
}

/// A YAML node with positions on every child; scalar values themselves are not kept.
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<KeyText>()? {
            entries.push((key.0, map.next_value::<Spanned<Node>>()?));
        }
        Ok(Node::Map(entries))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Node, D::Error> {
        de.deserialize_any(NodeVisitor)
    }
}

/// A mapping key of any scalar type, as text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
        }
        de.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_fields() {
        let text = "listeners:\n  - address: 127.0.0.1:80\n    tls: self_signed\nroutes:\n  - name: a\n    upstream: x\n";
        let map = SourceMap::build(Path::new("c.yaml"), text);
        let e = map.error("routes[0].upstream", "nope");
        assert_eq!((e.line, e.column), (6, 15));
        let e = map.error("listeners[0].tls", "nope");
        assert_eq!(e.line, 3);
        // Absent field: falls back to its parent.
        let e = map.error("routes[0].cors.allow_origins", "missing");
        assert_eq!(e.line, 5);
        assert_eq!(
            e.to_string(),
            "c.yaml:5:5: routes[0].cors.allow_origins: missing"
        );
    }
}
