//! Configuration: one YAML file → raw structs (unknown fields refused) → validated model.
//!
//! Every error names file, line, column and field path (see `source.rs`). The request path
//! never reads these types directly; `crate::snapshot` compiles them into lookup structures.

pub mod model;
pub mod raw;
pub mod source;
pub mod units;

use std::path::Path;

pub use model::*;
pub use source::{ConfigError, ConfigErrors, SourceMap};

/// Read, parse and validate a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    parse(path, &text)
}

/// Parse and validate config text that came from `path` (used for messages and relative paths).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigErrors> {
    let map = SourceMap::build(path, text);
    let raw = deserialize(path, text, &map).map_err(|e| ConfigErrors(vec![e]))?;
    model::validate(raw, &map).map_err(ConfigErrors)
}

fn deserialize(path: &Path, text: &str, map: &SourceMap) -> Result<raw::RawConfig, ConfigError> {
    if text.trim().is_empty() {
        return Err(map.error("", "the config file is empty"));
    }
    let mut field = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, raw::RawConfig>(de).map_err(|e| {
            field = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let field = if field == "." { String::new() } else { field };
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or_else(|| {
                let at = map.error(&field, "");
                (at.line, at.column)
            });
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            field,
            message: first_line(&e.to_string()),
        }
    })
}

/// serde-saphyr's messages may carry a rendered source snippet; the first line is the message.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).trim().to_string()
}
