//! Sink configuration: which destinations events go to and how each one
//! batches, retries and authenticates.
//!
//! These are plain data types with sane defaults (`Default` on every
//! per-sink struct) so that the gateway's YAML layer can fill in only what an
//! operator wrote. Secrets are wrapped in [`Secret`], whose `Debug` never
//! shows the value, because configurations end up in logs.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where events are written. Every configured sink gets every event, through
/// its own queue and thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkConfig {
    /// One JSON line per event on standard output.
    Stdout,
    /// One JSON line per event appended to `path`. Before a line would push
    /// the file past `max_bytes`, the file is rotated: `path.1` becomes
    /// `path.2` and so on, `path` becomes `path.1`, and the oldest file
    /// beyond `path.{max_files}` is deleted. `max_files = 0` keeps no
    /// history (the file is truncated instead).
    File {
        /// The active file.
        path: PathBuf,
        /// Size limit of one file in bytes; must be positive. A single line
        /// longer than this still gets written, alone in its file.
        max_bytes: u64,
        /// How many rotated files to keep besides the active one.
        max_files: u32,
    },
    /// RFC 5424 syslog over UDP, TCP (RFC 6587 octet counting) or TLS (RFC 5425).
    Syslog(SyslogConfig),
    /// Splunk HTTP Event Collector (`/services/collector/event`).
    SplunkHec(SplunkHecConfig),
    /// Elasticsearch / OpenSearch `_bulk` API.
    ElasticBulk(ElasticBulkConfig),
}

impl SinkConfig {
    /// The sink's kind as shown in [`crate::SinkStats::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout => "stdout",
            SinkConfig::File { .. } => "file",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::SplunkHec(_) => "splunk_hec",
            SinkConfig::ElasticBulk(_) => "elastic_bulk",
        }
    }
}

/// A configured secret (token, password). `Debug` prints `[REDACTED]` so that
/// a logged configuration never leaks it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for building the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

/// How a network sink groups events and retries failed deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// A batch is sent once it holds this many events...
    pub max_events: usize,
    /// ...or this many encoded bytes...
    pub max_bytes: usize,
    /// ...or when its first event has waited this long.
    pub flush_interval: Duration,
    /// Retries of a failed batch (or of its failed items) before the events
    /// are dropped and counted.
    pub max_retries: u32,
    /// Wait before the first retry; doubled after each, up to `backoff_max`.
    pub backoff_initial: Duration,
    /// Cap of the exponential backoff.
    pub backoff_max: Duration,
    /// This sink's queue; `None` uses the emitter's `queue_capacity`.
    pub queue_capacity: Option<usize>,
    /// Connect / request timeout of one delivery attempt.
    pub timeout: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: 500,
            max_bytes: 1024 * 1024,
            flush_interval: Duration::from_secs(1),
            max_retries: 8,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            queue_capacity: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Syslog transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One datagram per message (RFC 5426). Fire and forget: only local
    /// send errors are seen.
    Udp,
    /// TCP with octet-counting framing (RFC 6587 §3.4.1).
    #[default]
    Tcp,
    /// TLS (RFC 5425), octet-counted, server certificate verified.
    Tls {
        /// PEM bundle of the CAs to trust; `None` uses the system roots.
        ca_file: Option<PathBuf>,
        /// Name to verify the certificate against; `None` uses the host part
        /// of the address.
        server_name: Option<String>,
    },
}

/// The MSG part of each syslog message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyslogFormat {
    /// The OCSF JSON object, as written to files.
    #[default]
    Json,
    /// An ArcSight CEF line (`CEF:0|Portcullis|Portcullis|...`).
    Cef,
}

