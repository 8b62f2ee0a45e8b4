//! Portcullis authorization: what a verified caller may do on a route.
//!
//! A route's [`AuthzConfig`] is compiled once, when the configuration is loaded, into an
//! [`AuthzPolicy`]; each request is then a pure function of plain data: an [`AuthzRequest`]
//! (method, raw path, decoded path parameters, query, headers, client address) and the
//! [`Identity`] the authentication stage produced go in, a [`Decision`] comes out. The crate knows
//! nothing of HTTP libraries or of the gateway, so every rule can be tested with plain values.
//!
//! Path parameters come from a [`PathTemplate`], which decodes each parameter exactly once and
//! refuses values that could name a different object than the one checked (`..`, encoded
//! separators), so ownership rules compare what the upstream will act on.

mod cel_rules;
mod claims;
mod config;
mod decision;
mod error;
mod path;
mod policy;
pub mod ratelimit;

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use config::{
    AuthzConfig, ClaimConfig, MfaConfig, OwnershipConfig, OwnershipMode, RolesConfig,
};
pub use decision::{Decision, StepUp};
pub use error::PolicyError;
pub use path::PathTemplate;
pub use policy::AuthzPolicy;
pub use portcullis_identity::Identity;

/// What the authorization stage sees of a request: borrowed plain data, built by the gateway.
#[derive(Debug, Clone, Copy)]
pub struct AuthzRequest<'a> {
    /// The request method as sent (`GET`, `POST`, ...).
    pub method: &'a str,
    /// The raw, still percent-encoded path, without the query.
    pub path: &'a str,
    /// Parameters of the route's [`PathTemplate`], each decoded exactly once.
    pub path_params: &'a BTreeMap<String, String>,
    /// Query parameters, decoded, every value of a repeated name kept in order.
    pub query: &'a BTreeMap<String, Vec<String>>,
    /// Request headers with lowercase names; the gateway strips credentials before this stage.
    pub headers: &'a BTreeMap<String, String>,
    /// The client's address (after trusted-proxy resolution).
    pub client_ip: IpAddr,
}
