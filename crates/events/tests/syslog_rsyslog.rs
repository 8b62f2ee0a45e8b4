//! The syslog sink against a real rsyslog (Debian package `rsyslog` plus
//! `rsyslog-openssl`), started by the test on free loopback ports with its
//! own configuration: UDP (imudp), TCP (imptcp) and TLS (imtcp with the
//! OpenSSL stream driver and a certificate the test makes with rcgen).
//! rsyslog parses each message as RFC 5424 and writes the parsed header
//! fields and the MSG to a file per input, which the test then checks.
//!
//! The stream transports send messages back to back with no line breaks, so
//! rsyslog can only split them correctly by their octet counts: every message
//! arriving intact and separate proves RFC 6587 octet counting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use portcullis_events::{
    BatchConfig, Emitter, EmitterConfig, Redactor, SinkConfig, SyslogConfig, SyslogFormat,
    SyslogTransport,
};
use serde_json::Value;
use support::{
    TestResult, auth_events, detection_events, event, free_port, full_http_event, wait_for,
    write_test_pki,
};

const WAIT: Duration = Duration::from_secs(30);

/// One line per received message, as written by the rsyslog template below.
#[derive(Debug)]
struct Received {
    pri: u32,
    version: String,
    timestamp: String,
    hostname: String,
    app_name: String,
    procid: String,
    msgid: String,
    structured_data: String,
    msg: String,
    raw: String,
}

fn parse_received(line: &str) -> Received {
    // Fields are separated by a byte that never occurs in a message.
    let fields: Vec<&str> = line.split('\u{1f}').collect();
    assert_eq!(fields.len(), 10, "unexpected rsyslog output line: {line}");
    Received {
        pri: fields[0].parse().unwrap(),
        version: fields[1].to_owned(),
        timestamp: fields[2].to_owned(),
        hostname: fields[3].to_owned(),
        app_name: fields[4].to_owned(),
        procid: fields[5].to_owned(),
        msgid: fields[6].to_owned(),
        structured_data: fields[7].to_owned(),
        msg: fields[8].to_owned(),
        raw: fields[9].to_owned(),
    }
}

/// A running rsyslogd that is killed when the test ends.
struct Rsyslog {
    child: Child,
    dir: tempfile::TempDir,
    udp: u16,
    tcp: u16,
    tls: u16,
    ca: PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsyslogd() -> TestResult<PathBuf> {
    for candidate in ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"] {
        if Path::new(candidate).exists() {
            return Ok(candidate.into());
        }
    }
    Err(
        "rsyslogd not found: install the Debian packages rsyslog and rsyslog-openssl \
         (scripts/test.sh does)"
            .into(),
    )
}

