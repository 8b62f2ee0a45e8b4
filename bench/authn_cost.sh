#!/usr/bin/env bash
# What a JWT-authenticated request costs the gateway over an anonymous one, measured stably:
# instructions per request under callgrind, and CPU time per request from the kernel's
# per-thread run-time accounting, both over a fixed number of identical requests.
#
#   bench/authn_cost.sh [--no-build] [-n REQUESTS] [-r REPEATS] [--no-callgrind]
#
# One gateway serves two routes that differ only in authentication: /anon/ (public) and
# /jwt/ (an ES256 JWT, the token bench/features.sh uses, verification cache warm). A single
# client sends REQUESTS identical requests (default 2000) on one keep-alive connection,
# alternating anon and jwt batches, so both scenarios see the same process, the same warm
# caches and the same machine load.
#
#   * callgrind (valgrind --tool=callgrind): counters zeroed after a warm-up, dumped after
#     each batch (callgrind_control). Instruction counts do not depend on the machine's load,
#     which on the shared 2-core box makes them the only figure that repeats to within 1%.
#     Note: valgrind hides SHA-NI from the guest, so aws-lc's SHA-256 runs its AVX path there.
#   * CPU time: the gateway runs natively on core 1; the sum of its threads' run time
#     (/proc/PID/task/*/schedstat, nanoseconds) before and after each batch, REPEATS batches
#     of each (default 7), medians. KNOWN WEAK: with one sequential client each request pays
#     the runtime's wake-ups, so these figures (~100+ µs/request) are far above wrk's and do
#     not convert instructions to time yet; a batch reading 0 means the gateway had exited.
#
# Prints instructions/request, CPU µs/request, and the difference jwt - anon (target < 2 µs).
# Only 127.0.0.1 is used; a watchdog bounds the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

REQUESTS=2000
REPEATS=7
BUILD=1
CALLGRIND=1
while [ $# -gt 0 ]; do
    case "$1" in
        -n) REQUESTS=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --no-callgrind) CALLGRIND=0; shift ;;
        *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/authn-cost-$STAMP"
