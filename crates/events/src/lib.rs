//! Portcullis security events.
//!
//! The gateway builds one [`HttpActivity`] per request and hands it to an
//! [`Emitter`]. The emitter redacts secrets with the current [`Redactor`],
//! queues the event without ever blocking the request path, and a writer
//! thread writes it as one OCSF "HTTP Activity" JSON line to every configured
//! sink (stdout and/or size-rotated files). Gateway lifecycle notices travel
//! the same way as OCSF "Application Lifecycle" records.
//!
//! The wire format and redaction rules are documented in `docs/events.md`.

mod emitter;
mod error;
mod model;
mod ocsf;
mod redact;
mod sink;

pub use emitter::{DEFAULT_QUEUE_CAPACITY, Emitter, EmitterConfig};
pub use error::EventsError;
pub use model::{Action, Actor, Finding, HttpActivity, Severity, TlsInfo};
pub use ocsf::{OCSF_VERSION, event_severity, http_activity, to_ocsf_json, write_ocsf_json};
pub use redact::{ALWAYS_SECRET_HEADERS, DEFAULT_SECRET_QUERY_PARAMS, REDACTED, Redactor};
pub use sink::SinkConfig;

/// Shared fixtures for the unit tests.
#[cfg(test)]
mod tests_support {
    use std::net::{IpAddr, Ipv4Addr};

    use crate::model::{Action, HttpActivity};

    pub(crate) fn sample_event() -> HttpActivity {
        HttpActivity {
            time_ms: 1_700_000_000_000,
            request_id: "req-1".to_owned(),
            client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            client_port: 51234,
            tls: None,
            http_version: "HTTP/1.1".to_owned(),
            method: "GET".to_owned(),
            scheme: "http".to_owned(),
            host: "api.example.com".to_owned(),
            path: "/v1/items".to_owned(),
            query: None,
            headers: Vec::new(),
            user_agent: None,
            status: 200,
            bytes_in: 0,
            bytes_out: 0,
            duration_us: 0,
            route: None,
            upstream: None,
            action: Action::Allowed,
            reason: None,
            findings: Vec::new(),
            actor: None,
        }
    }
}
