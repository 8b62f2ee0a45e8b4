//! Syslog sink: RFC 5424 messages over UDP (RFC 5426), TCP with octet
//! counting (RFC 6587 §3.4.1) or TLS (RFC 5425).
//!
//! The MSG is the event's OCSF JSON object or a CEF line; STRUCTURED-DATA is
//! `-`. The syslog severity follows the event's severity, so a collector can
//! route alerts by PRI alone. Stream transports connect lazily and reconnect
//! after any error; a batch that failed mid-write is sent again whole, so a
//! collector may see a message twice but a delivered count is never
//! overstated.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::cef::cef_line;
use crate::config::{SyslogConfig, SyslogFormat, SyslogTransport};
use crate::error::EventsError;
use crate::model::Severity;
use crate::ocsf::Event;
use crate::worker::{Deliver, SendOutcome};

/// Linux `EMSGSIZE`: a datagram larger than UDP allows, which no retry fixes.
const EMSGSIZE: i32 = 90;

/// Syslog severity (RFC 5424 §6.2.1) for an event severity.
pub fn syslog_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// RFC 5424 MSGID for an OCSF class.
fn msgid(class_uid: u32) -> &'static str {
    match class_uid {
        4002 => "http_activity",
        3002 => "authentication",
        2004 => "detection_finding",
        6002 => "app_lifecycle",
        _ => "-",
    }
}

/// Keeps an RFC 5424 header field within its grammar: printable US-ASCII
/// without spaces, at most `max` characters, `-` when empty.
fn header_field(value: &str, max: usize) -> String {
    let cleaned: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "-".to_owned()
    } else {
        cleaned
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for Unix epoch milliseconds (RFC 3339, UTC).
pub fn rfc3339_millis(time_ms: u64) -> String {
    let secs = time_ms / 1000;
    let millis = time_ms % 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (H. Hinnant), for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// The machine's host name, for HOSTNAME / HEC `host` when not configured.
pub(crate) fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

enum Connection {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

pub(crate) struct SyslogSink {
    address: String,
    transport: SyslogTransport,
    format: SyslogFormat,
    facility: u8,
    hostname: String,
    app_name: String,
    procid: String,
    timeout: Duration,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    conn: Option<Connection>,
    frame: Vec<u8>,
}

impl SyslogSink {
    pub(crate) fn new(cfg: &SyslogConfig) -> Result<SyslogSink, EventsError> {
        if cfg.facility > 23 {
            return Err(EventsError::InvalidConfig(format!(
                "syslog sink {}: facility must be 0-23",
                cfg.address
            )));
        }
        let tls = match &cfg.transport {
            SyslogTransport::Tls {
                ca_file,
                server_name,
            } => {
                let config = crate::tls::client_config(ca_file.as_deref())?;
                let name = match server_name {
                    Some(name) => name.clone(),
                    None => host_of(&cfg.address).to_owned(),
                };
                let name = ServerName::try_from(name).map_err(|e| {
                    EventsError::InvalidConfig(format!("syslog sink {}: {e}", cfg.address))
                })?;
                Some((config, name))
            }
            _ => None,
        };
        Ok(SyslogSink {
            address: cfg.address.clone(),
            transport: cfg.transport.clone(),
            format: cfg.format,
            facility: cfg.facility,
            hostname: header_field(&cfg.hostname.clone().unwrap_or_else(local_hostname), 255),
            app_name: header_field(&cfg.app_name, 48),
            procid: std::process::id().to_string(),
            timeout: cfg.batch.timeout,
            tls,
            conn: None,
            frame: Vec::new(),
        })
    }

    fn resolve(&self) -> io::Result<SocketAddr> {
        self.address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "address did not resolve"))
    }

    fn connect(&self) -> io::Result<Connection> {
        let addr = self.resolve()?;
        match &self.transport {
            SyslogTransport::Udp => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(bind)?;
                socket.connect(addr)?;
                Ok(Connection::Udp(socket))
            }
            SyslogTransport::Tcp | SyslogTransport::Tls { .. } => {
                let stream = TcpStream::connect_timeout(&addr, self.timeout)?;
                stream.set_write_timeout(Some(self.timeout))?;
                stream.set_read_timeout(Some(self.timeout))?;
                stream.set_nodelay(true)?;
                match &self.tls {
                    None => Ok(Connection::Tcp(stream)),
                    Some((config, name)) => {
                        let conn = rustls::ClientConnection::new(Arc::clone(config), name.clone())
                            .map_err(io::Error::other)?;
                        let mut tls = rustls::StreamOwned::new(conn, stream);
                        // Handshake now so a certificate problem is reported as such.
                        while tls.conn.is_handshaking() {
                            tls.conn.complete_io(&mut tls.sock)?;
                        }
                        Ok(Connection::Tls(Box::new(tls)))
                    }
                }
            }
        }
    }
}

