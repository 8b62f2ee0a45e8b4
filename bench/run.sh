#!/usr/bin/env bash
# Portcullis vs nginx as a reverse proxy in front of the same fixed upstream.
#
#   bench/run.sh [-d SECONDS] [-c CONNECTIONS] [-r REPEATS] [-s plain,log,tls] [--no-build] [--perf]
#
# Layout (2-core machine): core 0 runs the load generator (wrk) and the upstream (nginx
# returning a fixed JSON body); core 1 runs the proxy under test (nginx with one worker, or
# Portcullis). Each scenario drives the two proxies in turns, REPEATS times each, and reports
# medians. Proxy CPU per request = (utime+stime of the proxy's processes, from /proc/PID/stat,
# after minus before the run) / requests completed in the run.
#
# Scenarios:
#   plain  plain HTTP; Portcullis events off        vs nginx access_log off
#   log    plain HTTP; Portcullis event file on     vs nginx JSON access log (buffer=64k flush=1s)
#   tls    TLS 1.3, ECDSA P-256, keep-alive; events off / access_log off
#
# Output: a table on stdout, and everything (configs, wrk output, raw.tsv, results.md) under
# bench/out/run-<UTC timestamp>/. Only 127.0.0.1 is used; a watchdog bounds the run time.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

DURATION=10
CONNS=64
REPEATS=3
SCENARIOS="plain,log,tls"
BUILD=1
PERF=0
LOAD_CPU=0
PROXY_CPU=1

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        -d) DURATION=$2; shift 2 ;;
        -c) CONNS=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        -s) SCENARIOS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --perf) PERF=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown argument: $1" >&2; usage 2 ;;
    esac
done
[ "$(nproc)" -ge 2 ] || { echo "needs at least 2 CPUs (load on core $LOAD_CPU, proxy on core $PROXY_CPU)" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/run-$STAMP"
mkdir -p "$RUN_DIR"
ln -sfn "run-$STAMP" "$BENCH_DIR/out/latest"
install_traps

ensure_tools nginx wrk openssl taskset pgrep curl python3
[ "$BUILD" = 1 ] && build_portcullis
[ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
BINARY_INFO=$(snapshot_binary)
PORTCULLIS_BIN="$RUN_DIR/bin/portcullis"
[ -x "$PORTCULLIS_BIN" ] || die "could not snapshot the binary"

# The measuring part is bounded by a watchdog (the build above by its own timeout).
n_scen=$(echo "$SCENARIOS" | tr ',' '\n' | grep -c .)
start_watchdog $(( n_scen * (2 * 6 + REPEATS * 2 * (DURATION + 8) + PERF * (4 * DURATION + 400)) + 120 ))

CLK_TCK=$(getconf CLK_TCK)
RAW="$RUN_DIR/raw.tsv"
printf 'scenario\tproxy\trep\trps\tp50_ms\tp99_ms\trequests\tcpu_ticks\twall_s\terrors\tctx_switches\n' >"$RAW"

{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel: $(uname -r)"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "wrk: $(wrk -v 2>&1 | head -n1)"
    echo "$BINARY_INFO"
    echo "portcullis: $("$PORTCULLIS_BIN" version) git $(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$BENCH_ROOT" && [ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (working tree modified)')"
    echo "params: duration=${DURATION}s connections=$CONNS repeats=$REPEATS wrk_threads=1 load_cpu=$LOAD_CPU proxy_cpu=$PROXY_CPU"
} >"$RUN_DIR/env.txt"
cat "$RUN_DIR/env.txt" >&2

# ---------------------------------------------------------------------------------------------
# Fixed pieces: upstream, certificate.

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" "$LOAD_CPU"
log "upstream nginx on 127.0.0.1:$UP_PORT (core $LOAD_CPU), pid $STARTED_PID"

CERT="$RUN_DIR/cert.pem"
KEY="$RUN_DIR/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$KEY" -out "$CERT" -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >/dev/null 2>&1 \
    || die "openssl could not make the test certificate"

# ---------------------------------------------------------------------------------------------
# Configs.

# nginx_proxy_conf DIR PORT MODE(plain|log|tls)
nginx_proxy_conf() {
    local dir=$1 port=$2 mode=$3 listen access tls_lines="" hsts=""
    listen="listen 127.0.0.1:$port backlog=4096;"
    access="access_log off;"
    if [ "$mode" = log ]; then
        access="access_log $dir/access.jsonl json buffer=64k flush=1s;"
    fi
    if [ "$mode" = tls ]; then
        listen="listen 127.0.0.1:$port ssl backlog=4096;"
        tls_lines="ssl_certificate $CERT; ssl_certificate_key $KEY; ssl_protocols TLSv1.3;"
        hsts="add_header Strict-Transport-Security \"max-age=31536000\" always;"
    fi
    mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
    # The JSON log line mirrors the fields of a Portcullis HTTP Activity event (OCSF-shaped).
    cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
$(nginx_common_http "$dir")
    server_tokens off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    log_format json escape=json '{"class_uid":4002,"class_name":"HTTP Activity","category_uid":4,'
        '"category_name":"Network Activity","activity_name":"\$request_method","time":"\$msec",'
        '"severity_id":1,"severity":"Informational","status":"\$status","action":"Allowed",'
        '"duration":"\$request_time","metadata":{"version":"1.3.0","uid":"\$request_id",'
        '"product":{"name":"nginx","vendor_name":"nginx","version":"\$nginx_version"}},'
        '"src_endpoint":{"ip":"\$remote_addr","port":"\$remote_port"},'
        '"http_request":{"http_method":"\$request_method","version":"\$server_protocol",'
        '"user_agent":"\$http_user_agent","length":"\$request_length","uid":"\$request_id",'
        '"url":{"scheme":"\$scheme","hostname":"\$host","path":"\$uri","query_string":"\$args"},'
        '"http_headers":[{"name":"host","value":"\$http_host"},'
        '{"name":"user-agent","value":"\$http_user_agent"},{"name":"accept","value":"\$http_accept"}]},'
        '"http_response":{"code":"\$status","length":"\$body_bytes_sent"},'
        '"tls":{"version":"\$ssl_protocol","cipher":"\$ssl_cipher"},'
        '"unmapped":{"route":"app","upstream":"\$upstream_addr","request_id":"\$request_id",'
        '"upstream_time":"\$upstream_response_time","findings":[]}}';
    upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
    }
    server {
        $listen
        $tls_lines
        $access
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Roughly what Portcullis adds on the way in and out.
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\$host";
            proxy_set_header X-Request-Id \$request_id;
            proxy_hide_header Server;
            add_header X-Request-Id \$request_id always;
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
            add_header Referrer-Policy no-referrer always;
            $hsts
        }
    }
}
EOF
}

