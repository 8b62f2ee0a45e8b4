#!/usr/bin/env bash
# Heap allocations per proxied request in Portcullis, and which code makes them.
#
#   bench/allocs.sh [--no-build] [-e off|on]
#
# Puts perf uprobes on the allocator entry points of a private copy of the release binary
# (mimalloc: mi_malloc_aligned, mi_zalloc_aligned, mi_realloc_aligned -- the Rust global
# allocator calls these for every allocation), drives Portcullis (plain HTTP, events file off
# or on) with wrk, and reports
#   * allocations per request (perf stat over a 3 s run), and
#   * the functions on the stack of those allocations (mi_malloc_aligned only) (perf record with DWARF call graphs over
#     a short, low-concurrency run), as inclusive percentages.
# Uprobes make every allocation trap into the kernel, so throughput collapses while they are
# attached: use this for counting, never for timing. The probes are removed on exit. Needs
# root (or perf_event_paranoid <= 1 and tracefs access). Only 127.0.0.1 is used.
set -euo pipefail

source "$(dirname "$0")/lib.sh"

BUILD=1
EVENTS=off
while [ $# -gt 0 ]; do
    case "$1" in
        --no-build) BUILD=0; shift ;;
        -e) EVENTS=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$EVENTS" in off|on) ;; *) echo "-e takes off or on" >&2; exit 2 ;; esac
command -v perf >/dev/null 2>&1 || { echo "needs perf (linux-perf)" >&2; exit 1; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/allocs-$STAMP"
mkdir -p "$RUN_DIR"
PROBES_ADDED=0
remove_probes() {
    if [ "$PROBES_ADDED" = 1 ]; then
        perf probe -q -d 'probe_bench_alloc:*' >/dev/null 2>&1 || true
        PROBES_ADDED=0
    fi
}
trap 'rc=$?; remove_probes; bench_cleanup; exit $rc' EXIT
trap 'log "interrupted"; exit 130' INT TERM

ensure_tools nginx wrk taskset pgrep curl python3
[ "$BUILD" = 1 ] && build_portcullis
[ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
BINARY_INFO=$(snapshot_binary)
PORTCULLIS_BIN="$RUN_DIR/bin/portcullis"
[ -x "$PORTCULLIS_BIN" ] || die "could not snapshot the binary"
echo "$BINARY_INFO" >"$RUN_DIR/env.txt"
start_watchdog 600

FUNCS=()
nm "$PORTCULLIS_BIN" >"$RUN_DIR/symbols.txt" 2>/dev/null || true
for f in mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned; do
    if grep -q " T $f\$" "$RUN_DIR/symbols.txt"; then FUNCS+=("$f"); fi
done
rm -f "$RUN_DIR/symbols.txt"
[ ${#FUNCS[@]} -gt 0 ] || die "no mimalloc entry points in the binary (allocator changed?)"
PROBE_ARGS=()
EVENTS_LIST=""
for f in "${FUNCS[@]}"; do
    PROBE_ARGS+=(--add "probe_bench_alloc:$f=$f")
    EVENTS_LIST="$EVENTS_LIST${EVENTS_LIST:+,}probe_bench_alloc:$f"
done
PROBES_ADDED=1
perf probe -q -x "$PORTCULLIS_BIN" "${PROBE_ARGS[@]}" >"$RUN_DIR/probe.log" 2>&1 \
    || die "perf probe failed (see $RUN_DIR/probe.log)"

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" 0
PORT=$(free_port)
if [ "$EVENTS" = on ]; then ev="  file: $RUN_DIR/events.jsonl"; else ev='  file: ""'; fi
cat >"$RUN_DIR/portcullis.yaml" <<EOF
listeners:
  - address: 127.0.0.1:$PORT
limits:
  shutdown_grace: 1s
upstreams:
  app:
    targets: [http://127.0.0.1:$UP_PORT]
routes:
  - name: app
    upstream: app
    auth: { public: true }
events:
$ev
EOF
start_portcullis "$RUN_DIR/portcullis.yaml" 1 "$RUN_DIR" "$PORT"
PID=$STARTED_PID
URL="http://127.0.0.1:$PORT/v1/items?page=2"
H=(-H "User-Agent: portcullis-bench/wrk" -H "Accept: application/json")
timeout 30 taskset -c 0 wrk -t1 -c16 -d2s "${H[@]}" "$URL" >/dev/null 2>&1 || true   # warm-up

# 1. Count.
timeout 30 perf stat -x, -e "$EVENTS_LIST" -p "$PID" -o "$RUN_DIR/stat.txt" -- sleep 3 >/dev/null 2>&1 &
sp=$!
BENCH_PIDS+=("$sp")
timeout 30 taskset -c 0 wrk -t1 -c16 -d3s "${H[@]}" "$URL" >"$RUN_DIR/wrk-count.txt" 2>&1 || true
wait "$sp" 2>/dev/null || true
forget_pid "$sp"
REQ=$(awk '/requests in/ { print $1 }' "$RUN_DIR/wrk-count.txt")
{
    echo "events: $EVENTS   requests: ${REQ:-0}"
    awk -F, -v r="${REQ:-0}" '/probe_bench_alloc/ && r > 0 { n = $3; sub(/.*:/, "", n); t += $1;
        printf "  %-20s %6.1f per request\n", n, $1 / r } END { if (r > 0) printf "  %-20s %6.1f per request\n", "total", t / r }' \
        "$RUN_DIR/stat.txt"
} | tee "$RUN_DIR/allocs-per-request.txt"

# 2. Attribute (few connections, one second: every allocation is recorded with its stack).
timeout 60 perf record -q -e probe_bench_alloc:mi_malloc_aligned --call-graph dwarf,4096 -p "$PID" -o "$RUN_DIR/perf-allocs.data" \
    -- sleep 1 >/dev/null 2>&1 &
sp=$!
BENCH_PIDS+=("$sp")
timeout 30 taskset -c 0 wrk -t1 -c2 -d1s "${H[@]}" "$URL" >/dev/null 2>&1 || true
wait "$sp" 2>/dev/null || true
forget_pid "$sp"
remove_probes
timeout 300 perf report -i "$RUN_DIR/perf-allocs.data" --no-inline --children --sort symbol -g none \
    --percent-limit 1 --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | cut -c1-170 \
    >"$RUN_DIR/allocs-callers-all.txt" || true
# Keep the frames that say where in the gateway (or hyper) the allocations come from.
grep -E 'portcullis_gateway::|portcullis_events::|hyper::|hyper_util::|http::' "$RUN_DIR/allocs-callers-all.txt" \
    | grep -v '^ *0\.00%' | head -n 60 | tee "$RUN_DIR/allocs-callers.txt"
rm -f "$RUN_DIR/perf-allocs.data"   # large; the text reports above are what is kept
log "results in $RUN_DIR"
