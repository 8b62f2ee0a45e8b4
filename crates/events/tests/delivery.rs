//! Delivery guarantees: emit never blocks, counters are exact, shutdown
//! flushes, files rotate within their limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use portcullis_events::{Emitter, EmitterConfig, Redactor, SinkConfig};
use serde_json::Value;
use support::{TestResult, event, file_emitter, read_json_lines, request_number, rotated};

const SHUTDOWN: Duration = Duration::from_secs(60);

/// Runs `threads` emitters of `per_thread` events each and returns once all
/// are done, or fails after `limit` (which would mean emit blocked).
fn burst(emitter: &Emitter, threads: usize, per_thread: usize, limit: Duration) -> TestResult {
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..threads {
        let emitter = emitter.clone();
        let done_tx = done_tx.clone();
        thread::spawn(move || {
            for i in 0..per_thread {
                emitter.emit(event(t * per_thread + i));
            }
            let _ = done_tx.send(());
        });
    }
    for _ in 0..threads {
        done_rx
            .recv_timeout(limit)
            .map_err(|_| "emit blocked: a burst thread did not finish")?;
    }
    Ok(())
}

#[test]
fn shutdown_flushes_every_queued_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 16_384, Redactor::default())?;
    for n in 0..10_000 {
        emitter.emit(event(n));
    }
    emitter.shutdown(SHUTDOWN);

    assert_eq!((emitter.emitted(), emitter.dropped()), (10_000, 0));
    let lines = read_json_lines(&path)?;
    assert_eq!(lines.len(), 10_000);
    for (n, line) in lines.iter().enumerate() {
        assert_eq!(request_number(line)?, n, "lines must keep emit order");
    }
    Ok(())
}

#[test]
fn emit_never_blocks_and_counts_every_attempt_on_a_tiny_queue() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 4, Redactor::default())?;

    burst(&emitter, 8, 1_250, Duration::from_secs(60))?;
    emitter.shutdown(SHUTDOWN);

    let (emitted, dropped) = (emitter.emitted(), emitter.dropped());
    assert_eq!(emitted + dropped, 10_000);
    let lines = read_json_lines(&path)?;
    assert_eq!(
        lines.len() as u64,
        emitted,
        "every accepted event must be written"
    );
    let distinct: BTreeSet<usize> = lines.iter().map(request_number).collect::<Result<_, _>>()?;
    assert_eq!(distinct.len(), lines.len(), "no event may be written twice");
    Ok(())
}

/// A pipe nobody reads stands in for a sink that has stopped accepting
/// data: the writer thread blocks in `write`, the queue fills, and emit
/// must still return at once.
#[cfg(target_os = "linux")]
#[test]
fn emit_never_blocks_when_the_sink_is_stuck() -> TestResult {
    use std::os::fd::AsRawFd;

    let (reader, writer) = std::io::pipe()?;
    let pipe_path = format!("/proc/self/fd/{}", writer.as_raw_fd());
    let cfg = EmitterConfig {
        sinks: vec![SinkConfig::File {
            path: pipe_path.into(),
            max_bytes: u64::MAX,
            max_files: 1,
        }],
        queue_capacity: 64,
    };
    let emitter = Emitter::start(cfg, Redactor::default())?;

    burst(&emitter, 8, 10_000, Duration::from_secs(120))?;
    assert_eq!(emitter.emitted() + emitter.dropped(), 80_000);
    assert!(
        emitter.dropped() > 0,
        "a stuck sink must make the queue overflow"
    );

    // Shutdown cannot drain a stuck sink; it must give up at its deadline.
    let started = Instant::now();
    emitter.shutdown(Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown ignored its deadline"
    );

    // Closing the read end turns the stuck write into an error, which is
    // counted rather than fatal.
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(30);
    while emitter.write_errors() == 0 {
        if Instant::now() > deadline {
            return Err("write error on a closed pipe was not counted".into());
        }
        thread::sleep(Duration::from_millis(10));
    }
    drop(writer);
    Ok(())
}

