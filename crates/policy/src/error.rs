//! Configuration errors: everything that is wrong with a policy is found when it is compiled, so a
//! bad rule stops a (re)load with a message naming the rule instead of failing requests later.

/// A rule or path template that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A CEL expression does not compile. `index` is its position in the route's `cel` list, so
    /// the gateway can point at the file line; `message` is the parser's own text.
    #[error("cel[{index}]: {message}")]
    Cel { index: usize, message: String },
    /// Any other rule is malformed; `rule` names it as decisions do (`roles`, `claims[2]`, ...).
    #[error("{rule}: {message}")]
    Rule { rule: String, message: String },
    /// A path template is malformed.
    #[error("path template {template:?}: {message}")]
    Template { template: String, message: String },
}

impl PolicyError {
    pub(crate) fn rule(rule: impl Into<String>, message: impl Into<String>) -> Self {
        PolicyError::Rule {
            rule: rule.into(),
            message: message.into(),
        }
    }
}