/// A syslog destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogConfig {
    /// `host:port` of the collector.
    pub address: String,
    /// UDP, TCP or TLS.
    pub transport: SyslogTransport,
    /// JSON or CEF message bodies.
    pub format: SyslogFormat,
    /// RFC 5424 APP-NAME.
    pub app_name: String,
    /// Syslog facility number, 0–23 (`16` = local0).
    pub facility: u8,
    /// RFC 5424 HOSTNAME; `None` uses the machine's host name.
    pub hostname: Option<String>,
    /// Batching and retries.
    pub batch: BatchConfig,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            address: "127.0.0.1:514".to_owned(),
            transport: SyslogTransport::default(),
            format: SyslogFormat::default(),
            app_name: "portcullis".to_owned(),
            facility: 16,
            hostname: None,
            batch: BatchConfig {
                // Syslog is a stream of small messages: send often.
                flush_interval: Duration::from_millis(200),
                ..BatchConfig::default()
            },
        }
    }
}

/// Parses a syslog facility name (`kern`, `user`, ..., `local0`..`local7`)
/// or number into its number.
pub fn syslog_facility(name: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    let name = name.trim().to_ascii_lowercase();
    if let Ok(n) = name.parse::<u8>() {
        return (n < 24).then_some(n);
    }
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// TLS settings of an HTTP sink (used for `https://` URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpTlsConfig {
    /// PEM bundle of the CAs to trust; `None` uses the system roots.
    pub ca_file: Option<PathBuf>,
}

/// A Splunk HTTP Event Collector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplunkHecConfig {
    /// Base URL, e.g. `https://splunk.example:8088`; the sink posts to
    /// `<url>/services/collector/event`.
    pub url: String,
    /// The HEC token, sent as `Authorization: Splunk <token>`.
    pub token: Secret,
    /// Target index; `None` lets the token's default apply.
    pub index: Option<String>,
    /// Event `source`.
    pub source: String,
    /// Event `sourcetype`.
    pub sourcetype: String,
    /// Event `host`; `None` uses the machine's host name.
    pub host: Option<String>,
    /// Server verification for `https://`.
    pub tls: HttpTlsConfig,
    /// Batching and retries.
    pub batch: BatchConfig,
}

impl Default for SplunkHecConfig {
    fn default() -> Self {
        SplunkHecConfig {
            url: "https://127.0.0.1:8088".to_owned(),
            token: Secret::default(),
            index: None,
            source: "portcullis".to_owned(),
            sourcetype: "ocsf:json".to_owned(),
            host: None,
            tls: HttpTlsConfig::default(),
            batch: BatchConfig::default(),
        }
    }
}

/// How the `_bulk` sink authenticates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ElasticAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
    /// `Authorization: ApiKey <key>` (the base64 `id:api_key` as issued).
    ApiKey(Secret),
}

/// An Elasticsearch or OpenSearch cluster's `_bulk` API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElasticBulkConfig {
    /// Base URL, e.g. `https://es.example:9200`; the sink posts to `<url>/_bulk`.
    pub url: String,
    /// Index (or data stream) every document is created in.
    pub index: String,
    /// Credentials.
    pub auth: ElasticAuth,
    /// Server verification for `https://`.
    pub tls: HttpTlsConfig,
    /// Batching and retries.
    pub batch: BatchConfig,
}

impl Default for ElasticBulkConfig {
    fn default() -> Self {
        ElasticBulkConfig {
            url: "https://127.0.0.1:9200".to_owned(),
            index: "portcullis-events".to_owned(),
            auth: ElasticAuth::None,
            tls: HttpTlsConfig::default(),
            batch: BatchConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let cfg = SinkConfig::SplunkHec(SplunkHecConfig {
            token: Secret::new("hec-token-123"),
            ..SplunkHecConfig::default()
        });
        let printed = format!("{cfg:?}");
        assert!(!printed.contains("hec-token-123"), "{printed}");
        assert!(printed.contains("[REDACTED]"));
    }

    #[test]
    fn facility_names_and_numbers_parse() {
        assert_eq!(syslog_facility("local0"), Some(16));
        assert_eq!(syslog_facility("AUTHPRIV"), Some(10));
        assert_eq!(syslog_facility("23"), Some(23));
        assert_eq!(syslog_facility("24"), None);
        assert_eq!(syslog_facility("nope"), None);
    }
}
