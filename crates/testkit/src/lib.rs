//! Test harness parts shared by several crates' suites. Only ever a dev-dependency.
//!
//! A throwaway `redis-server` per test: started on a free loopback port with persistence off,
//! answering PING before the test goes on, killed (SIGKILL, as a crash) on demand and on drop,
//! and restartable on the same port. Suites need a real Redis and fail, never skip, when
//! `redis-server` is missing (`scripts/test.sh` installs the Debian package).

// A harness reports a broken environment by panicking, like the tests that use it.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a fresh server gets to answer PING.
const STARTUP: Duration = Duration::from_secs(10);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// A server on a port nobody was using a moment ago (retried if another process takes it
    /// first).
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(port) {
                return RedisServer {
                    child: Some(child),
                    port,
                };
            }
        }
        panic!("redis-server did not come up on a free loopback port in 5 attempts");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server abruptly, as a crash would (no goodbye to clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new server on the SAME port (the port may take a moment to be free again).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + STARTUP;
        while Instant::now() < deadline {
            if let Some(child) = spawn(self.port) {
                self.child = Some(child);
                return;
            }
            sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Spawns `redis-server` on `port` and waits for PING; `None` if it exits or stays silent.
fn spawn(port: u16) -> Option<Child> {
    let dir = std::env::temp_dir();
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--daemonize", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "redis-server is not installed: the shared rate-limit and block-list tests need a real Redis and do \
             not skip. Install it with `apt-get install -y redis-server`."
        ),
        Err(e) => panic!("cannot start redis-server: {e}"),
    };
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if ping(port) {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            // Exited: most likely the port was taken meanwhile.
            return None;
        }
        sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A raw inline PING, so readiness does not depend on the client under test.
pub fn ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}
