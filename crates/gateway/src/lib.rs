//! Portcullis gateway: listeners, TLS, the request pipeline, upstream pools and the admin API.
//!
//! Start at [`pipeline`]: one function runs every stage of a request in order. The rest of the
//! crate is what those stages call:
//!
//! | module | room |
//! |---|---|
//! | [`config`] | YAML → raw structs → validated model, errors with file:line:column:field |
//! | [`server`] | process state, snapshot swap on reload, start and graceful shutdown |
//! | [`listener`] | accept, connection limit, TLS, HTTP/1 or HTTP/2, header/idle timeouts |
//! | [`framing`] | the strict HTTP/1 reader that refuses smuggling-prone requests |
//! | [`tls`] | rustls (aws-lc-rs), TLS 1.2/1.3 only, SNI, self-signed development certs |
//! | [`pipeline`] | the stages of a request, in order |
//! | [`restrict`] | request restrictions |
//! | [`authn`] | authenticate and authorize stages, identity headers to upstreams |
//! | [`upstream_token`] | the gateway-signed identity JWT for upstreams |
//! | [`forward`], [`upstream`], [`forwarding`] | upstream pools and proxy headers |
//! | [`respond`] | response filters, security headers, CORS |
//! | [`problem`] | every refusal as RFC 9457 problem+json |
//! | [`protect`] | allow/deny lists, block list, rate limits, brute force, load shedding |
//! | [`context`], [`body`] | per-request state and the event guard; metered bodies |
//! | [`admin`], [`metrics`] | the admin API and Prometheus metrics |

// `Rejection` (the error of every stage) is a plain struct of ~130 bytes: refusals are the cold
// path, and moving it is cheaper than the allocation boxing would add to every refusal.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod authn;
pub mod body;
pub mod config;
pub mod context;
pub mod contract;
pub mod detection;
pub mod forward;
pub mod forwarding;
pub mod framing;
pub mod listener;
pub mod metrics;
pub mod pipeline;
pub mod problem;
pub mod protect;
pub mod respond;
pub mod restrict;
pub mod server;
pub mod snapshot;
pub mod tls;
pub mod upstream;
pub mod upstream_token;

pub use server::{Gateway, GatewayError, RunningGateway};
