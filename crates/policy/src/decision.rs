//! The outcome of authorizing one request, and the `WWW-Authenticate` challenges the gateway
//! sends with it (RFC 6750 `insufficient_scope`, RFC 9470 `insufficient_user_authentication`).

use std::fmt::Write as _;

/// What the gateway should do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Every rule passed.
    Allow,
    /// A rule failed.
    Deny {
        /// 403, or 404 for an ownership rule that hides the object's existence.
        status: u16,
        /// The failing rule: `scopes_all`, `scopes_any`, `roles`, `claims[i]`, `ownership[i]`,
        /// `cel[i]`.
        rule: String,
        /// Event reason: `insufficient_scope`, `forbidden`, `not_owner` or `cel_error`.
        reason: &'static str,
        /// For `insufficient_scope` only: the space-separated scopes the route asks for, for the
        /// RFC 6750 `scope` attribute.
        scope: Option<String>,
    },
    /// The caller is who they say, but authenticated too weakly or too long ago: answer 401 with
    /// [`StepUp::rfc9470_challenge`] so the client re-authenticates.
    StepUp(StepUp),
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The HTTP status to answer with, `None` for [`Decision::Allow`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Decision::Allow => None,
            Decision::Deny { status, .. } => Some(*status),
            Decision::StepUp(_) => Some(StepUp::STATUS),
        }
    }

    /// The event reason, `None` for [`Decision::Allow`].
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Decision::Allow => None,
            Decision::Deny { reason, .. } => Some(reason),
            Decision::StepUp(_) => Some(StepUp::ERROR),
        }
    }

    /// The `WWW-Authenticate` value to send, if this decision has one: the RFC 6750
    /// `insufficient_scope` challenge for a scope denial, the RFC 9470 one for a step-up.
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            Decision::Deny {
                scope: Some(scope), ..
            } => {
                let mut out = String::from("Bearer error=\"insufficient_scope\", scope=");
                push_quoted(&mut out, scope);
                Some(out)
            }
            Decision::StepUp(step_up) => Some(step_up.rfc9470_challenge()),
            Decision::Allow | Decision::Deny { scope: None, .. } => None,
        }
    }
}

/// A step-up authentication requirement (RFC 9470).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    /// The route's `acr_any`, space-separated; empty when the route sets none.
    pub acr_values: String,
    /// The route's `max_age` in seconds.
    pub max_age: Option<u64>,
    /// Which check failed, for events and the error description: `amr`, `acr` or `max_age`.
    pub failed: &'static str,
}

impl StepUp {
    /// The status a step-up is answered with.
    pub const STATUS: u16 = 401;
    /// The RFC 9470 error code.
    pub const ERROR: &'static str = "insufficient_user_authentication";

    /// The `WWW-Authenticate` header value, e.g.
    /// `Bearer error="insufficient_user_authentication", error_description="A different
    /// authentication level is required", acr_values="urn:mace:incommon:iap:silver",
    /// max_age="300"`.
    ///
    /// Every requirement of the route is sent, not just the one that failed, because the fresh
    /// authentication the client obtains must satisfy all of them at once. `max_age` is quoted
    /// as in RFC 9470's examples; both forms are valid auth-param syntax (RFC 9110 §11.2).
    pub fn rfc9470_challenge(&self) -> String {
        let description = match self.failed {
            "max_age" => "More recent authentication is required",
            "amr" => "Multi-factor authentication is required",
            _ => "A different authentication level is required",
        };
        let mut out = String::with_capacity(128);
        out.push_str("Bearer error=\"");
        out.push_str(Self::ERROR);
        out.push_str("\", error_description=");
        push_quoted(&mut out, description);
        if !self.acr_values.is_empty() {
            out.push_str(", acr_values=");
            push_quoted(&mut out, &self.acr_values);
        }
        if let Some(max_age) = self.max_age {
            // Writing to a String cannot fail.
            let _ = write!(out, ", max_age=\"{max_age}\"");
        }
        out
    }
}

/// Appends `value` as an RFC 9110 quoted-string: `"` and `\` are backslash-escaped, and control
/// characters, which a quoted-string cannot carry even escaped, are dropped so no value can end
/// the header line. Config validation already refuses such values; this is the second fence.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_and_drops_controls() {
        let mut s = String::new();
        push_quoted(&mut s, "a\"b\\c\r\nd\te");
        assert_eq!(s, r#""a\"b\\cde""#);
    }

    #[test]
    fn challenge_forms() {
        let both = StepUp {
            acr_values: "gold silver".to_owned(),
            max_age: Some(300),
            failed: "acr",
        };
        assert_eq!(
            both.rfc9470_challenge(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"A different authentication level is required\", \
             acr_values=\"gold silver\", max_age=\"300\""
        );
        let age_only = StepUp {
            acr_values: String::new(),
            max_age: Some(5),
            failed: "max_age",
        };
        assert_eq!(
            age_only.rfc9470_challenge(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"More recent authentication is required\", max_age=\"5\""
        );
        let odd = StepUp {
            acr_values: "a\"b".to_owned(),
            max_age: None,
            failed: "amr",
        };
        assert_eq!(
            odd.rfc9470_challenge(),
            "Bearer error=\"insufficient_user_authentication\", \
             error_description=\"Multi-factor authentication is required\", acr_values=\"a\\\"b\""
        );
    }

    #[test]
    fn decision_accessors() {
        assert!(Decision::Allow.is_allow());
        assert_eq!(Decision::Allow.status(), None);
        assert_eq!(Decision::Allow.www_authenticate(), None);
        let deny = Decision::Deny {
            status: 403,
            rule: "scopes_all".to_owned(),
            reason: "insufficient_scope",
            scope: Some("read write".to_owned()),
        };
        assert_eq!(deny.status(), Some(403));
        assert_eq!(deny.reason(), Some("insufficient_scope"));
        assert_eq!(
            deny.www_authenticate().unwrap(),
            "Bearer error=\"insufficient_scope\", scope=\"read write\""
        );
        let step = Decision::StepUp(StepUp {
            acr_values: String::new(),
            max_age: None,
            failed: "amr",
        });
        assert_eq!(step.status(), Some(401));
        assert_eq!(step.reason(), Some("insufficient_user_authentication"));
    }
}
