//! Field mapping: Sigma field names (the rule's taxonomy, e.g. `cs-uri-query`) to event paths
//! (e.g. `http_request.url.query_string`). Rules stay as the community writes them; the mapping
//! adapts them to the events at hand. A field without a mapping is used as an event path as it
//! is, so rules can address event fields directly (`unmapped.reason`).
//!
//! [`FieldMapping::web_to_ocsf`] maps Sigma's `webserver`/`proxy` taxonomy onto OCSF HTTP
//! Activity objects (what Portcullis emits). Some Sigma fields have no OCSF member of their
//! own: `cs-cookie` reads the `cookie` request header and `c-uri-extension` is derived from the
//! URL path ([`Derive::Extension`]).

use std::collections::HashMap;

use crate::event::FieldValue;

/// How a target's value is turned into the Sigma field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Derive {
    /// The value at the path, as is.
    Value,
    /// The file extension (without the dot) of the last segment of a path or URL string; absent
    /// when there is none.
    Extension,
}

/// Where a Sigma field is read from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FieldTarget {
    pub path: String,
    pub derive: Derive,
}

impl FieldTarget {
    pub fn path(path: impl Into<String>) -> Self {
        FieldTarget {
            path: path.into(),
            derive: Derive::Value,
        }
    }

    /// Applies the derivation to a value read at `self.path`.
    pub fn derive<'a>(&self, value: FieldValue<'a>) -> Option<FieldValue<'a>> {
        match self.derive {
            Derive::Value => Some(value),
            Derive::Extension => {
                let FieldValue::Str(text) = value else {
                    return None;
                };
                let path = text.split(['?', '#']).next().unwrap_or("");
                let last = path.rsplit('/').next().unwrap_or("");
                let (_, ext) = last.rsplit_once('.')?;
                if ext.is_empty() {
                    None
                } else {
                    Some(FieldValue::Str(std::borrow::Cow::Owned(ext.to_string())))
                }
            }
        }
    }
}

/// Sigma field name → event field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldMapping {
    fields: HashMap<String, FieldTarget>,
    /// Event field (path) holding the event's unique id, listed in correlation matches.
    pub event_id_field: String,
}

impl FieldMapping {
    /// No mappings: every Sigma field name is used as an event path.
    pub fn identity() -> Self {
        FieldMapping {
            fields: HashMap::new(),
            event_id_field: "metadata.uid".to_string(),
        }
    }

    /// Sigma web (`webserver`, `proxy`) fields onto OCSF HTTP Activity events.
    pub fn web_to_ocsf() -> Self {
        let mut m = FieldMapping::identity();
        // The fields the SIEM conversion maps too (`convert::OCSF_WEB`), plus those only the
        // live engine can read (ports, headers picked out of the header list).
        let engine_only: &[(&str, &str)] = &[
            ("c-uri-scheme", "http_request.url.scheme"),
            ("c-port", "src_endpoint.port"),
            ("src_port", "src_endpoint.port"),
            ("s-ip", "dst_endpoint.ip"),
            ("dst_ip", "dst_endpoint.ip"),
            ("s-port", "dst_endpoint.port"),
            ("dst_port", "dst_endpoint.port"),
            ("cs-username", "actor.user.name"),
            ("cs-cookie", "http_request.http_headers[name=cookie].value"),
            (
                "cs-content-type",
                "http_request.http_headers[name=content-type].value",
            ),
            ("sc-content-type", "http_response.content_type"),
        ];
        let plain = crate::convert::OCSF_WEB.iter().chain(engine_only);
        for (sigma, path) in plain {
            m.insert(*sigma, FieldTarget::path(*path));
        }
        for sigma in ["c-uri-extension", "cs-uri-extension"] {
            m.insert(
                sigma,
                FieldTarget {
                    path: "http_request.url.path".to_string(),
                    derive: Derive::Extension,
                },
            );
        }
        m
    }

    /// Adds or replaces a mapping.
    pub fn insert(&mut self, sigma_field: impl Into<String>, target: FieldTarget) {
        self.fields.insert(sigma_field.into(), target);
    }

    /// Builds a mapping from `(sigma field, event path)` pairs on top of `self`. A path written
    /// `ext(some.path)` derives the extension of the value at `some.path`.
    pub fn with_pairs<I, K, V>(mut self, pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: AsRef<str>,
    {
        for (k, v) in pairs {
            self.insert(k, parse_target(v.as_ref()));
        }
        self
    }

    /// Reads a mapping from YAML: a map of Sigma field → event path (`ext(path)` for the
    /// extension), applied on top of `self`. An optional `event_id_field` key sets
    /// [`FieldMapping::event_id_field`].
    pub fn from_yaml(self, text: &str) -> Result<Self, String> {
        let pairs: std::collections::BTreeMap<String, String> =
            serde_saphyr::from_str(text).map_err(|e| format!("field mapping: {e}"))?;
        let mut mapping = self;
        for (k, v) in pairs {
            if k == "event_id_field" {
                mapping.event_id_field = v;
            } else {
                mapping.insert(k, parse_target(&v));
            }
        }
        Ok(mapping)
    }

    /// The event field a Sigma field is read from.
    pub fn resolve(&self, sigma_field: &str) -> FieldTarget {
        self.fields
            .get(sigma_field)
            .cloned()
            .unwrap_or_else(|| FieldTarget::path(sigma_field))
    }
}

fn parse_target(text: &str) -> FieldTarget {
    match text.strip_prefix("ext(").and_then(|r| r.strip_suffix(')')) {
        Some(path) => FieldTarget {
            path: path.to_string(),
            derive: Derive::Extension,
        },
        None => FieldTarget::path(text),
    }
}
