//! Sinks are isolated from the request path and from each other: a dead or
//! hanging SIEM fills only its own queue (its losses are counted), `emit`
//! stays fast, other sinks keep delivering, and the file sink retries failed
//! writes until nothing it accepted is lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_events::{
    BatchConfig, ElasticBulkConfig, Emitter, EmitterConfig, Redactor, Secret, SinkConfig,
    SplunkHecConfig,
};
use support::http_receiver::Receiver;
use support::{
    TestResult, event, file_sink, free_port, read_json_lines, request_number, rotated, wait_for,
};

const EVENTS: usize = 20_000;
const THREADS: usize = 4;

fn hec_to(url: String, queue: usize) -> SinkConfig {
    SinkConfig::SplunkHec(SplunkHecConfig {
        url,
        token: Secret::new("t"),
        batch: BatchConfig {
            flush_interval: Duration::from_millis(50),
            max_retries: 3,
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_millis(200),
            queue_capacity: Some(queue),
            timeout: Duration::from_secs(1),
            ..BatchConfig::default()
        },
        ..SplunkHecConfig::default()
    })
}

#[test]
fn dead_and_hanging_siems_slow_neither_emit_nor_the_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    // Nothing listens on `dead`; `hanging` accepts and answers only after a minute.
    let dead = format!("http://127.0.0.1:{}", free_port()?);
    let hanging = Receiver::start(
        Box::new(|_, _| (200, "{}".to_owned())),
        Some(Duration::from_secs(60)),
    )?;
    let cfg = EmitterConfig {
        sinks: vec![
            file_sink(&path),
            hec_to(dead, 64),
            SinkConfig::ElasticBulk(ElasticBulkConfig {
                url: hanging.url(),
                batch: BatchConfig {
                    queue_capacity: Some(64),
                    timeout: Duration::from_secs(30),
                    ..BatchConfig::default()
                },
                ..ElasticBulkConfig::default()
            }),
        ],
        // The file's queue is four times this: room for the whole burst.
        queue_capacity: EVENTS / 2,
    };
    let emitter = Emitter::start(cfg, Redactor::default())?;

    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..THREADS {
        let emitter = emitter.clone();
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            let mut slowest = Duration::ZERO;
            for i in 0..EVENTS / THREADS {
                let one = Instant::now();
                emitter.emit(event(t * (EVENTS / THREADS) + i));
                slowest = slowest.max(one.elapsed());
            }
            let _ = done_tx.send(slowest);
        });
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..THREADS {
        slowest = slowest.max(done_rx.recv_timeout(Duration::from_secs(60))?);
    }
    let burst = started.elapsed();
    // Two network sinks that cannot deliver anything: a blocking emit would
    // take at least a connect timeout (1 s) or the hanging reply (60 s).
    assert!(burst < Duration::from_secs(20), "emit burst took {burst:?}");
    assert!(
        slowest < Duration::from_millis(900),
        "one emit took {slowest:?}"
    );
    assert_eq!(emitter.emitted() + emitter.dropped(), EVENTS as u64);
    assert!(
        emitter.dropped() > 0,
        "the dead sinks' small queues must overflow"
    );

    // The file gets every event while the other sinks are still stuck.
    let lines = wait_for(Duration::from_secs(60), "every event in the file", || {
        let lines = read_json_lines(&path).ok()?;
        (lines.len() == EVENTS).then_some(lines)
    })?;
    let numbers: BTreeSet<usize> = lines.iter().map(|l| request_number(l).unwrap()).collect();
    assert_eq!(numbers.len(), EVENTS);

    let stats = emitter.sink_stats();
    assert_eq!(
        (stats[0].kind, stats[0].delivered, stats[0].dropped),
        ("file", EVENTS as u64, 0)
    );
    assert_eq!(stats[1].kind, "splunk_hec");
    assert_eq!(stats[1].delivered, 0);
    assert!(stats[1].dropped > 0, "{:?}", stats[1]);
    assert!(stats[1].queue_len <= 64, "{:?}", stats[1]);
    assert_eq!(stats[2].delivered, 0);
    assert!(stats[2].dropped > 0, "{:?}", stats[2]);
    // Once the first attempts have failed, the dead endpoint's retries show.
    wait_for(Duration::from_secs(30), "HEC retries to be counted", || {
        (emitter.sink_stats()[1].retries > 0).then_some(())
    })?;
    assert!(emitter.write_errors() > 0);

    // Shutdown gives the stuck sinks up at its deadline.
    let stopping = Instant::now();
    emitter.shutdown(Duration::from_millis(500));
    assert!(
        stopping.elapsed() < Duration::from_secs(10),
        "shutdown ignored its deadline"
    );
    Ok(())
}

