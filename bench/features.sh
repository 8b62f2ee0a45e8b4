#!/usr/bin/env bash
# What Portcullis's protections cost per request, Portcullis against itself on the same
# pinned layout as bench/run.sh (wrk + upstream on core 0, the gateway on core 1):
#
#   anon        public route, events off                     (the baseline)
#   jwt         ES256 JWT on every request (verification cache warm), events off
#   rl-memory   a per-IP limit that never refuses, memory store
#   rl-redis    the same limit in Redis (redis-server on core 0, shared-store mode)
#   events      anon + the event file on                     (the baseline for detect)
#   detect      events + live detection with the bundled Sigma rule pack (rules/)
#
#   bench/features.sh [-d SECONDS] [-r REPEATS] [-g GROUPS] [--no-build]
#
# GROUPS: comma-separated groups of scenarios; the members of a group are measured in turns,
# so the pairs that are compared see the same background load. Default
# "anon jwt,rl-memory rl-redis,events detect"; e.g. -g "events detect" runs only that pair.
#
# Prints requests/s and gateway CPU µs per request (medians), the JWT's extra CPU per request
# (target < 2 µs with the verification cache) and the Redis store's throughput relative to the
# memory store (target >= 80%), and what live detection costs in throughput, detect against
# events (target <= 5%; detection reads the event stream, so both write the event file).
# Only 127.0.0.1 is used; a watchdog bounds the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=8
REPEATS=3
BUILD=1
CONNS=64
while [ $# -gt 0 ]; do
    case "$1" in
        -d) DURATION=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        -g) GROUPS_ARG=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/features-$STAMP"
mkdir -p "$RUN_DIR"
install_traps
ensure_tools nginx wrk openssl taskset python3 redis-server
[ "$BUILD" = 1 ] && build_portcullis
IFS=, read -r -a GROUPS_TO_RUN <<<"${GROUPS_ARG:-anon jwt,rl-memory rl-redis,events detect}"
read -r -a SCENARIOS <<<"${GROUPS_TO_RUN[*]}"
start_watchdog $(( ${#SCENARIOS[@]} * (REPEATS * (DURATION + 4) + 10) + 120 ))
CLK_TCK=$(getconf CLK_TCK)

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" 0

# An ES256 key pair and a token signed with it (openssl signs; python turns the DER
# signature into JOSE's r||s).
openssl ecparam -name prime256v1 -genkey -noout -out "$RUN_DIR/idp.key" 2>/dev/null
openssl ec -in "$RUN_DIR/idp.key" -pubout -out "$RUN_DIR/idp.pub" 2>/dev/null
TOKEN=$(python3 - "$RUN_DIR/idp.key" <<'PY'
import base64, json, subprocess, sys, time
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
now = int(time.time())
body = b64(json.dumps({"iss": "https://idp.bench", "aud": "bench", "sub": "alice",
                       "scope": "items:read", "iat": now, "exp": now + 3600}).encode())
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
)

REDIS_PORT=$(free_port)
taskset -c 0 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$RUN_DIR/redis.log" 2>&1 &
BENCH_PIDS+=("$!")
wait_port "$REDIS_PORT" || die "redis-server did not start"

ADMIN_TOKEN=bench-admin-token-not-secret

# conf FILE PORT SCENARIO [ADMIN_PORT]
conf() {
    local file=$1 port=$2 scen=$3 admin_port=${4:-} auth="auth: { public: true }" store="" limits=""
    local events='  file: ""' detection="" admin=""
    case "$scen" in
        jwt) auth="auth: { methods: [jwt:idp] }" ;;
        rl-memory) limits="rate_limits: { before_auth: [per-ip] }" ;;
        rl-redis) limits="rate_limits: { before_auth: [per-ip] }"
                  store="  store: redis
  redis: { url: \"redis://127.0.0.1:$REDIS_PORT\", budget: 20ms }" ;;
    esac
    # Detection reads the event stream, so both detect and its baseline write the event file;
    # both get the admin API, to read the drop counters afterwards.
    case "$scen" in
        events|detect)
            events="  file: $(dirname "$file")/events.jsonl
  file_max_bytes: 256MiB
  file_max_files: 1"
            admin="admin:
  address: 127.0.0.1:$admin_port
  token: $ADMIN_TOKEN" ;;
    esac
    [ "$scen" = detect ] && detection="detection:
  rules: [$BENCH_ROOT/rules]"
    cat >"$file" <<YAML
listeners:
  - address: 127.0.0.1:$port
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
rate_limit:
$store
  limits:
    per-ip: { rate: 1000000, per: 1s, burst: 1000000, key: ip }
routes:
  - name: app
    upstream: app
    $auth
    $limits
events:
$events
$detection
$admin
YAML
}

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
printf 'scenario\trps\tcpu_us_per_req\tp50_ms\tp99_ms\n' >"$RUN_DIR/raw.tsv"

