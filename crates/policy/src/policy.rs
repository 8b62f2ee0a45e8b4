//! A route's compiled authorization policy and its evaluation.
//!
//! Rules run in a fixed order, and the first failure decides:
//!
//! 1. **scopes** (`scopes_all`, then `scopes_any`), 2. **roles**, 3. **claims**: cheap set and
//!    equality checks on the identity alone, so most refusals cost nothing more.
//! 4. **mfa**: a step-up is answered before ownership, so a caller who owns the object but has
//!    not done MFA is told to re-authenticate (401 + RFC 9470 challenge) rather than getting a
//!    404 that a later, stronger login would have turned into a 200. It also keeps an owner
//!    check from being probed with a weak session.
//! 5. **ownership**: needs the path parameters; still cheap string comparisons.
//! 6. **cel**: the only stage that builds per-request values and runs an interpreter, so it runs
//!    last and only when everything cheaper has passed.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_identity::Identity;
use serde_json::Value;

use crate::cel_rules::CelRules;
use crate::claims::{ClaimPath, claim_strings, is_scalar, scalar_is};
use crate::config::{AuthzConfig, ClaimConfig, MfaConfig, OwnershipConfig, OwnershipMode};
use crate::{AuthzRequest, Decision, PathTemplate, PolicyError, StepUp};

/// An `auth_time` this far in the future is still accepted, for clocks that disagree a little
/// between the IdP and the gateway; further out it is not a credible login time.
const AUTH_TIME_SKEW_SECS: u64 = 60;

/// A compiled, immutable authorization policy; cheap to share across threads.
#[derive(Debug)]
pub struct AuthzPolicy {
    scopes_all: Option<ScopeRule>,
    scopes_any: Option<ScopeRule>,
    roles: Option<RolesRule>,
    claims: Vec<ClaimRule>,
    mfa: Option<MfaRule>,
    ownership: Vec<OwnershipRule>,
    cel: CelRules,
}

#[derive(Debug)]
struct ScopeRule {
    scopes: Vec<String>,
    /// Space-joined, for the RFC 6750 `scope` attribute.
    joined: String,
}

#[derive(Debug)]
struct RolesRule {
    claim: ClaimPath,
    any_of: Vec<String>,
}

#[derive(Debug)]
enum ClaimTest {
    Equals(Value),
    Contains(Value),
    In(Vec<Value>),
}

#[derive(Debug)]
struct ClaimRule {
    name: String,
    claim: ClaimPath,
    test: ClaimTest,
}

#[derive(Debug)]
struct MfaRule {
    amr_any: Option<Vec<String>>,
    acr_any: Option<Vec<String>>,
    max_age: Option<u64>,
    /// `acr_any` space-joined, for the challenge.
    acr_values: String,
}

#[derive(Debug)]
struct OwnershipRule {
    name: String,
    path_param: String,
    claim: ClaimPath,
    mode: OwnershipMode,
    deny_status: u16,
}

impl AuthzPolicy {
    /// Validates a route's configuration and compiles it. Errors name the rule (`claims[1]`,
    /// `cel[0]`, ...) so the caller can point at the configuration line.
    pub fn compile(config: &AuthzConfig) -> Result<AuthzPolicy, PolicyError> {
        let policy = AuthzPolicy {
            scopes_all: scope_rule("scopes_all", config.scopes_all.as_deref())?,
            scopes_any: scope_rule("scopes_any", config.scopes_any.as_deref())?,
            roles: match &config.roles {
                None => None,
                Some(roles) => Some(RolesRule {
                    claim: ClaimPath::parse("roles", &roles.claim)?,
                    any_of: non_empty_strings("roles", "any_of", &roles.any_of)?,
                }),
            },
            claims: config
                .claims
                .iter()
                .enumerate()
                .map(|(i, c)| claim_rule(i, c))
                .collect::<Result<_, _>>()?,
            mfa: config.mfa.as_ref().map(mfa_rule).transpose()?,
            ownership: config
                .ownership
                .iter()
                .enumerate()
                .map(|(i, o)| ownership_rule(i, o))
                .collect::<Result<_, _>>()?,
            cel: CelRules::compile(&config.cel)?,
        };
        tracing::debug!(?policy, "authorization policy compiled");
        Ok(policy)
    }

    /// Whether the policy has no rule at all (every authenticated caller is allowed).
    pub fn is_empty(&self) -> bool {
        self.scopes_all.is_none()
            && self.scopes_any.is_none()
            && self.roles.is_none()
            && self.claims.is_empty()
            && self.mfa.is_none()
            && self.ownership.is_empty()
            && self.cel.is_empty()
    }

