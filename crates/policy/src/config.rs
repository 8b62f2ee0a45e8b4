//! The serde shape of a route's `authorize:` block. Plain data only: validation and
//! precomputation happen in [`AuthzPolicy::compile`](crate::AuthzPolicy::compile), so the same
//! struct can be deserialized from YAML, JSON or built in code.
//!
//! Lists are `Option`s so that an explicitly empty list can be refused: `scopes_any: []` would
//! otherwise mean either "deny everyone" or, worse, "no requirement" when a templated value
//! comes out empty. Omitting the field is the only way to say "no such rule".

use serde::Deserialize;

/// Authorization rules of one route. Every rule present must pass; see
/// [`AuthzPolicy`](crate::AuthzPolicy) for the order they are evaluated in.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// Every one of these scopes is required.
    pub scopes_all: Option<Vec<String>>,
    /// At least one of these scopes is required.
    pub scopes_any: Option<Vec<String>>,
    /// At least one role from a (possibly nested) claim.
    pub roles: Option<RolesConfig>,
    /// Claim comparisons, each of which must hold.
    #[serde(default)]
    pub claims: Vec<ClaimConfig>,
    /// Step-up authentication requirements (RFC 9470).
    pub mfa: Option<MfaConfig>,
    /// Object-ownership (BOLA) checks binding a path parameter to a claim.
    #[serde(default)]
    pub ownership: Vec<OwnershipConfig>,
    /// CEL expressions, each of which must evaluate to `true`.
    #[serde(default)]
    pub cel: Vec<String>,
}

/// `roles: { claim: realm_access.roles, any_of: [admin, ops] }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesConfig {
    /// Claim holding the roles, a string or an array of strings; dots walk into nested objects
    /// (`realm_access.roles`). Defaults to `roles`.
    #[serde(default = "default_roles_claim")]
    pub claim: String,
    /// The caller needs at least one of these.
    pub any_of: Vec<String>,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}

/// One claim comparison: `claim` plus exactly one of `equals`, `contains`, `in`.
///
/// Values are JSON scalars (string, number, boolean) compared exactly, without type coercion:
/// the string `"1"` is not the number `1`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimConfig {
    /// Claim name; dots walk into nested objects.
    pub claim: String,
    /// The claim equals this value.
    pub equals: Option<serde_json::Value>,
    /// The claim is an array holding this value (a scalar claim counts as a one-element array).
    pub contains: Option<serde_json::Value>,
    /// The claim is one of these values.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<serde_json::Value>>,
}

/// `mfa: { amr_any: [mfa, hwk], acr_any: [...], max_age: 300 }`: at least one field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaConfig {
    /// The `amr` claim must contain one of these methods (RFC 8176 values such as `mfa`, `otp`,
    /// `hwk`).
    pub amr_any: Option<Vec<String>>,
    /// The `acr` claim must be one of these; also sent as `acr_values` in the step-up challenge.
    pub acr_any: Option<Vec<String>>,
    /// The `auth_time` claim must be at most this many seconds old.
    pub max_age: Option<u64>,
}

/// `ownership: [{ path_param: user_id, claim: sub, mode: equals, deny_status: 404 }]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipConfig {
    /// Name of the route template parameter naming the object.
    pub path_param: String,
    /// Claim that must match it; dots walk into nested objects.
    pub claim: String,
    /// How the parameter is compared with the claim.
    #[serde(default)]
    pub mode: OwnershipMode,
    /// 404 (default) hides that the object exists; 403 admits it.
    #[serde(default = "default_deny_status")]
    pub deny_status: u16,
}

fn default_deny_status() -> u16 {
    404
}

/// How an ownership rule compares a path parameter with a claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnershipMode {
    /// The claim is exactly the parameter: `/users/{user_id}` and `sub`. The claim must be a
    /// string, or an integer whose decimal form is the parameter (`42`, not `042`); no case
    /// folding or other normalisation.
    #[default]
    Equals,
    /// The claim is an array with the parameter as an element, compared as for `Equals`:
    /// `/tenants/{tenant}` and `tenants`. A lone string claim counts as a one-element array
    /// (never as a substring match).
    Member,
}
