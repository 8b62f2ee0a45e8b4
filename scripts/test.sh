#!/usr/bin/env bash
# Run every test Portcullis has, installing what the tests need first.
# Works on a fresh Debian machine with the Rust toolchain; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# Real components the test suites start themselves (see docs/testing.md).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# htpasswd: the Basic-auth suite also verifies an entry made by the real tool at test time.
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
# A real redis-server: the shared rate-limit and block-list suites start their own.
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# A real rsyslog with its OpenSSL stream driver: the events crate's syslog suite starts its own
# (UDP, TCP and TLS listeners) and checks what it parsed.
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
dpkg -s rsyslog-openssl >/dev/null 2>&1 || need+=(rsyslog-openssl)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# The TLS stack must be aws-lc-rs only: fail if ring ever enters the build graph.
ring_users=$(cargo tree --workspace --edges normal,build --invert ring --quiet 2>/dev/null || true)
if [ -n "$ring_users" ]; then
  echo "ring is in the dependency tree (use the aws-lc-rs provider):" >&2
  echo "$ring_users" >&2
  exit 1
fi

# Shared corpora live next to the repository (../shared); the suites that use them fail loudly
# when it is missing rather than skipping.
cargo test --workspace --locked "$@"
