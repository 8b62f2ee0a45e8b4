//! Violations: what a request did wrong, in a form safe to log and to send back to the client.
//!
//! A violation names the place (a JSON pointer such as `/query/limit` or `/body/items/0/qty`), the
//! keyword broken and a message. The message is built only from the schema (limits, formats,
//! patterns), never from the request, so an attacker's payload is never echoed back.

use jsonschema::ValidationError;
use jsonschema::error::{TypeKind, ValidationErrorKind};

use crate::error::join_pointer;

/// One way in which a request breaks the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer of the failing location: `/path/id`, `/query/limit`, `/header/x-trace`,
    /// `/cookie/session`, `/body`, `/body/items/0/qty`.
    pub pointer: String,
    /// The keyword broken: `type`, `required`, `minimum`, `pattern`, `enum`, `format`,
    /// `additionalProperties`, `unknown_parameter`, `content_type`, `maxLength`, ...
    pub rule: String,
    /// Human-readable explanation; never contains the offending value.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(pointer: impl Into<String>, rule: &str, message: impl Into<String>) -> Self {
        Violation {
            pointer: pointer.into(),
            rule: rule.to_owned(),
            message: message.into(),
        }
    }
}

/// Converts the validator's errors for a value found at `base` into violations.
pub(crate) fn from_schema_errors<'a>(
    base: &str,
    errors: impl Iterator<Item = ValidationError<'a>>,
    out: &mut Vec<Violation>,
) {
    for error in errors {
        let at = format!("{base}{}", error.instance_path().as_str());
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                for name in unexpected {
                    out.push(Violation::new(
                        join_pointer(&at, name),
                        "additionalProperties",
                        "property not declared by the schema",
                    ));
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(Violation::new(
                    join_pointer(&at, name),
                    "required",
                    "required property is missing",
                ));
            }
            kind => out.push(Violation::new(at, kind.keyword(), message_of(kind))),
        }
    }
}

/// A message for one error kind, from schema facts only.
fn message_of(kind: &ValidationErrorKind) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Type {
            kind: TypeKind::Single(t),
        } => format!("value is not of type {t}"),
        K::Type {
            kind: TypeKind::Multiple(_),
        } => "value is not of an allowed type".into(),
        K::Minimum { limit } => format!("value is less than the minimum of {limit}"),
        K::Maximum { limit } => format!("value is greater than the maximum of {limit}"),
        K::ExclusiveMinimum { limit } => format!("value must be greater than {limit}"),
        K::ExclusiveMaximum { limit } => format!("value must be less than {limit}"),
        K::MinLength { limit } => format!("value is shorter than {limit} characters"),
        K::MaxLength { limit } => format!("value is longer than {limit} characters"),
        K::MinItems { limit } => format!("fewer than {limit} items"),
        K::MaxItems { limit } => format!("more than {limit} items"),
        K::MinProperties { limit } => format!("fewer than {limit} properties"),
        K::MaxProperties { limit } => format!("more than {limit} properties"),
        K::Pattern { pattern } => format!("value does not match the pattern {pattern}"),
        K::Format { format } => format!("value is not a valid {format}"),
        K::Enum { .. } => "value is not one of the allowed values".into(),
        K::Constant { .. } => "value is not the required constant".into(),
        K::MultipleOf { .. } => "value is not a multiple of the required step".into(),
        K::UniqueItems => "items are not unique".into(),
        K::AnyOf { .. } | K::OneOfNotValid { .. } => {
            "value matches none of the allowed alternatives".into()
        }
        K::OneOfMultipleValid { .. } => "value matches more than one exclusive alternative".into(),
        K::Not { .. } => "value matches a forbidden schema".into(),
        K::FalseSchema => "no value is allowed here".into(),
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } => {
            "pattern could not be evaluated".into()
        }
        other => format!("value breaks `{}`", other.keyword()),
    }
}
