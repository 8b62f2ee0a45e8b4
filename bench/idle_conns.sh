#!/usr/bin/env bash
# Resident memory of Portcullis (and, for comparison, nginx) holding many idle keep-alive
# connections.
#
#   bench/idle_conns.sh [-n CONNECTIONS] [-m request|connect|both] [-p portcullis|nginx|both]
#                       [-s SETTLE_SECONDS] [--no-build] [--perf]
#
# For each proxy and mode a fresh proxy is started in front of the bench upstream, pinned to
# core 1 like bench/run.sh (so Portcullis runs one Tokio worker thread):
#   portcullis  plain HTTP listener, events file on, admin off;
#   nginx       reverse proxy, one worker, access log off (the figure is the worker's RSS; the
#               master's is constant).
# A Python asyncio client (bench/idle_client.py, on core 0) opens CONNECTIONS connections and
# holds them idle:
#   request  each connection makes one request, reads the response and then stays open
#            (idle keep-alive between requests) -- the headline figure;
#   connect  connections are accepted but never send a byte.
# VmRSS (from /proc/PID/status) is read before, 3 s after the last connection opened, after
# SETTLE_SECONDS (default 15) of idleness -- the headline: Portcullis parks an HTTP/1
# connection idle for ~1 s (drops its HTTP state) and mimalloc returns freed pages to the OS
# after its purge delay -- and after the connections are closed. Target for Portcullis: <= 64 MiB with 10,000 idle connections.
# With --perf (use a smaller -n, e.g. 2000: DWARF stacks are large), the page faults Portcullis
# takes while the connections open are recorded with call graphs, which attributes the growth
# of resident memory to the code that first touches it. Only 127.0.0.1 is used; a watchdog
# bounds the run time. Output also goes to bench/out/idle-<UTC timestamp>/.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

CONNS=10000
SETTLE=15
MODES="request connect"
PROXIES="portcullis nginx"
BUILD=1
PERF=0
TARGET_KB=$((64 * 1024))

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -n) CONNS=$2; shift 2 ;;
        -s) SETTLE=$2; shift 2 ;;
        -m) case "$2" in both) MODES="request connect" ;; request|connect) MODES=$2 ;; *) usage 2 ;; esac; shift 2 ;;
        -p) case "$2" in both) PROXIES="portcullis nginx" ;; portcullis|nginx) PROXIES=$2 ;; *) usage 2 ;; esac; shift 2 ;;
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
if [[ " $PROXIES " == *" portcullis "* ]]; then
    [ "$BUILD" = 1 ] && build_portcullis
    [ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
    BINARY_INFO=$(snapshot_binary)
    PORTCULLIS_BIN="$RUN_DIR/bin/portcullis"
    [ -x "$PORTCULLIS_BIN" ] || die "could not snapshot the binary"
else
    BINARY_INFO="binary: (portcullis not measured)"
fi
start_watchdog 1200   # the measuring part; the build above has its own timeout

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
    echo "thp: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
    echo "env: MIMALLOC_ALLOW_THP=${MIMALLOC_ALLOW_THP:-unset}"
    echo "$BINARY_INFO"
    echo "git: $(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "connections: $CONNS  nofile: $NOFILE"
} | tee "$RUN_DIR/env.txt" >&2

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" 0

RESULTS="$RUN_DIR/results.md"
{
    echo "| proxy | mode | connections held | fds | RSS before | RSS 3 s after opening | RSS after ${SETTLE} s idle | per connection | RSS after close | peak (VmHWM) | ≤ 64 MiB |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
} >"$RESULTS"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

write_portcullis_conf() {
    local file=$1 port=$2 dir=$3
    cat >"$file" <<EOF
# Written by bench/idle_conns.sh. Admin API off (no admin section).
listeners:
  - name: bench
    address: 127.0.0.1:$port
limits:
  max_connections: $((CONNS + 1000))          # the default (10000) would refuse the last few
  max_connections_per_ip: $((CONNS + 1000))   # every client is 127.0.0.1 (default 256)
  idle_timeout: 300s                          # keep them for the whole measurement
  header_read_timeout: 300s                   # "connect" mode never sends a request head
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
}