mkdir -p "$RUN_DIR"
install_traps
ensure_tools nginx openssl taskset python3
[ "$CALLGRIND" = 1 ] && ensure_tools valgrind
[ "$BUILD" = 1 ] && build_portcullis
[ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
snapshot_binary >"$RUN_DIR/env.txt"
start_watchdog $(( 900 + REQUESTS * REPEATS / 100 ))
log "load: $(uptime)"

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" 0
TOKEN=$(make_es256_jwt "$RUN_DIR")

# conf FILE PORT
conf() {
    cat >"$1" <<YAML
listeners:
  - address: 127.0.0.1:$2
limits:
  shutdown_grace: 1s
upstreams:
  app:
    targets: [http://127.0.0.1:$UP_PORT]
identity:
  jwt:
    - name: idp
      issuer: https://idp.bench
      audiences: [bench]
      algorithms: [ES256]
      keys: [$RUN_DIR/idp.pub]
routes:
  - name: anon
    match: { path_prefix: /anon/ }
    upstream: app
    auth: { public: true }
  - name: jwt
    match: { path_prefix: /jwt/ }
    upstream: app
    auth: { methods: [jwt:idp] }
events:
  file: ""
YAML
}

# The client: REQUESTS sequential requests on one keep-alive connection; every answer must
# be a 200 (a refused token would measure the failure path).
cat >"$RUN_DIR/client.py" <<'PY'
import http.client, sys
port, path, n, token = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = {"Authorization": f"Bearer {token}"} if path.startswith("/jwt/") else {}
conn = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        sys.exit(f"{path}: status {resp.status}")
conn.close()
PY
send() { python3 "$RUN_DIR/client.py" "$1" "$2" "$3" "$TOKEN"; }

# cpu_ns PID: run time of all the process's threads, in nanoseconds.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d\n", s }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A IR
if [ "$CALLGRIND" = 1 ]; then
    PORT=$(free_port)
    mkdir -p "$RUN_DIR/callgrind"
    conf "$RUN_DIR/callgrind/portcullis.yaml" "$PORT"
    (cd "$RUN_DIR/callgrind" && PORTCULLIS_LOG=warn exec taskset -c 1 valgrind --tool=callgrind \
        --callgrind-out-file="$RUN_DIR/callgrind/callgrind.out.%p" \
        "$PORTCULLIS_BIN" serve --config "$RUN_DIR/callgrind/portcullis.yaml") \
        >"$RUN_DIR/callgrind/portcullis.log" 2>&1 &
    VG_PID=$!
    BENCH_PIDS+=("$VG_PID")
    wait_port "$PORT" 120 || die "portcullis under valgrind did not start"
    send "$PORT" /anon/items 200
    send "$PORT" /jwt/items 200
    for scen in anon jwt; do
        callgrind_control -z "$VG_PID" >/dev/null
        send "$PORT" "/$scen/items" "$REQUESTS"
        callgrind_control -d "$scen" "$VG_PID" >/dev/null
        out=$(ls -t "$RUN_DIR"/callgrind/callgrind.out.* | head -1)
        mv "$out" "$RUN_DIR/callgrind/$scen.out"
        total=$(awk '/^(summary|totals):/ { print $2; exit }' "$RUN_DIR/callgrind/$scen.out")
        IR[$scen]=$(( total / REQUESTS ))
        log "callgrind $scen: ${IR[$scen]} instructions/request"
    done
    stop_pid "$VG_PID"
    forget_pid "$VG_PID"
fi

PORT=$(free_port)
mkdir -p "$RUN_DIR/native"
conf "$RUN_DIR/native/portcullis.yaml" "$PORT"
start_portcullis "$RUN_DIR/native/portcullis.yaml" 1 "$RUN_DIR/native" "$PORT"
GW=$STARTED_PID
send "$PORT" /anon/items 500
send "$PORT" /jwt/items 500
printf 'scenario\tns_per_req\n' >"$RUN_DIR/cpu.tsv"
for ((rep = 1; rep <= REPEATS; rep++)); do
    for scen in anon jwt; do
        before=$(cpu_ns "$GW")
        send "$PORT" "/$scen/items" "$REQUESTS"
        after=$(cpu_ns "$GW")
        printf '%s\t%s\n' "$scen" $(( (after - before) / REQUESTS )) >>"$RUN_DIR/cpu.tsv"
    done
done
log "load: $(uptime)"

{
    printf 'requests per batch: %s, CPU batches per scenario: %s\n' "$REQUESTS" "$REPEATS"
    printf 'scenario\tinstr/req\tcpu_us/req (median)\tcpu_us/req (min)\n'
    for scen in anon jwt; do
        med=$(awk -v s="$scen" '$1 == s { print $2 }' "$RUN_DIR/cpu.tsv" | median)
        min=$(awk -v s="$scen" '$1 == s { print $2 }' "$RUN_DIR/cpu.tsv" | sort -n | head -1)
        printf '%s\t%s\t%.2f\t%.2f\n' "$scen" "${IR[$scen]:--}" "$(echo "$med / 1000" | bc -l)" \
            "$(echo "$min / 1000" | bc -l)"
        eval "MED_$scen=$med"
    done
    if [ "$CALLGRIND" = 1 ]; then
        diff_ir=$(( IR[jwt] - IR[anon] ))
        per_us=$(echo "${IR[anon]} / ($MED_anon / 1000)" | bc -l)
        printf 'jwt - anon: %s instructions/request (%.2f µs at anon'"'"'s %.0f instructions/µs)\n' \
            "$diff_ir" "$(echo "$diff_ir / $per_us" | bc -l)" "$per_us"
    fi
    printf 'jwt - anon: %.2f µs CPU/request (medians; target < 2 µs)\n' \
        "$(echo "($MED_jwt - $MED_anon) / 1000" | bc -l)"
} | tee "$RUN_DIR/summary.txt"
log "results in $RUN_DIR"