impl Rsyslog {
    fn start() -> TestResult<Rsyslog> {
        let binary = rsyslogd()?;
        let dir = tempfile::tempdir()?;
        let (ca, cert, key) = write_test_pki(dir.path())?;
        let (udp, tcp, tls) = (free_port()?, free_port()?, free_port()?);
        let d = dir.path().display();
        let config = format!(
            r#"global(workDirectory="{d}"
       DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}"
       maxMessageSize="256k")
template(name="fields" type="string"
         string="%pri%\x1f%protocol-version%\x1f%timereported:::date-rfc3339%\x1f%hostname%\x1f%app-name%\x1f%procid%\x1f%msgid%\x1f%structured-data%\x1f%msg%\x1f%rawmsg%\n")
module(load="imudp")
module(load="imptcp")
module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="udp")
input(type="imptcp" address="127.0.0.1" port="{tcp}" ruleset="tcp")
input(type="imtcp" address="127.0.0.1" port="{tls}" ruleset="tls")
ruleset(name="udp") {{ action(type="omfile" file="{d}/udp.log" template="fields") }}
ruleset(name="tcp") {{ action(type="omfile" file="{d}/tcp.log" template="fields") }}
ruleset(name="tls") {{ action(type="omfile" file="{d}/tls.log" template="fields") }}
"#,
            ca = ca.display(),
            cert = cert.display(),
            key = key.display(),
        )
        .replace("\\x1f", "\u{1f}");
        let conf = dir.path().join("rsyslog.conf");
        fs::write(&conf, config)?;
        let check = Command::new(&binary)
            .arg("-N1")
            .arg("-f")
            .arg(&conf)
            .output()?;
        if !check.status.success() {
            return Err(format!(
                "rsyslog rejected the test configuration: {}",
                String::from_utf8_lossy(&check.stderr)
            )
            .into());
        }
        let child = Command::new(&binary)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let rsyslog = Rsyslog {
            child,
            dir,
            udp,
            tcp,
            tls,
            ca,
        };
        for port in [tcp, tls] {
            wait_for(WAIT, "rsyslog to listen", || {
                TcpStream::connect(("127.0.0.1", port)).ok()
            })?;
        }
        Ok(rsyslog)
    }

    fn sink(&self, transport: SyslogTransport, format: SyslogFormat) -> SinkConfig {
        let port = match transport {
            SyslogTransport::Udp => self.udp,
            SyslogTransport::Tcp => self.tcp,
            SyslogTransport::Tls { .. } => self.tls,
        };
        SinkConfig::Syslog(SyslogConfig {
            address: format!("127.0.0.1:{port}"),
            transport,
            format,
            app_name: "portcullis-test".to_owned(),
            facility: 13,
            hostname: Some("gw-1.example".to_owned()),
            batch: BatchConfig {
                flush_interval: Duration::from_millis(20),
                backoff_initial: Duration::from_millis(20),
                ..BatchConfig::default()
            },
        })
    }

    fn tls(&self) -> SyslogTransport {
        SyslogTransport::Tls {
            ca_file: Some(self.ca.clone()),
            server_name: Some("localhost".to_owned()),
        }
    }

    /// Waits until `file` holds `count` messages and returns them.
    fn received(&self, file: &str, count: usize) -> TestResult<Vec<Received>> {
        let path = self.dir.path().join(file);
        let lines = wait_for(WAIT, &format!("{count} messages in {file}"), || {
            let text = fs::read_to_string(&path).ok()?;
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            (lines.len() >= count).then_some(lines)
        })?;
        assert_eq!(lines.len(), count, "more messages than sent in {file}");
        Ok(lines.iter().map(|l| parse_received(l)).collect())
    }
}

fn emit_mixed(emitter: &Emitter) {
    emitter.emit(event(1));
    emitter.emit(full_http_event(2));
    for ev in auth_events() {
        emitter.emit_authentication(ev);
    }
    for ev in detection_events() {
        emitter.emit_detection(ev);
    }
    emitter.emit_lifecycle("reload_failed", "config rejected");
}

/// The RFC 5424 header rsyslog parsed, and the OCSF JSON as MSG.
fn assert_json_messages(received: &[Received]) {
    let expected = [
        // (msgid, class_uid, severity: Info→6, High→3, Low→5, Medium→4)
        ("http_activity", 4002, 6),
        ("http_activity", 4002, 3),
        ("authentication", 3002, 5),
        ("authentication", 3002, 6),
        ("detection_finding", 2004, 4),
        ("detection_finding", 2004, 3),
        ("app_lifecycle", 6002, 4),
    ];
    assert_eq!(received.len(), expected.len());
    let pid = std::process::id().to_string();
    for (got, (msgid, class, severity)) in received.iter().zip(expected) {
        assert_eq!(got.pri, 13 * 8 + severity, "{got:?}");
        assert_eq!(got.version, "1");
        assert_eq!(got.hostname, "gw-1.example");
        assert_eq!(got.app_name, "portcullis-test");
        assert_eq!(got.procid, pid);
        assert_eq!(got.msgid, msgid);
        assert_eq!(got.structured_data, "-");
        assert!(
            got.raw.starts_with(&format!("<{}>1 ", got.pri)),
            "{}",
            got.raw
        );
        let json: Value = serde_json::from_str(&got.msg)
            .unwrap_or_else(|e| panic!("MSG is not JSON ({e}): {}", got.msg));
        assert_eq!(json["class_uid"], class);
        assert_eq!(json["severity_id"], ocsf_severity_for(severity));
    }
    // The event time is the RFC 5424 TIMESTAMP.
    assert_eq!(received[0].timestamp, "2023-11-14T22:13:20.001Z");
}

/// The OCSF severity id behind a syslog severity in these fixtures.
fn ocsf_severity_for(syslog: u32) -> u64 {
    match syslog {
        6 => 1,
        5 => 2,
        4 => 3,
        3 => 4,
        _ => 5,
    }
}