fn host_of(address: &str) -> &str {
    let host = match address.rsplit_once(':') {
        Some((host, _)) => host,
        None => address,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Deliver for SyslogSink {
    fn encode(&mut self, ev: &Event, out: &mut Vec<u8>) -> Result<(), String> {
        let pri = u16::from(self.facility) * 8 + u16::from(syslog_severity(ev.severity()));
        let header = format!(
            "<{pri}>1 {} {} {} {} {} - ",
            rfc3339_millis(ev.time_ms()),
            self.hostname,
            self.app_name,
            self.procid,
            msgid(ev.class_uid()),
        );
        out.extend_from_slice(header.as_bytes());
        match self.format {
            SyslogFormat::Json => ev.write_json(&mut *out).map_err(|e| e.to_string()),
            SyslogFormat::Cef => {
                out.extend_from_slice(cef_line(ev).as_bytes());
                Ok(())
            }
        }
    }

    fn send(&mut self, records: &[&[u8]]) -> SendOutcome {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => match self.connect() {
                Ok(conn) => self.conn.insert(conn),
                Err(err) => {
                    return SendOutcome::retry_all(
                        records.len(),
                        format!("syslog {}: connect: {err}", self.address),
                    );
                }
            },
        };
        let result = match conn {
            Connection::Udp(socket) => {
                for (i, record) in records.iter().enumerate() {
                    if let Err(err) = socket.send(record) {
                        let msg = format!("syslog {}: send: {err}", self.address);
                        // A datagram too large for UDP can never be sent.
                        if err.raw_os_error() == Some(EMSGSIZE) {
                            let mut outcome = SendOutcome::retry_from(i + 1, records.len(), msg);
                            outcome.rejected.push(i);
                            self.conn = None;
                            return outcome;
                        }
                        self.conn = None;
                        return SendOutcome::retry_from(i, records.len(), msg);
                    }
                }
                Ok(())
            }
            Connection::Tcp(stream) => write_frames(&mut self.frame, records, stream),
            Connection::Tls(stream) => write_frames(&mut self.frame, records, stream.as_mut()),
        };
        match result {
            Ok(()) => SendOutcome::delivered(),
            Err(err) => {
                // The stream's state is unknown after an error: start afresh.
                self.conn = None;
                SendOutcome::retry_all(
                    records.len(),
                    format!("syslog {}: write: {err}", self.address),
                )
            }
        }
    }
}

/// Writes `records` octet-counted (`LEN SP MSG`) in one buffer.
fn write_frames<W: Write>(frame: &mut Vec<u8>, records: &[&[u8]], out: &mut W) -> io::Result<()> {
    frame.clear();
    for record in records {
        frame.extend_from_slice(record.len().to_string().as_bytes());
        frame.push(b' ');
        frame.extend_from_slice(record);
    }
    out.write_all(frame)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_767_225_599_999),
            "2025-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn header_fields_stay_within_the_grammar() {
        assert_eq!(header_field("my app", 48), "myapp");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"x".repeat(60), 48).len(), 48);
    }

    #[test]
    fn octet_counting_prefixes_each_message_with_its_length() -> io::Result<()> {
        let mut out = Vec::new();
        write_frames(&mut Vec::new(), &[b"abc", "é".as_bytes()], &mut out)?;
        assert_eq!(out, b"3 abc2 \xc3\xa9");
        Ok(())
    }
}