#[test]
fn a_slow_siem_does_not_delay_another_one() -> TestResult {
    let ok = |_: &support::http_receiver::Captured, _| (200, "{}".to_owned());
    // The slow one answers only after a minute: long past the end of this test.
    let slow = Receiver::start(Box::new(ok), Some(Duration::from_secs(60)))?;
    let fast = Receiver::start(Box::new(ok), None)?;
    let mut slow_cfg = hec_to(slow.url(), 1024);
    if let SinkConfig::SplunkHec(cfg) = &mut slow_cfg {
        cfg.batch.timeout = Duration::from_secs(120);
    }
    let emitter = Emitter::start(
        EmitterConfig {
            sinks: vec![slow_cfg, hec_to(fast.url(), 1024)],
            queue_capacity: 1024,
        },
        Redactor::default(),
    )?;
    for n in 0..10 {
        emitter.emit(event(n));
    }
    wait_for(
        Duration::from_secs(30),
        "the fast SIEM to get every event",
        || (emitter.sink_stats()[1].delivered == 10).then_some(()),
    )?;
    wait_for(
        Duration::from_secs(30),
        "the slow SIEM to be sent its batch",
        || (!slow.requests().is_empty()).then_some(()),
    )?;
    let stats = emitter.sink_stats();
    assert_eq!(stats[0].delivered, 0, "the slow one is still answering");
    assert_eq!(fast.requests().len(), 1);

    // Shutdown gives the slow one up at the deadline and counts its events as dropped.
    emitter.shutdown(Duration::from_millis(300));
    let stats = emitter.sink_stats();
    assert_eq!((stats[1].delivered, stats[1].dropped), (10, 0));
    // (The slow sink's in-flight request runs to its own timeout; then its thread counts the
    // batch as dropped and ends.)
    Ok(())
}

/// Removing the log directory makes every rotation fail (the new file cannot
/// be created); the file sink keeps the lines, retries with backoff, and
/// writes them all once the directory is back.
#[test]
fn the_file_sink_retries_failed_writes_and_loses_nothing() -> TestResult {
    let root = tempfile::tempdir()?;
    let logs = root.path().join("logs");
    fs::create_dir(&logs)?;
    let path = logs.join("events.jsonl");
    let emitter = Emitter::start(
        EmitterConfig {
            // Every line rotates: each event needs a new file to be created.
            sinks: vec![SinkConfig::File {
                path: path.clone(),
                max_bytes: 10,
                max_files: 100,
            }],
            queue_capacity: 256,
        },
        Redactor::default(),
    )?;
    emitter.emit(event(0));
    wait_for(Duration::from_secs(30), "the first line", || {
        (emitter.sink_stats()[0].delivered == 1).then_some(())
    })?;

    fs::remove_dir_all(&logs)?;
    for n in 1..=50 {
        emitter.emit(event(n));
    }
    wait_for(
        Duration::from_secs(30),
        "failed writes to be retried",
        || (emitter.sink_stats()[0].retries >= 2).then_some(()),
    )?;
    assert_eq!(emitter.sink_stats()[0].delivered, 1);
    assert!(emitter.write_errors() >= 2);

    fs::create_dir(&logs)?;
    emitter.shutdown(Duration::from_secs(30));
    let stats = &emitter.sink_stats()[0];
    assert_eq!((stats.delivered, stats.dropped), (51, 0));
    let mut numbers = BTreeSet::new();
    for n in 0..=100 {
        let file = if n == 0 {
            path.clone()
        } else {
            rotated(&path, n)
        };
        if file.exists() {
            for line in read_json_lines(&file)? {
                assert!(
                    numbers.insert(request_number(&line)?),
                    "a line was written twice"
                );
            }
        }
    }
    assert_eq!(numbers, (1..=50).collect::<BTreeSet<_>>());
    Ok(())
}
