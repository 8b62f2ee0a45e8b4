# Shared helpers for bench/run.sh and bench/idle_conns.sh. Source it; do not run it.
#
# Everything here talks to 127.0.0.1 only. Every process started through these helpers is
# recorded in BENCH_PIDS and stopped by `bench_cleanup`, which the scripts install as an EXIT
# trap, so an interrupted or failed run leaves nothing behind.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR="$BENCH_ROOT/bench"
# Measure another binary with PORTCULLIS_BIN=/path (together with --no-build).
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$BENCH_ROOT/target/release/portcullis}
BENCH_PIDS=()
WATCHDOG_PID=""

log() {
    local line
    line=$(printf '[%s] %s' "$(date +%H:%M:%S)" "$*")
    printf '%s\n' "$line" >&2
    if [ -n "${RUN_DIR:-}" ] && [ -d "$RUN_DIR" ]; then printf '%s\n' "$line" >>"$RUN_DIR/run.log"; fi
    return 0
}
die() { log "ERROR: $*"; exit 1; }

# Install nginx/wrk (Debian packages) when missing: apt-get update only if the first try fails.
ensure_tools() {
    local missing=()
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    local pkgs=()
    for t in "${missing[@]}"; do
        case "$t" in
            nginx) pkgs+=(nginx-light) ;;   # fallback below to `nginx` if this name is absent
            openssl) pkgs+=(openssl) ;;
            taskset) pkgs+=(util-linux) ;;
            pgrep) pkgs+=(procps) ;;
            curl) pkgs+=(curl) ;;
            *) pkgs+=("$t") ;;
        esac
    done
    log "installing: ${pkgs[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1; then
        $sudo apt-get update >/dev/null 2>&1 || true
        $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 \
            || $sudo apt-get install -y "${pkgs[@]/nginx-light/nginx}" >/dev/null 2>&1 \
            || die "apt-get install ${pkgs[*]} failed"
    fi
    for t in "${missing[@]}"; do
        command -v "$t" >/dev/null 2>&1 || die "$t still missing after install"
    done
}

build_portcullis() {
    log "cargo build --release -p portcullis"
    # Bounded too: a cold release build on a busy 2-core machine can take ~10 minutes.
    (cd "$BENCH_ROOT" && timeout 2700 cargo build --release -p portcullis 2>&1 | tail -n 3) >&2 \
        || die "cargo build failed (or timed out); --no-build measures the existing binary"
    [ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN"
}

# Measure a private copy: the workspace's target/ is shared, and another build replacing the
# binary halfway through a run would mix two versions. Sets PORTCULLIS_BIN to the copy.
snapshot_binary() {
    local src=$PORTCULLIS_BIN
    mkdir -p "$RUN_DIR/bin"
    cp "$src" "$RUN_DIR/bin/portcullis" || die "cannot copy $src"
    PORTCULLIS_BIN="$RUN_DIR/bin/portcullis"
    echo "binary: $src built $(date -u -r "$src" '+%Y-%m-%d %H:%M:%S') UTC, sha256 $(sha256sum "$PORTCULLIS_BIN" | cut -c1-16)"
}

# A free TCP port on 127.0.0.1 (the kernel picks it; tiny race until the server binds it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS]: wait until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port=$1 secs=${2:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Kill the whole run after MAX seconds no matter what (scripts must stop by themselves).
start_watchdog() {
    local max=$1 main=$$
    (
        trap 'kill "$sp" 2>/dev/null; exit 0' TERM
        sleep "$max" &
        sp=$!
        wait "$sp"
        echo "watchdog: ${max}s limit reached, stopping" >&2
        kill -TERM "$main"
    ) &
    WATCHDOG_PID=$!
}

# stop_pid PID: TERM, then KILL after 5 s. Only ever called with ids this script started.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Stop an nginx master we started (QUIT = graceful; its workers exit with it).
stop_nginx() {
    local pid=$1 workers i
    kill -0 "$pid" 2>/dev/null || return 0
    workers=$(pgrep -P "$pid" || true)
    kill -QUIT "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    for w in $workers; do kill -0 "$w" 2>/dev/null && kill -KILL "$w" 2>/dev/null; done
    wait "$pid" 2>/dev/null || true
    return 0
}

forget_pid() {
    local pid=$1 p keep=()
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

bench_cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${BENCH_PIDS[@]}"; do
        case "$p" in
            nginx:*) stop_nginx "${p#nginx:}" ;;
            *) stop_pid "$p" ;;
        esac
    done
    BENCH_PIDS=()
    if [ -n "$WATCHDOG_PID" ]; then
        kill "$WATCHDOG_PID" 2>/dev/null || true
        wait "$WATCHDOG_PID" 2>/dev/null || true
    fi
    return 0
}

install_traps() {
    trap 'rc=$?; bench_cleanup; exit $rc' EXIT
    trap 'log "interrupted"; exit 130' INT TERM
}

# Raise the open-files limit as far as allowed (idle-connection test, many keep-alives).
raise_nofile() {
    local want=$1
    ulimit -Hn "$want" 2>/dev/null || true
    ulimit -Sn "$want" 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
}