fn run(rsyslog: &Rsyslog, sink: SinkConfig) -> TestResult<Emitter> {
    let emitter = Emitter::start(
        EmitterConfig {
            sinks: vec![sink],
            queue_capacity: 1024,
        },
        Redactor::default(),
    )?;
    emit_mixed(&emitter);
    emitter.shutdown(WAIT);
    let _ = rsyslog;
    Ok(emitter)
}

#[test]
fn rfc5424_json_over_udp_tcp_and_tls_reaches_rsyslog() -> TestResult {
    let rsyslog = Rsyslog::start()?;
    let udp = run(
        &rsyslog,
        rsyslog.sink(SyslogTransport::Udp, SyslogFormat::Json),
    )?;
    let tcp = run(
        &rsyslog,
        rsyslog.sink(SyslogTransport::Tcp, SyslogFormat::Json),
    )?;
    let tls = run(&rsyslog, rsyslog.sink(rsyslog.tls(), SyslogFormat::Json))?;
    for (file, emitter) in [("udp.log", &udp), ("tcp.log", &tcp), ("tls.log", &tls)] {
        let received = rsyslog.received(file, 7)?;
        assert_json_messages(&received);
        let stats = &emitter.sink_stats()[0];
        assert_eq!(
            (stats.kind, stats.delivered, stats.dropped),
            ("syslog", 7, 0),
            "{file}"
        );
    }
    Ok(())
}

#[test]
fn cef_lines_reach_rsyslog_with_escaping_intact() -> TestResult {
    let rsyslog = Rsyslog::start()?;
    run(
        &rsyslog,
        rsyslog.sink(SyslogTransport::Tcp, SyslogFormat::Cef),
    )?;
    let received = rsyslog.received("tcp.log", 7)?;
    let version = env!("CARGO_PKG_VERSION");
    for got in &received {
        assert!(
            got.msg
                .starts_with(&format!("CEF:0|Portcullis|Portcullis|{version}|")),
            "{}",
            got.msg
        );
    }
    assert!(received[0].msg.starts_with(&format!(
        "CEF:0|Portcullis|Portcullis|{version}|4002|HTTP Get|1|rt=1700000000001 src=198.51.100.23 spt=40000 requestMethod=GET request=http://api.example.com/v1/items?page\\=2 "
    )), "{}", received[0].msg);
    // The full detection: `|` escaped in the header, `=` and the newline in extensions.
    let detection = &received[5].msg;
    assert!(
        detection.contains(
            "|5d3a1f0e-0000-4000-8000-000000000002|Password spraying \\| many users = one IP|8|"
        ),
        "{detection}"
    );
    assert!(
        detection.contains("msg=Many failed logins\\nfrom one address"),
        "{detection}"
    );
    assert!(
        detection.contains("act=blocked ip for 600s; webhook"),
        "{detection}"
    );
    assert!(
        detection.contains("cs1Label=attack cs1=TA0006,T1110,T1110.003,TA0001"),
        "{detection}"
    );
    assert!(
        received[2].msg.contains("|3002|Authentication failure|3|"),
        "{}",
        received[2].msg
    );
    assert_eq!(received[6].pri, 13 * 8 + 4);
    Ok(())
}

#[test]
fn tls_refuses_a_server_the_ca_file_does_not_vouch_for() -> TestResult {
    let rsyslog = Rsyslog::start()?;
    // A CA that did not sign rsyslog's certificate.
    let other = tempfile::tempdir()?;
    let (other_ca, _, _) = write_test_pki(other.path())?;
    let mut sink = rsyslog.sink(
        SyslogTransport::Tls {
            ca_file: Some(other_ca),
            server_name: Some("localhost".to_owned()),
        },
        SyslogFormat::Json,
    );
    if let SinkConfig::Syslog(cfg) = &mut sink {
        cfg.batch.max_retries = 1;
    }
    let emitter = Emitter::start(
        EmitterConfig {
            sinks: vec![sink],
            queue_capacity: 16,
        },
        Redactor::default(),
    )?;
    emitter.emit(event(1));
    emitter.shutdown(WAIT);
    let stats = &emitter.sink_stats()[0];
    assert_eq!((stats.delivered, stats.dropped, stats.retries), (0, 1, 1));
    assert!(emitter.write_errors() >= 2);
    assert!(!rsyslog.dir.path().join("tls.log").exists());
    Ok(())
}