# portcullis_conf FILE PORT MODE(plain|log|tls) WORKDIR
portcullis_conf() {
    local file=$1 port=$2 mode=$3 wd=$4 tls="" events
    if [ "$mode" = tls ]; then
        tls="    tls:
      certificates:
        - cert: $CERT
          key: $KEY
      min_version: \"1.3\""
    fi
    if [ "$mode" = log ]; then
        events="  file: $wd/events.jsonl
  file_max_bytes: 1GiB
  file_max_files: 1"
    else
        events='  file: ""'
    fi
    cat >"$file" <<EOF
# Written by bench/run.sh ($mode). Admin API off (no admin section).
listeners:
  - name: bench
    address: 127.0.0.1:$port
$tls
limits:
  shutdown_grace: 1s
upstreams:
  app:
    targets: [http://127.0.0.1:$UP_PORT]
    max_idle_per_target: 64
routes:
  - name: app
    upstream: app
    auth: { public: true }
events:
$events
EOF
}

# ---------------------------------------------------------------------------------------------
# Measuring.

# ticks PID... -> sum of utime+stime (clock ticks) over the processes (all their threads).
ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || v=0
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# ctxsw PID... -> voluntary + involuntary context switches summed over every thread.
ctxsw() {
    local p
    for p in "$@"; do
        cat /proc/"$p"/task/*/status 2>/dev/null
    done | awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}

WRK_HEADERS=(-H "User-Agent: portcullis-bench/wrk" -H "Accept: application/json")

# measure SCENARIO PROXY REP URL PID...
measure() {
    local scen=$1 proxy=$2 rep=$3 url=$4
    shift 4
    local out="$RUN_DIR/$scen/wrk-$proxy-$rep.txt" t0 t1 w0 w1 c0 c1
    c0=$(ctxsw "$@")
    t0=$(ticks "$@")
    w0=$(date +%s.%N)
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s --latency "${WRK_HEADERS[@]}" "$url" \
        >"$out" 2>&1 || log "wrk exited with an error ($out)"
    w1=$(date +%s.%N)
    t1=$(ticks "$@")
    c1=$(ctxsw "$@")
    python3 - "$out" "$scen" "$proxy" "$rep" "$((t1 - t0))" "$w0" "$w1" "$((c1 - c0))" >>"$RAW" <<'PY'
import re, sys
path, scen, proxy, rep, dt, w0, w1, cs = sys.argv[1:]
text = open(path).read()
def ms(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m: return float("nan")
    x, u = float(m.group(1)), m.group(2)
    return x * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[u]
def pct(p):
    m = re.search(r"^\s*%s%%\s+(\S+)" % p, text, re.M)
    return ms(m.group(1)) if m else float("nan")
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
req = re.search(r"(\d+) requests in", text)
errors = 0
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if m: errors += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m: errors += sum(int(g) for g in m.groups())
print("\t".join(str(x) for x in [scen, proxy, rep,
    rps.group(1) if rps else "nan", pct(50), pct(99),
    req.group(1) if req else 0, dt, "%.3f" % (float(w1) - float(w0)), errors, cs]))
PY
    tail -n1 "$RAW" | awk -F'\t' -v tck="$CLK_TCK" \
        '{ printf "    %-6s %-10s rep %s: %9.0f req/s  p50 %6.2f ms  p99 %6.2f ms  cpu %6.1f us/req  ctxsw/req %5.2f  errors %s\n",
           $1, $2, $3, $4, $5, $6, ($7 > 0 ? $8 / tck * 1e6 / $7 : 0), ($7 > 0 ? $11 / $7 : 0), $10 }' | tee -a "$RUN_DIR/run.log" >&2
}

# Check a proxy answers 200 with the upstream body before measuring it.
smoke() {
    local url=$1 name=$2 body
    body=$(curl -sk --max-time 5 -H 'Accept: application/json' "$url/smoke") \
        || die "$name: smoke request to $url failed"
    [ "$body" = "$UPSTREAM_BODY" ] || die "$name: unexpected body from $url: $body"
}

# Optional: one extra run of a proxy under perf (CPU profile with DWARF call graphs), for
# the analysis in docs/performance.md. Writes $RUN_DIR/$scen/perf-<proxy>-{flat,dso,children}.txt.
perf_profile() {
    local scen=$1 proxy=$2 url=$3
    shift 3
    command -v perf >/dev/null 2>&1 || { log "perf not installed; skipping profile"; return 0; }
    log "  perf: profiling $proxy ($scen)"
    local data="$RUN_DIR/$scen/perf-$proxy.data" pids
    pids=$(echo "$@" | tr ' ' ',' | sed 's/,*$//')
    timeout $((DURATION + 20)) perf record -F 299 --call-graph dwarf,16384 -p "$pids" -o "$data" \
        -- sleep "$DURATION" >/dev/null 2>&1 &
    local perf_pid=$!
    BENCH_PIDS+=("$perf_pid")
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s "${WRK_HEADERS[@]}" "$url" \
        >"$RUN_DIR/$scen/wrk-perf-$proxy.txt" 2>&1 || true
    wait "$perf_pid" 2>/dev/null || true
    forget_pid "$perf_pid"
    # Flat profile (self time), per shared object, and inclusive ("children") time.
    timeout 300 perf report -i "$data" --no-inline --no-children --sort dso,symbol -g none \
        --percent-limit 0.5 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-160 \
        >"$RUN_DIR/$scen/perf-$proxy-flat.txt" || true
    timeout 300 perf report -i "$data" --no-inline --no-children --sort dso -g none \
        --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -n 20 \
        >"$RUN_DIR/$scen/perf-$proxy-dso.txt" || true
    timeout 300 perf report -i "$data" --no-inline --children --sort symbol -g none \
        --percent-limit 1.5 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-200 \
        >"$RUN_DIR/$scen/perf-$proxy-children.txt" || true
}

# Optional: syscalls per request of one proxy (perf stat on syscall tracepoints during an
# extra wrk run). Appends to $RUN_DIR/$scen/syscalls.tsv.
SYSCALLS="read readv recvfrom recvmsg write writev sendto sendmsg epoll_wait epoll_pwait epoll_ctl futex sched_yield accept4"
syscall_profile() {
    local scen=$1 proxy=$2 url=$3
    shift 3
    command -v perf >/dev/null 2>&1 || return 0
    local events="raw_syscalls:sys_enter" sc pids out="$RUN_DIR/$scen/perf-stat-$proxy.txt"
    for sc in $SYSCALLS; do events="$events,syscalls:sys_enter_$sc"; done
    pids=$(echo "$@" | tr ' ' ',' | sed 's/,*$//')
    timeout $((DURATION + 20)) perf stat -x, -e "$events" -p "$pids" -o "$out" -- sleep "$DURATION" \
        >/dev/null 2>&1 &
    local perf_pid=$!
    BENCH_PIDS+=("$perf_pid")
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s "${WRK_HEADERS[@]}" "$url" \
        >"$RUN_DIR/$scen/wrk-syscalls-$proxy.txt" 2>&1 || true
    wait "$perf_pid" 2>/dev/null || true
    forget_pid "$perf_pid"
    local req
    req=$(awk '/requests in/ { print $1 }' "$RUN_DIR/$scen/wrk-syscalls-$proxy.txt")
    awk -F, -v req="${req:-0}" -v scen="$scen" -v proxy="$proxy" \
        '$3 ~ /sys_enter/ && req > 0 { name = $3; sub(/^.*sys_enter_?/, "", name); if (name == "") name = "all";
           printf "%s\t%s\t%s\t%.2f\n", scen, proxy, name, $1 / req }' "$out" >>"$RUN_DIR/$scen/syscalls.tsv"
}

# ---------------------------------------------------------------------------------------------
# Scenarios.

run_scenario() {
    local scen=$1 scheme=http
    [ "$scen" = tls ] && scheme=https
    local dir="$RUN_DIR/$scen"
    mkdir -p "$dir/nginx" "$dir/portcullis"
    log "scenario $scen"

    local ngx_port pc_port
    ngx_port=$(free_port)
    pc_port=$(free_port)
    while [ "$pc_port" = "$ngx_port" ] || [ "$pc_port" = "$UP_PORT" ]; do pc_port=$(free_port); done

    nginx_proxy_conf "$dir/nginx" "$ngx_port" "$scen"
    taskset -c "$PROXY_CPU" nginx -p "$dir/nginx" -e "$dir/nginx/error.log" \
        -c "$dir/nginx/nginx.conf" -g 'daemon off;' >"$dir/nginx/stdout.log" 2>&1 &
    local ngx_pid=$!
    BENCH_PIDS+=("nginx:$ngx_pid")
    wait_port "$ngx_port" || die "nginx proxy did not start (see $dir/nginx/error.log)"
    local ngx_pids
    ngx_pids="$ngx_pid $(pgrep -P "$ngx_pid" | tr '\n' ' ')"

    portcullis_conf "$dir/portcullis/portcullis.yaml" "$pc_port" "$scen" "$dir/portcullis"
    start_portcullis "$dir/portcullis/portcullis.yaml" "$PROXY_CPU" "$dir/portcullis" "$pc_port"
    local pc_pid=$STARTED_PID
    log "  nginx proxy 127.0.0.1:$ngx_port (pids $ngx_pids), portcullis 127.0.0.1:$pc_port (pid $pc_pid, $(ls "/proc/$pc_pid/task" | wc -l) threads), both on core $PROXY_CPU"

    local ngx_url="$scheme://127.0.0.1:$ngx_port/v1/items?page=2"
    local pc_url="$scheme://127.0.0.1:$pc_port/v1/items?page=2"
    smoke "$scheme://127.0.0.1:$ngx_port" nginx
    smoke "$scheme://127.0.0.1:$pc_port" portcullis

    # Warm-up: fill both upstream keep-alive pools, fault in memory, settle caches.
    timeout 30 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d3s "${WRK_HEADERS[@]}" "$ngx_url" >/dev/null 2>&1 || true
    timeout 30 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d3s "${WRK_HEADERS[@]}" "$pc_url" >/dev/null 2>&1 || true
    log "  threads after warm-up: portcullis $(ls "/proc/$pc_pid/task" | wc -l)"

    local rep
    for ((rep = 1; rep <= REPEATS; rep++)); do
        # Alternate who goes first so slow drift in background load hits both alike.
        if ((rep % 2)); then
            measure "$scen" nginx "$rep" "$ngx_url" $ngx_pids
            measure "$scen" portcullis "$rep" "$pc_url" "$pc_pid"
        else
            measure "$scen" portcullis "$rep" "$pc_url" "$pc_pid"
            measure "$scen" nginx "$rep" "$ngx_url" $ngx_pids
        fi
    done
    if [ "$PERF" = 1 ]; then
        perf_profile "$scen" portcullis "$pc_url" "$pc_pid"
        perf_profile "$scen" nginx "$ngx_url" $ngx_pids
        syscall_profile "$scen" nginx "$ngx_url" $ngx_pids
        syscall_profile "$scen" portcullis "$pc_url" "$pc_pid"
        if [ -s "$dir/syscalls.tsv" ]; then
            log "  syscalls per request (perf stat, one extra run each):"
            awk -F'\t' '$4 >= 0.01 { v[$3, $2] = $4; names[$3] = 1 }
                END { for (n in names) printf "    %-12s %8.2f %11.2f\n", n, v[n, "nginx"], v[n, "portcullis"] }' \
                "$dir/syscalls.tsv" | sort -k1,1 | { printf "    %-12s %8s %11s\n" syscall nginx portcullis; cat; } \
                | tee -a "$RUN_DIR/run.log" >&2
        fi
    fi

    echo "portcullis_rss_kb_after: $(rss_kb "$pc_pid")  threads: $(ls "/proc/$pc_pid/task" | wc -l)" >"$dir/proc.txt"
    echo "nginx_worker_rss_kb_after: $(for p in $ngx_pids; do rss_kb "$p"; done | tr '\n' ' ')" >>"$dir/proc.txt"

    stop_pid "$pc_pid"; forget_pid "$pc_pid"
    stop_nginx "$ngx_pid"; forget_pid "nginx:$ngx_pid"
    if [ "$scen" = log ]; then
        # Did every request reach the log? (Requests include the warm-up.)
        local ev_lines ngx_lines
        ev_lines=$(cat "$dir"/portcullis/events.jsonl* 2>/dev/null | grep -c '"class_uid":4002' || true)
        ngx_lines=$(cat "$dir"/nginx/access.jsonl 2>/dev/null | wc -l)
        {
            echo "portcullis_event_lines: $ev_lines"
            echo "portcullis_event_bytes_per_line: $(head -n 200 "$dir/portcullis/events.jsonl" | grep '"class_uid":4002' | awk '{ n++; b += length($0) + 1 } END { if (n) printf "%.0f", b / n }')"
            echo "nginx_log_lines: $ngx_lines"
            echo "nginx_log_bytes_per_line: $(head -n 200 "$dir/nginx/access.jsonl" | awk '{ n++; b += length($0) + 1 } END { if (n) printf "%.0f", b / n }')"
            echo "portcullis_warnings: $(grep -ci 'drop' "$dir/portcullis/portcullis.log" || true)"
        } >>"$dir/proc.txt"
        # The logs are large; keep one sample line of each and drop the rest.
        head -n 3 "$dir/portcullis/events.jsonl" >"$dir/portcullis/events.sample.jsonl" 2>/dev/null || true
        head -n 3 "$dir/nginx/access.jsonl" >"$dir/nginx/access.sample.jsonl" 2>/dev/null || true
        rm -f "$dir"/portcullis/events.jsonl* "$dir/nginx/access.jsonl"
    fi
    sed 's/^/  /' "$dir/proc.txt" >&2
}

IFS=',' read -r -a SCEN_LIST <<<"$SCENARIOS"
for s in "${SCEN_LIST[@]}"; do
    case "$s" in
        plain|log|tls) run_scenario "$s" ;;
        *) die "unknown scenario $s (plain, log, tls)" ;;
    esac
done

echo "loadavg_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN_DIR/env.txt"
python3 "$BENCH_DIR/summarize.py" "$RAW" "$CLK_TCK" | tee "$RUN_DIR/results.md"
log "results in $RUN_DIR"
