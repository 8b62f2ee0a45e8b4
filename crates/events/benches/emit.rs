//! Criterion benchmarks: the request-path cost of `Emitter::emit`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// What is measured: one `emit` call of a typical request event (redaction of its headers and
// query, one `Arc` allocation, a `try_send` per sink), i.e. what a request task pays. The
// event is cloned outside the measurement (`iter_batched`). The sink threads run concurrently
// and compete for the same two cores, as they do in the gateway.
//
// - `emit/file`: one file sink writing to /dev/null (every event is serialized and written).
// - `emit/file+syslog+hec_dead`: the file sink plus a syslog UDP sink and a Splunk HEC sink
//   whose endpoint is down, each with a 1024-event queue: once those queues are full (at once),
//   each emit also takes the "queue full, count the drop" path for two sinks.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use portcullis_events::{
    Action, BatchConfig, Emitter, EmitterConfig, HttpActivity, Redactor, Secret, SinkConfig,
    SplunkHecConfig, SyslogConfig, SyslogTransport,
};

fn request_event() -> HttpActivity {
    HttpActivity {
        time_ms: 1_700_000_000_000,
        request_id: "01JH6Z8V2K4M9Q7R3T5W".to_owned(),
        client_ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 42)),
        client_port: 51_522,
        tls: None,
        http_version: "HTTP/1.1".to_owned(),
        method: "GET".to_owned(),
        scheme: "https".to_owned(),
        host: "api.example.com".to_owned(),
        path: "/v1/orders".to_owned(),
        query: Some("api_key=abc123&page=2".to_owned()),
        headers: vec![
            ("authorization".to_owned(), "Bearer abc.def.ghi".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
            ("user-agent".to_owned(), "curl/8.5.0".to_owned()),
        ],
        user_agent: Some("curl/8.5.0".to_owned()),
        status: 200,
        bytes_in: 0,
        bytes_out: 512,
        duration_us: 842,
        route: Some("orders".to_owned()),
        upstream: Some("10.0.0.5:8080".to_owned()),
        action: Action::Allowed,
        reason: None,
        findings: Vec::new(),
        actor: None,
        attempted_user: None,
        operation: None,
    }
}

fn dev_null() -> SinkConfig {
    SinkConfig::File {
        path: "/dev/null".into(),
        max_bytes: u64::MAX,
        max_files: 1,
    }
}

fn bench_emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("emit");
    let ev = request_event();

    let file_only = Emitter::start(
        EmitterConfig {
            sinks: vec![dev_null()],
            queue_capacity: 65_536,
        },
        Redactor::default(),
    )
    .unwrap();
    group.bench_function("file", |b| {
        b.iter_batched(
            || ev.clone(),
            |ev| file_only.emit(black_box(ev)),
            BatchSize::SmallInput,
        )
    });
    file_only.shutdown(Duration::from_secs(30));
    eprintln!("file: {:?}", file_only.sink_stats());

    // A loopback port with nothing behind it.
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let small = BatchConfig {
        queue_capacity: Some(1024),
        timeout: Duration::from_millis(200),
        ..BatchConfig::default()
    };
    let fan_out = Emitter::start(
        EmitterConfig {
            sinks: vec![
                dev_null(),
                SinkConfig::Syslog(SyslogConfig {
                    address: format!("127.0.0.1:{dead_port}"),
                    transport: SyslogTransport::Udp,
                    batch: small.clone(),
                    ..SyslogConfig::default()
                }),
                SinkConfig::SplunkHec(SplunkHecConfig {
                    url: format!("http://127.0.0.1:{dead_port}"),
                    token: Secret::new("t"),
                    batch: small,
                    ..SplunkHecConfig::default()
                }),
            ],
            queue_capacity: 65_536,
        },
        Redactor::default(),
    )
    .unwrap();
    group.bench_function("file+syslog+hec_dead", |b| {
        b.iter_batched(
            || ev.clone(),
            |ev| fan_out.emit(black_box(ev)),
            BatchSize::SmallInput,
        )
    });
    fan_out.shutdown(Duration::from_secs(1));
    eprintln!("file+syslog+hec_dead: {:?}", fan_out.sink_stats());
    group.finish();
}

criterion_group!(benches, bench_emit);
criterion_main!(benches);