#[test]
fn a_quiet_gateway_file_is_current_without_shutdown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let emitter = file_emitter(&path, 64, Redactor::default())?;
    emitter.emit(event(42));

    // The writer flushes as soon as its queue is empty; allow for a loaded
    // machine but do not call shutdown.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = read_json_lines(&path)?;
        if let Some(line) = lines.first() {
            assert_eq!(request_number(line)?, 42);
            break;
        }
        if Instant::now() > deadline {
            return Err("event not flushed while the gateway was idle".into());
        }
        thread::sleep(Duration::from_millis(5));
    }
    emitter.shutdown(SHUTDOWN);
    Ok(())
}

/// Lines of `path`, `path.1`, ... `path.{max_files}` from oldest to newest.
fn read_rotated_set(path: &Path, max_files: u32) -> TestResult<Vec<Vec<Value>>> {
    let mut files = Vec::new();
    for n in (1..=max_files).rev() {
        let p = rotated(path, n);
        if p.exists() {
            files.push(read_json_lines(&p)?);
        }
    }
    files.push(read_json_lines(path)?);
    Ok(files)
}

fn assert_sizes_within(path: &Path, max_files: u32, max_bytes: u64) -> TestResult {
    for n in 0..=max_files {
        let p = if n == 0 {
            path.to_owned()
        } else {
            rotated(path, n)
        };
        if p.exists() {
            let size = fs::metadata(&p)?.len();
            assert!(
                size <= max_bytes,
                "{} is {size} bytes, over {max_bytes}",
                p.display()
            );
        }
    }
    Ok(())
}

#[test]
fn rotation_keeps_at_most_max_files_and_the_newest_lines() -> TestResult {
    const MAX_BYTES: u64 = 4_096;
    const MAX_FILES: u32 = 3;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let cfg = EmitterConfig {
        sinks: vec![SinkConfig::File {
            path: path.clone(),
            max_bytes: MAX_BYTES,
            max_files: MAX_FILES,
        }],
        queue_capacity: 1_024,
    };
    let emitter = Emitter::start(cfg, Redactor::default())?;
    for n in 0..200 {
        emitter.emit(event(n));
    }
    emitter.shutdown(SHUTDOWN);
    assert_eq!(emitter.emitted(), 200);

    for n in 1..=MAX_FILES {
        assert!(
            rotated(&path, n).exists(),
            "{} missing",
            rotated(&path, n).display()
        );
    }
    assert!(
        !rotated(&path, MAX_FILES + 1).exists(),
        "more than max_files rotated files kept"
    );
    assert_sizes_within(&path, MAX_FILES, MAX_BYTES)?;

    // What survives is a contiguous run ending with the newest event.
    let kept: Vec<usize> = read_rotated_set(&path, MAX_FILES)?
        .iter()
        .flatten()
        .map(request_number)
        .collect::<Result<_, _>>()?;
    assert!(!kept.is_empty() && kept.len() < 200);
    let first = kept[0];
    assert_eq!(kept, (first..200).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn rotation_preserves_every_line_when_history_is_large_enough() -> TestResult {
    const MAX_BYTES: u64 = 4_096;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let cfg = EmitterConfig {
        sinks: vec![SinkConfig::File {
            path: path.clone(),
            max_bytes: MAX_BYTES,
            max_files: 1_000,
        }],
        queue_capacity: 1_024,
    };
    let emitter = Emitter::start(cfg, Redactor::default())?;
    for n in 0..200 {
        emitter.emit(event(n));
    }
    emitter.shutdown(SHUTDOWN);

    assert!(rotated(&path, 2).exists(), "expected several rotations");
    assert_sizes_within(&path, 1_000, MAX_BYTES)?;
    let all: Vec<usize> = read_rotated_set(&path, 1_000)?
        .iter()
        .flatten()
        .map(request_number)
        .collect::<Result<_, _>>()?;
    assert_eq!(all, (0..200).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn every_sink_receives_every_event() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let cfg = EmitterConfig {
        sinks: vec![
            SinkConfig::File {
                path: a.clone(),
                max_bytes: u64::MAX,
                max_files: 1,
            },
            SinkConfig::File {
                path: b.clone(),
                max_bytes: u64::MAX,
                max_files: 1,
            },
        ],
        queue_capacity: 1_024,
    };
    let emitter = Emitter::start(cfg, Redactor::default())?;
    for n in 0..100 {
        emitter.emit(event(n));
    }
    emitter.shutdown(SHUTDOWN);
    assert_eq!(fs::read(&a)?, fs::read(&b)?);
    assert_eq!(read_json_lines(&a)?.len(), 100);
    Ok(())
}
