#!/usr/bin/env bash
# Resident memory of Portcullis holding many idle keep-alive connections.
#
#   bench/idle_conns.sh [-n CONNECTIONS] [-m request|connect|both] [--no-build] [--perf]
#
# For each mode a fresh Portcullis (plain HTTP listener, events file on, admin off, pinned to
# core 1 like bench/run.sh, so one Tokio worker thread) is started in front of the bench
# upstream; a Python asyncio client (bench/idle_client.py) opens CONNECTIONS connections and
# holds them idle:
#   request  each connection makes one request, reads the response and then stays open
#            (idle keep-alive between requests) -- the headline figure;
#   connect  connections are accepted but never send a byte.
# VmRSS (from /proc/PID/status) is read before, while the connections are held, and after they
# are closed. Target: <= 64 MiB with 10,000 idle connections. With --perf (use a smaller -n, e.g. 2000: DWARF stacks are large), the page faults
# Portcullis takes while the connections open are recorded with call graphs (perf), which
# attributes the growth of resident memory to the code that first touches it. Only 127.0.0.1 is used; a
# watchdog bounds the run time. Output also goes to bench/out/idle-<UTC timestamp>/.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

CONNS=10000
MODES="request connect"
BUILD=1
PERF=0
TARGET_KB=$((64 * 1024))

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -n) CONNS=$2; shift 2 ;;
        -m) case "$2" in both) MODES="request connect" ;; request|connect) MODES=$2 ;; *) usage 2 ;; esac; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --perf) PERF=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/idle-$STAMP"
mkdir -p "$RUN_DIR"
ln -sfn "idle-$STAMP" "$BENCH_DIR/out/latest-idle"
install_traps

ensure_tools nginx openssl taskset pgrep curl python3
[ "$BUILD" = 1 ] && build_portcullis
[ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
start_watchdog 900   # the measuring part; the build above has its own timeout

# Client and server each need CONNECTIONS descriptors, plus upstream sockets and slack.
raise_nofile $((CONNS * 2 + 4096))
NOFILE=$(ulimit -n)
[ "$NOFILE" -ge $((CONNS + 1024)) ] || die "open-files limit $NOFILE too low for $CONNS connections"
PORTS=$(awk '{ print $2 - $1 }' /proc/sys/net/ipv4/ip_local_port_range)
[ "$PORTS" -ge $((CONNS + 2000)) ] || log "warning: only $PORTS ephemeral ports for $CONNS connections"

{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "portcullis: $("$PORTCULLIS_BIN" version) git $(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "connections: $CONNS  nofile: $NOFILE"
} | tee "$RUN_DIR/env.txt" >&2

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" 0

RESULTS="$RUN_DIR/results.md"
{
    echo "| mode | connections held | fds | RSS before | RSS with idle conns | per connection | RSS after close | peak (VmHWM) | target ≤ 64 MiB |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
} >"$RESULTS"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

for mode in $MODES; do
    dir="$RUN_DIR/$mode"
    mkdir -p "$dir"
    port=$(free_port)
    cat >"$dir/portcullis.yaml" <<EOF
# Written by bench/idle_conns.sh ($mode). Admin API off (no admin section).
listeners:
  - name: bench
    address: 127.0.0.1:$port
limits:
  max_connections: $((CONNS + 1000))   # the default (10000) would refuse the last few
  max_connections_per_ip: $((CONNS + 1000))   # every client is 127.0.0.1 (default 256)
  idle_timeout: 300s                   # keep them for the whole measurement
  header_read_timeout: 300s            # "connect" mode never sends a request head
  shutdown_grace: 1s
upstreams:
  app:
    targets: [http://127.0.0.1:$UP_PORT]
routes:
  - name: app
    upstream: app
    auth: { public: true }
events:
  file: $dir/events.jsonl
EOF
    start_portcullis "$dir/portcullis.yaml" 1 "$dir" "$port"
    pid=$STARTED_PID
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/warm" || die "portcullis did not answer"
    sleep 1
    before=$(rss_kb "$pid")
    log "$mode: portcullis pid $pid on 127.0.0.1:$port, RSS before $(mib "$before"); opening $CONNS connections"

    perf_pid=""
    if [ "$PERF" = 1 ] && command -v perf >/dev/null 2>&1; then
        timeout 300 perf record -e page-faults --call-graph dwarf,8192 -p "$pid" -o "$dir/perf-faults.data" \
            >/dev/null 2>&1 &
        perf_pid=$!
        BENCH_PIDS+=("$perf_pid")
        sleep 1
    fi
    release="$dir/release"
    rm -f "$release"
    taskset -c 0 python3 "$BENCH_DIR/idle_client.py" "$port" "$CONNS" "$mode" "$release" 240 \
        >"$dir/client.log" 2>&1 &
    client=$!
    BENCH_PIDS+=("$client")
    for ((i = 0; i < 1800; i++)); do
        grep -q '^READY' "$dir/client.log" && break
        kill -0 "$client" 2>/dev/null || die "client exited early: $(tail -n 5 "$dir/client.log")"
        sleep 0.1
    done
    grep -q '^READY' "$dir/client.log" || die "client did not finish opening connections in time"
    read -r _ held failed < <(grep '^READY' "$dir/client.log")
    sleep 3   # let the gateway settle (events written, buffers released)
    if [ -n "$perf_pid" ]; then
        kill -TERM "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        forget_pid "$perf_pid"
        timeout 120 perf report -i "$dir/perf-faults.data" --no-children --sort symbol \
            -g caller,0.5,callee --percent-limit 3 --stdio 2>/dev/null | grep -v '^$' \
            | cut -c1-200 | head -n 400 >"$dir/perf-faults.txt" || true
        timeout 120 perf report -i "$dir/perf-faults.data" --children --sort symbol -g none \
            --percent-limit 3 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' \
            | cut -c1-200 >"$dir/perf-faults-children.txt" || true
    fi
    during=$(rss_kb "$pid")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    threads=$(ls "/proc/$pid/task" | wc -l)
    grep -E '^(VmRSS|VmHWM|RssAnon|RssFile|VmData|Threads)' "/proc/$pid/status" >"$dir/status-during.txt"
    touch "$release"
    wait "$client" 2>/dev/null || true
    forget_pid "$client"
    sleep 3
    after=$(rss_kb "$pid")
    hwm=$(hwm_kb "$pid")
    alive=$(awk '/^ALIVE_AT_RELEASE/ { print $2 }' "$dir/client.log")
    per=$(awk -v a="$before" -v b="$during" -v n="$held" 'BEGIN { if (n > 0) printf "%.1f KiB", (b - a) / n; else print "-" }')
    verdict=$([ "$during" -le "$TARGET_KB" ] && echo "met" || echo "**missed**")
    log "$mode: held $held (failed $failed, still open at release ${alive:-?}), fds $fds, threads $threads, RSS $(mib "$during") (+$per per connection), after close $(mib "$after"), peak $(mib "$hwm")"
    echo "| $mode | $held (failed $failed) | $fds | $(mib "$before") | $(mib "$during") | $per | $(mib "$after") | $(mib "$hwm") | $verdict |" >>"$RESULTS"
    stop_pid "$pid"
    forget_pid "$pid"
    rm -f "$dir"/events.jsonl*
done

echo >&2
cat "$RESULTS"
log "results in $RUN_DIR"
