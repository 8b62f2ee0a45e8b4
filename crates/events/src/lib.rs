//! Portcullis security events.
//!
//! The gateway builds one [`HttpActivity`] per request, an
//! [`AuthenticationEvent`] per credential check and a [`DetectionFinding`]
//! per Sigma alert, and hands them to an [`Emitter`]. The emitter redacts
//! secrets with the current [`Redactor`] and fans each event out, without
//! ever blocking the request path, to one bounded queue per sink; every sink
//! has its own thread that encodes (OCSF JSON, syslog RFC 5424 with JSON or
//! CEF, Splunk HEC envelopes, `_bulk` NDJSON), batches and retries with
//! capped exponential backoff. Gateway lifecycle notices travel the same way
//! as OCSF "Application Lifecycle" records.
//!
//! [`handoff`] is the batching queue behind every sink (and the gateway's
//! live detection): no wake-up per event on the request path.
//!
//! The wire formats, the delivery guarantees and the redaction rules are
//! documented in `docs/events.md`; JSON Schemas of the records are in
//! `docs/schemas/`.

mod cef;
mod config;
mod emitter;
mod error;
pub mod handoff;
mod http_sink;
mod model;
mod ocsf;
mod redact;
mod sink;
mod syslog;
mod tls;
mod worker;

pub use cef::{cef_severity, escape_extension, escape_header};
pub use config::{
    BatchConfig, ElasticAuth, ElasticBulkConfig, HttpTlsConfig, Secret, SinkConfig,
    SplunkHecConfig, SyslogConfig, SyslogFormat, SyslogTransport, syslog_facility,
};
pub use emitter::{DEFAULT_QUEUE_CAPACITY, Emitter, EmitterConfig, FILE_QUEUE_FACTOR, SinkStats};
pub use error::EventsError;
pub use model::{
    Action, Actor, Attack, AttackRef, AuthMethod, AuthOutcome, AuthenticationEvent,
    DetectionFinding, Finding, HttpActivity, Operation, Severity, TlsInfo,
};
pub use ocsf::{
    OCSF_VERSION, auth_protocol, auth_severity, authentication_json, detection_json,
    event_severity, http_activity, lifecycle_json, to_ocsf_json, write_authentication_json,
    write_detection_json, write_ocsf_json,
};
pub use redact::{ALWAYS_SECRET_HEADERS, DEFAULT_SECRET_QUERY_PARAMS, REDACTED, Redactor};
pub use syslog::{rfc3339_millis, syslog_severity};

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
            attempted_user: None,
            operation: None,
        }
    }
}