write_nginx_conf() {
    local file=$1 port=$2 dir=$3
    mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
    cat >"$file" <<EOF
worker_processes 1;
worker_rlimit_nofile $((CONNS * 2 + 4096));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((CONNS + 1000)); }
http {
$(nginx_common_http "$dir")
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 10000000;
    client_header_timeout 300s;
    upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; }
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
}

for proxy in $PROXIES; do
    for mode in $MODES; do
        dir="$RUN_DIR/$proxy-$mode"
        mkdir -p "$dir"
        port=$(free_port)
        if [ "$proxy" = portcullis ]; then
            write_portcullis_conf "$dir/portcullis.yaml" "$port" "$dir"
            start_portcullis "$dir/portcullis.yaml" 1 "$dir" "$port"
            main_pid=$STARTED_PID
            pid=$main_pid
        else
            write_nginx_conf "$dir/nginx.conf" "$port" "$dir"
            taskset -c 1 nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g 'daemon off;' \
                >"$dir/stdout.log" 2>&1 &
            main_pid=$!
            BENCH_PIDS+=("nginx:$main_pid")
            wait_port "$port" || die "nginx did not start (see $dir/error.log)"
            pid=$(pgrep -P "$main_pid" | head -n 1 || true)
            [ -n "$pid" ] || die "no nginx worker process"
        fi
        curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$port/warm" || die "$proxy did not answer"
        sleep 1
        before=$(rss_kb "$pid")
        log "$proxy $mode: pid $pid on 127.0.0.1:$port, RSS before $(mib "$before"); opening $CONNS connections"

        perf_pid=""
        if [ "$PERF" = 1 ] && [ "$proxy" = portcullis ] && command -v perf >/dev/null 2>&1; then
            timeout 300 perf record -e page-faults --call-graph dwarf,8192 -p "$pid" \
                -o "$dir/perf-faults.data" >/dev/null 2>&1 &
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
        sleep 3
        early=$(rss_kb "$pid")
        # Let the proxy settle: events written, idle connections parked, freed pages purged.
        sleep $((SETTLE > 3 ? SETTLE - 3 : 0))
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
        cat "/proc/$pid/smaps_rollup" >"$dir/smaps-during.txt" 2>/dev/null || true
        thp=$(awk '/^AnonHugePages:/ { print $2 }' "$dir/smaps-during.txt" 2>/dev/null || true)
        touch "$release"
        wait "$client" 2>/dev/null || true
        forget_pid "$client"
        sleep 3
        after=$(rss_kb "$pid")
        hwm=$(hwm_kb "$pid")
        fds_after=$(ls "/proc/$pid/fd" | wc -l)
        alive=$(awk '/^ALIVE_AT_RELEASE/ { print $2 }' "$dir/client.log")
        per=$(awk -v a="$before" -v b="$during" -v n="$held" 'BEGIN { if (n > 0) printf "%.1f KiB", (b - a) / n; else print "-" }')
        verdict=$([ "$during" -le "$TARGET_KB" ] && echo "yes" || echo "**no**")
        log "$proxy $mode: held $held (failed $failed, still open at release ${alive:-?}), fds $fds, threads $threads, RSS $(mib "$early") after 3 s, $(mib "$during") after ${SETTLE} s (+$per per connection), after close $(mib "$after") ($fds_after fds left), peak $(mib "$hwm"), of which transparent huge pages $(mib "${thp:-0}")"
        echo "| $proxy | $mode | $held (failed $failed) | $fds | $(mib "$before") | $(mib "$early") | $(mib "$during") | $per | $(mib "$after") | $(mib "$hwm") | $verdict |" >>"$RESULTS"
        if [ "$proxy" = portcullis ]; then
            stop_pid "$main_pid"
            forget_pid "$main_pid"
            rm -f "$dir"/events.jsonl*
        else
            stop_nginx "$main_pid"
            forget_pid "nginx:$main_pid"
        fi
    done
done

echo >&2
cat "$RESULTS"
log "results in $RUN_DIR"