    /// Checks at load time that every ownership rule names a parameter of the route's
    /// template; otherwise the rule could only ever deny.
    pub fn check_template(&self, template: &PathTemplate) -> Result<(), PolicyError> {
        for rule in &self.ownership {
            if !template.param_names().any(|p| p == rule.path_param) {
                return Err(PolicyError::rule(
                    rule.name.as_str(),
                    format!(
                        "path parameter {:?} is not in the route template {:?}",
                        rule.path_param,
                        template.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Decides a request now.
    pub fn authorize(&self, request: &AuthzRequest<'_>, identity: &Identity) -> Decision {
        self.authorize_at(request, identity, SystemTime::now())
    }

    /// Decides a request as of `now` (for `mfa.max_age`), so tests and replays are
    /// deterministic.
    pub fn authorize_at(
        &self,
        request: &AuthzRequest<'_>,
        identity: &Identity,
        now: SystemTime,
    ) -> Decision {
        let decision = self.evaluate(request, identity, now);
        match &decision {
            Decision::Allow => {}
            Decision::Deny { rule, reason, .. } => {
                tracing::debug!(principal = %identity.principal, %rule, reason, "authorization denied");
            }
            Decision::StepUp(step_up) => {
                tracing::debug!(principal = %identity.principal, failed = step_up.failed, "step-up authentication required");
            }
        }
        decision
    }

    fn evaluate(
        &self,
        request: &AuthzRequest<'_>,
        identity: &Identity,
        now: SystemTime,
    ) -> Decision {
        let has_scope = |s: &String| identity.scopes.contains(s);
        if let Some(rule) = &self.scopes_all
            && !rule.scopes.iter().all(has_scope)
        {
            return insufficient_scope("scopes_all", rule);
        }
        if let Some(rule) = &self.scopes_any
            && !rule.scopes.iter().any(has_scope)
        {
            return insufficient_scope("scopes_any", rule);
        }

        if let Some(rule) = &self.roles {
            let held = rule
                .claim
                .lookup(&identity.claims)
                .is_some_and(|v| claim_strings(v).any(|r| rule.any_of.iter().any(|w| w == r)));
            if !held {
                return deny(403, "roles", "forbidden");
            }
        }

        for rule in &self.claims {
            if !rule.holds(&identity.claims) {
                return deny(403, &rule.name, "forbidden");
            }
        }

        if let Some(rule) = &self.mfa
            && let Some(failed) = rule.failure(&identity.claims, now)
        {
            return Decision::StepUp(StepUp {
                acr_values: rule.acr_values.clone(),
                max_age: rule.max_age,
                failed,
            });
        }

        for rule in &self.ownership {
            if !rule.owns(request.path_params, &identity.claims) {
                return deny(rule.deny_status, &rule.name, "not_owner");
            }
        }

        if let Some((rule, reason)) = self.cel.first_failure(request, identity) {
            return deny(403, rule, reason);
        }
        Decision::Allow
    }
}

fn deny(status: u16, rule: &str, reason: &'static str) -> Decision {
    Decision::Deny {
        status,
        rule: rule.to_owned(),
        reason,
        scope: None,
    }
}

fn insufficient_scope(rule: &str, scopes: &ScopeRule) -> Decision {
    Decision::Deny {
        status: 403,
        rule: rule.to_owned(),
        reason: "insufficient_scope",
        scope: Some(scopes.joined.clone()),
    }
}

impl ClaimRule {
    fn holds(&self, claims: &BTreeMap<String, Value>) -> bool {
        let Some(value) = self.claim.lookup(claims) else {
            return false;
        };
        match &self.test {
            ClaimTest::Equals(expected) => value == expected,
            // A scalar claim is a one-element set; never a substring test on a string.
            ClaimTest::Contains(expected) => match value {
                Value::Array(items) => items.contains(expected),
                scalar => scalar == expected,
            },
            ClaimTest::In(allowed) => allowed.contains(value),
        }
    }
}

impl MfaRule {
    /// The first unmet requirement, if any: `amr`, `acr` or `max_age`.
    fn failure(&self, claims: &BTreeMap<String, Value>, now: SystemTime) -> Option<&'static str> {
        if let Some(amr_any) = &self.amr_any {
            // RFC 8176 makes `amr` an array; a lone string is read as one method.
            let ok = claims
                .get("amr")
                .is_some_and(|v| claim_strings(v).any(|m| amr_any.iter().any(|w| w == m)));
            if !ok {
                return Some("amr");
            }
        }
        if let Some(acr_any) = &self.acr_any {
            let ok = claims
                .get("acr")
                .and_then(Value::as_str)
                .is_some_and(|acr| acr_any.iter().any(|w| w == acr));
            if !ok {
                return Some("acr");
            }
        }
        if let Some(max_age) = self.max_age {
            // A clock before 1970 is broken; 0 makes every login look too old, which fails
            // closed (step-up) rather than open.
            let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let fresh = claims
                .get("auth_time")
                .and_then(auth_time)
                .is_some_and(|t| {
                    t <= now.saturating_add(AUTH_TIME_SKEW_SECS) && now.saturating_sub(t) <= max_age
                });
            if !fresh {
                return Some("max_age");
            }
        }
        None
    }
}

/// `auth_time` as whole seconds: an integer, or a non-negative float (some IdPs send
/// fractional seconds), truncated.
fn auth_time(value: &Value) -> Option<u64> {
    let n = value.as_number()?;
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    let f = n.as_f64()?;
    // Inside this range the cast only drops the fraction (NaN and infinities fail `contains`).
    (0.0..1.8e19).contains(&f).then_some(f as u64)
}

impl OwnershipRule {
    fn owns(&self, params: &BTreeMap<String, String>, claims: &BTreeMap<String, Value>) -> bool {
        let Some(param) = params.get(&self.path_param) else {
            // A route without this parameter cannot prove ownership: deny, and say why once
            // someone looks, since it is a configuration mistake rather than a client's.
            tracing::debug!(rule = %self.name, param = %self.path_param, "ownership path parameter missing");
            return false;
        };
        let Some(claim) = self.claim.lookup(claims) else {
            return false;
        };
        match self.mode {
            OwnershipMode::Equals => scalar_is(claim, param),
            OwnershipMode::Member => match claim {
                Value::Array(items) => items.iter().any(|item| scalar_is(item, param)),
                scalar => scalar_is(scalar, param),
            },
        }
    }
}

fn scope_rule(rule: &str, scopes: Option<&[String]>) -> Result<Option<ScopeRule>, PolicyError> {
    let Some(scopes) = scopes else {
        return Ok(None);
    };
    if scopes.is_empty() {
        return Err(PolicyError::rule(
            rule,
            "empty list; omit the field for no requirement",
        ));
    }
    for scope in scopes {
        // RFC 6749 §3.3 scope-token: NQCHAR, i.e. printable ASCII without space, '"' and '\'.
        // Anything else could never be granted as one token, and would have to be escaped in
        // the RFC 6750 challenge.
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
        if !valid {
            return Err(PolicyError::rule(
                rule,
                format!("{scope:?} is not a valid scope token"),
            ));
        }
    }
    Ok(Some(ScopeRule {
        scopes: scopes.to_vec(),
        joined: scopes.join(" "),
    }))
}

fn non_empty_strings(
    rule: &str,
    field: &str,
    values: &[String],
) -> Result<Vec<String>, PolicyError> {
    if values.is_empty() {
        return Err(PolicyError::rule(
            rule,
            format!("{field} is an empty list; omit the rule for no requirement"),
        ));
    }
    if values.iter().any(String::is_empty) {
        return Err(PolicyError::rule(
            rule,
            format!("{field} has an empty value"),
        ));
    }
    Ok(values.to_vec())
}

fn claim_rule(index: usize, config: &ClaimConfig) -> Result<ClaimRule, PolicyError> {
    let name = format!("claims[{index}]");
    let claim = ClaimPath::parse(&name, &config.claim)?;
    let scalar = |v: &Value| {
        if is_scalar(v) {
            Ok(())
        } else {
            Err(PolicyError::rule(
                name.as_str(),
                format!("{v} is not a string, number or boolean"),
            ))
        }
    };
    let test = match (&config.equals, &config.contains, &config.one_of) {
        (Some(v), None, None) => {
            scalar(v)?;
            ClaimTest::Equals(v.clone())
        }
        (None, Some(v), None) => {
            scalar(v)?;
            ClaimTest::Contains(v.clone())
        }
        (None, None, Some(values)) => {
            if values.is_empty() {
                return Err(PolicyError::rule(name.as_str(), "`in` is an empty list"));
            }
            values.iter().try_for_each(scalar)?;
            ClaimTest::In(values.clone())
        }
        _ => {
            return Err(PolicyError::rule(
                name.as_str(),
                "needs exactly one of `equals`, `contains`, `in`",
            ));
        }
    };
    Ok(ClaimRule { name, claim, test })
}

fn mfa_rule(config: &MfaConfig) -> Result<MfaRule, PolicyError> {
    if config.amr_any.is_none() && config.acr_any.is_none() && config.max_age.is_none() {
        return Err(PolicyError::rule(
            "mfa",
            "needs at least one of `amr_any`, `acr_any`, `max_age`",
        ));
    }
    let amr_any = config
        .amr_any
        .as_deref()
        .map(|v| non_empty_strings("mfa", "amr_any", v))
        .transpose()?;
    let acr_any = config
        .acr_any
        .as_deref()
        .map(|v| non_empty_strings("mfa", "acr_any", v))
        .transpose()?;
    if let Some(acr_any) = &acr_any {
        // They are sent space-separated in `acr_values`: a space inside one would split it, a
        // control character would break the header.
        if let Some(bad) = acr_any
            .iter()
            .find(|v| v.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(PolicyError::rule(
                "mfa",
                format!("acr value {bad:?} contains whitespace or a control character"),
            ));
        }
    }
    let acr_values = acr_any.as_deref().map(|v| v.join(" ")).unwrap_or_default();
    Ok(MfaRule {
        amr_any,
        acr_any,
        max_age: config.max_age,
        acr_values,
    })
}

fn ownership_rule(index: usize, config: &OwnershipConfig) -> Result<OwnershipRule, PolicyError> {
    let name = format!("ownership[{index}]");
    if config.path_param.is_empty() {
        return Err(PolicyError::rule(name, "path_param is empty"));
    }
    if !matches!(config.deny_status, 403 | 404) {
        return Err(PolicyError::rule(
            name,
            format!("deny_status {} must be 403 or 404", config.deny_status),
        ));
    }
    Ok(OwnershipRule {
        claim: ClaimPath::parse(&name, &config.claim)?,
        path_param: config.path_param.clone(),
        mode: config.mode,
        deny_status: config.deny_status,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policy_is_send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AuthzPolicy>();
    }

    #[test]
    fn auth_time_forms() {
        assert_eq!(auth_time(&json!(100)), Some(100));
        assert_eq!(auth_time(&json!(100.9)), Some(100));
        assert_eq!(auth_time(&json!(-1)), None);
        assert_eq!(auth_time(&json!(-1.5)), None);
        assert_eq!(auth_time(&json!("100")), None);
    }

    #[test]
    fn config_validation() {
        let bad = |yaml: &str| {
            let config: AuthzConfig = serde_json::from_str(yaml).unwrap();
            AuthzPolicy::compile(&config).unwrap_err().to_string()
        };
        assert!(bad(r#"{"scopes_any": []}"#).starts_with("scopes_any:"));
        assert!(bad(r#"{"scopes_all": ["a b"]}"#).contains("not a valid scope token"));
        assert!(bad(r#"{"scopes_all": ["a\"b"]}"#).contains("not a valid scope token"));
        assert!(bad(r#"{"roles": {"any_of": []}}"#).starts_with("roles:"));
        assert!(bad(r#"{"roles": {"claim": "a..b", "any_of": ["x"]}}"#).starts_with("roles:"));
        assert!(bad(r#"{"claims": [{"claim": "a"}]}"#).starts_with("claims[0]:"));
        assert!(
            bad(r#"{"claims": [{"claim": "a", "equals": "x"}, {"claim": "a", "equals": "x", "in": ["y"]}]}"#)
                .starts_with("claims[1]:")
        );
        assert!(bad(r#"{"claims": [{"claim": "a", "equals": ["x"]}]}"#).contains("not a string"));
        assert!(bad(r#"{"claims": [{"claim": "a", "equals": null}]}"#).starts_with("claims[0]:"));
        assert!(bad(r#"{"claims": [{"claim": "a", "in": []}]}"#).starts_with("claims[0]:"));
        assert!(bad(r#"{"mfa": {}}"#).starts_with("mfa:"));
        assert!(bad(r#"{"mfa": {"acr_any": []}}"#).starts_with("mfa:"));
        assert!(bad(r#"{"mfa": {"acr_any": ["a b"]}}"#).contains("whitespace"));
        assert!(
            bad(r#"{"ownership": [{"path_param": "id", "claim": "sub", "deny_status": 401}]}"#)
                .starts_with("ownership[0]:")
        );
        assert!(
            bad(r#"{"ownership": [{"path_param": "", "claim": "sub"}]}"#)
                .starts_with("ownership[0]:")
        );
        assert!(bad(r#"{"cel": ["true", "1 +"]}"#).starts_with("cel[1]:"));
    }

    #[test]
    fn empty_policy() {
        let policy = AuthzPolicy::compile(&AuthzConfig::default()).unwrap();
        assert!(policy.is_empty());
    }
}