# Temp/work paths nginx insists on, inside DIR (writable by its worker user).
nginx_common_http() {
    local dir=$1
    cat <<EOF
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
EOF
}

# start_upstream DIR PORT CPU: nginx, one worker, answering every request with a small JSON
# body (keep-alive, no logs). Sets STARTED_PID to the master PID. (Not used in $(...): the PID
# must be recorded in this shell for the cleanup trap.)
UPSTREAM_BODY='{"id":42,"name":"widget","price":{"amount":1999,"currency":"EUR"},"tags":["a","b","c"],"in_stock":true}'
start_upstream() {
    local dir=$1 port=$2 cpu=$3
    mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
$(nginx_common_http "$dir")
    access_log off;
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$port backlog=4096;
        default_type application/json;
        location / { return 200 '$UPSTREAM_BODY'; }
    }
}
EOF
    taskset -c "$cpu" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
        -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
    STARTED_PID=$!
    BENCH_PIDS+=("nginx:$STARTED_PID")
    wait_port "$port" || die "upstream nginx did not start (see $dir/error.log)"
}

# start_portcullis CONFIG CPU WORKDIR PORT: sets STARTED_PID. The gateway builds a default
# multi-thread Tokio runtime, which sizes itself from the CPU affinity mask, so taskset to
# one core also means one worker thread (plus the events writer thread when events are on).
start_portcullis() {
    local cfg=$1 cpu=$2 wd=$3 port=$4
    (cd "$wd" && PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} exec taskset -c "$cpu" \
        "$PORTCULLIS_BIN" serve --config "$cfg") >"$wd/portcullis.log" 2>&1 &
    STARTED_PID=$!
    BENCH_PIDS+=("$STARTED_PID")
    wait_port "$port" || die "portcullis did not start (see $wd/portcullis.log)"
}

# rss_kb PID -> VmRSS in kB
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# make_test_cert DIR: a self-signed ECDSA P-256 certificate for localhost/127.0.0.1 at
# DIR/cert.pem and DIR/key.pem (the same kind bench/run.sh's tls scenario uses).
make_test_cert() {
    local dir=$1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 \
        || die "openssl could not make the test certificate"
}

# make_es256_jwt DIR: an ES256 key pair (DIR/idp.key, DIR/idp.pub) and, on stdout, a token
# signed with it for issuer https://idp.bench and audience bench, valid for an hour (the same
# token bench/features.sh uses). openssl signs; python turns the DER signature into JOSE's r||s.
make_es256_jwt() {
    local dir=$1
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/idp.key" 2>/dev/null \
        || die "openssl could not make the ES256 key"
    openssl ec -in "$dir/idp.key" -pubout -out "$dir/idp.pub" 2>/dev/null \
        || die "openssl could not write the ES256 public key"
    python3 - "$dir/idp.key" <<'PY'
import base64, json, subprocess, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"iss": "https://idp.bench", "aud": "bench", "sub": "alice",
                       "scope": "items:read orders:write", "iat": now, "exp": now + 3600}).encode())
der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sys.argv[1]],
                     input=f"{head}.{body}".encode(), capture_output=True, check=True).stdout
# DER SEQUENCE { INTEGER r, INTEGER s }
i = 2 if der[1] < 0x80 else 3
def integer(i):
    n = der[i + 1]
    return der[i + 2:i + 2 + n], i + 2 + n
r, i = integer(i)
s, _ = integer(i)
sig = r.lstrip(b"\0").rjust(32, b"\0") + s.lstrip(b"\0").rjust(32, b"\0")
print(f"{head}.{body}.{b64(sig)}")
PY
}

# The nginx ModSecurity v3 connector and the OWASP Core Rule Set, as Debian packages.
MODSEC_MODULE=/usr/lib/nginx/modules/ngx_http_modsecurity_module.so
MODSEC_RECOMMENDED=/etc/nginx/modsecurity.conf
CRS_DIR=/usr/share/modsecurity-crs
CRS_ETC=/etc/modsecurity/crs

# ensure_modsecurity: install libnginx-mod-http-modsecurity and modsecurity-crs when missing
# (apt-get update only if the first try fails, as ensure_tools does).
ensure_modsecurity() {
    if [ -f "$MODSEC_MODULE" ] && [ -f "$MODSEC_RECOMMENDED" ] && [ -d "$CRS_DIR/rules" ] \
        && [ -f "$CRS_ETC/crs-setup.conf" ]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "ModSecurity/CRS missing and no apt-get to install them"
    local sudo="" pkgs=(libnginx-mod-http-modsecurity modsecurity-crs)
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    log "installing: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1; then
        $sudo apt-get update >/dev/null 2>&1 || true
        $sudo apt-get install -y "${pkgs[@]}" >/dev/null 2>&1 || die "apt-get install ${pkgs[*]} failed"
    fi
    [ -f "$MODSEC_MODULE" ] || die "no $MODSEC_MODULE after installing ${pkgs[*]}"
    [ -f "$CRS_ETC/crs-setup.conf" ] || die "no $CRS_ETC/crs-setup.conf after installing ${pkgs[*]}"
}
