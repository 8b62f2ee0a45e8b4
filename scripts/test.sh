#!/usr/bin/env bash
# Run every test Portcullis has, installing what the tests need first.
# Works on a fresh Debian machine with the Rust toolchain; run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# Real components the test suites start themselves (see docs/testing.md).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# Shared corpora live next to the repository (../shared); the suites that use them fail loudly
# when it is missing rather than skipping.
cargo test --workspace --locked "$@"