# measure SCENARIO REP: one wrk run against a started scenario, appended to raw.tsv.
declare -A PORT PID ADMIN_PORT
measure() {
    local scen=$1 rep=$2 hdr=() before after out reqs rps
    [ "$scen" = jwt ] && hdr=(-H "Authorization: Bearer $TOKEN")
    before=$(ticks "${PID[$scen]}")
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${hdr[@]}" "http://127.0.0.1:${PORT[$scen]}/items" 2>&1)
    after=$(ticks "${PID[$scen]}")
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    echo "$out" >"$RUN_DIR/$scen/wrk-$rep.txt"
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    python3 - "$scen" "$rps" "$before" "$after" "$CLK_TCK" "$reqs" "$p50" "$p99" >>"$RUN_DIR/raw.tsv" <<'PY'
import sys
scen, rps, before, after, tck, reqs, p50, p99 = sys.argv[1:]
def ms(v):  # wrk prints 850.00us, 2.31ms or 1.02s
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return round(float(v[: -len(unit)]) * f, 3)
    return float("nan")
cpu = (int(after) - int(before)) * 1e6 / int(tck) / int(reqs)
print(scen, rps, round(cpu, 2), ms(p50), ms(p99), sep="\t")
PY
    log "  $scen rep $rep: $rps req/s"
}

# Scenarios are started in groups; the members of a group are measured in turns (rotating
# the order each round), so slow drift in background load hits a pair that is compared,
# events against detect, alike.
for group in "${GROUPS_TO_RUN[@]}"; do
    read -r -a members <<<"$group"
    for scen in "${members[@]}"; do
        PORT[$scen]=$(free_port)
        ADMIN_PORT[$scen]=$(free_port)
        while [ "${ADMIN_PORT[$scen]}" = "${PORT[$scen]}" ]; do ADMIN_PORT[$scen]=$(free_port); done
        mkdir -p "$RUN_DIR/$scen"
        conf "$RUN_DIR/$scen/portcullis.yaml" "${PORT[$scen]}" "$scen" "${ADMIN_PORT[$scen]}"
        start_portcullis "$RUN_DIR/$scen/portcullis.yaml" 1 "$RUN_DIR/$scen" "${PORT[$scen]}"
        PID[$scen]=$STARTED_PID
        hdr=()
        [ "$scen" = jwt ] && hdr=(-H "Authorization: Bearer $TOKEN")
        code=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "http://127.0.0.1:${PORT[$scen]}/items")
        [ "$code" = 200 ] || die "$scen: smoke request answered $code (see $RUN_DIR/$scen/portcullis.log)"
        taskset -c 0 wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "http://127.0.0.1:${PORT[$scen]}/items" >/dev/null 2>&1 || true
    done
    n=${#members[@]}
    for ((rep = 1; rep <= REPEATS; rep++)); do
        for ((i = 0; i < n; i++)); do
            measure "${members[$(((i + rep - 1) % n))]}" "$rep"
        done
    done
    for scen in "${members[@]}"; do
        case "$scen" in
            events|detect)
                # Counters after the runs: events dropped (queue full) and, with detection on,
                # events the engine never saw and alerts raised (benign traffic: expect none).
                curl -s --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
                    "http://127.0.0.1:${ADMIN_PORT[$scen]}/metrics" >"$RUN_DIR/$scen/metrics.txt" || true
                grep -E '^portcullis_(events_dropped|events_emitted|detection_dropped|detection_alerts)' \
                    "$RUN_DIR/$scen/metrics.txt" | sed "s/^/  $scen: /" | tee -a "$RUN_DIR/counters.txt" >&2 || true
                ;;
        esac
        stop_pid "${PID[$scen]}"; forget_pid "${PID[$scen]}"
        # The event files are large; keep a few lines.
        if [ -f "$RUN_DIR/$scen/events.jsonl" ]; then
            head -n 3 "$RUN_DIR/$scen/events.jsonl" >"$RUN_DIR/$scen/events.sample.jsonl" || true
            rm -f "$RUN_DIR/$scen"/events.jsonl*
        fi
    done
done

python3 - "$RUN_DIR/raw.tsv" <<'PY' | tee "$RUN_DIR/results.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for s in ["anon", "jwt", "rl-memory", "rl-redis", "events", "detect"]:
    r = [x for x in rows if x["scenario"] == s]
    if r:
        med[s] = tuple(statistics.median(float(x[k]) for x in r) for k in ("rps", "cpu_us_per_req", "p50_ms", "p99_ms"))
print("| scenario | req/s | gateway CPU µs/req | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|")
for s, (rps, cpu, p50, p99) in med.items():
    print(f"| {s} | {rps:.0f} | {cpu:.1f} | {p50:.2f} | {p99:.2f} |")
print()
has = lambda *names: all(n in med for n in names)
if has("anon", "jwt"):
    print(f"- JWT (ES256, cached) extra CPU per request: {med['jwt'][1] - med['anon'][1]:+.1f} µs (target < 2 µs)")
if has("anon", "rl-memory"):
    print(f"- rate limit, memory store: {med['rl-memory'][1] - med['anon'][1]:+.1f} µs per request")
if has("rl-memory", "rl-redis"):
    print(f"- Redis store throughput / memory store: {med['rl-redis'][0] / med['rl-memory'][0]:.2f} (target >= 0.80); "
          f"added latency p50 {med['rl-redis'][2] - med['rl-memory'][2]:+.2f} ms, p99 {med['rl-redis'][3] - med['rl-memory'][3]:+.2f} ms")
if has("anon", "events"):
    print(f"- event file: req/s {100 * (med['events'][0] / med['anon'][0] - 1):+.1f}% against anon, "
          f"{med['events'][1] - med['anon'][1]:+.1f} µs per request")
if has("events", "detect"):
    cost = 100 * (1 - med['detect'][0] / med['events'][0])
    print(f"- detection throughput cost: {cost:.1f}% (target ≤ 5%: {'met' if cost <= 5 else 'MISSED'}), "
          f"{med['detect'][1] - med['events'][1]:+.1f} µs CPU per request")
PY
log "results in $RUN_DIR"
