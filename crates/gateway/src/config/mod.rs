//! Configuration: one YAML file → raw structs (unknown fields refused) → validated model.
//!
//! Every error names file, line, column and field path (see `source.rs`). The request path
//! never reads these types directly; `crate::snapshot` compiles them into lookup structures.

pub mod contract;
pub mod detection;
pub mod model;
pub mod raw;
pub mod source;
pub mod units;

use std::path::Path;

pub use contract::{
    DataProtectionPolicy, Enforcement, InspectPolicy, OpenApiPolicy, ResponseContract,
};
pub use detection::{BlockSubject, DetectionConfig, DetectionResponse, Webhook};
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
    // Fix: a file holding only comments (or blank lines) used to pass this check and then be
    // reported as "at least one listener is required"; it is as empty as a zero-byte file.
    let only_comments = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#')
    });
    if only_comments {
        let mut e = map.error("", "the config file is empty");
        (e.line, e.column) = (1, 1);
        return Err(e);
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
        let message = first_line(&e.to_string());
        // Fix: for a missing required field serde-saphyr reports where the mapping ended (the
        // last key read), not the mapping that lacks the field; `field` names that mapping, so
        // take its position from the source map.
        let location = e
            .location()
            .filter(|_| !message.starts_with("missing field"))
            .map(|l| (l.line(), l.column()));
        let (line, column) = location.unwrap_or_else(|| {
            let at = map.error(&field, "");
            (at.line, at.column)
        });
        ConfigError {
            file: path.to_path_buf(),
            line,
            column,
            field,
            message,
        }
    })
}

/// serde-saphyr's messages may carry a rendered source snippet; the first line is the message.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    // Fix: that first line starts with `error: line N column M: `, which repeated the position
    // already given by `file:line:column:` in front of it. Keep only the message.
    line.strip_prefix("error: line ")
        .and_then(|rest| rest.split_once(": "))
        .filter(|(pos, _)| {
            pos.split_once(" column ")
                .is_some_and(|(l, c)| l.parse::<u64>().is_ok() && c.parse::<u64>().is_ok())
        })
        .map_or(line, |(_, message)| message.trim())
        .to_string()
}
