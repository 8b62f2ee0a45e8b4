#!/usr/bin/env bash
# What Portcullis's protections cost per request, Portcullis against itself on the same
# pinned layout as bench/run.sh (wrk + upstream on core 0, the gateway on core 1):
#
#   anon        public route, events off                     (the baseline)
#   jwt         ES256 JWT on every request (verification cache warm), events off
#   rl-memory   a per-IP limit that never refuses, memory store
#   rl-redis    the same limit in Redis (redis-server on core 0, shared-store mode)
#
#   bench/features.sh [-d SECONDS] [-r REPEATS] [--no-build]
#
# Prints requests/s and gateway CPU µs per request (medians), the JWT's extra CPU per request
# (target < 2 µs with the verification cache) and the Redis store's throughput relative to the
# memory store (target >= 80%). Only 127.0.0.1 is used; a watchdog bounds the run.
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
        --no-build) BUILD=0; shift ;;
        *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/features-$STAMP"
mkdir -p "$RUN_DIR"
install_traps
ensure_tools nginx wrk openssl taskset python3 redis-server
[ "$BUILD" = 1 ] && build_portcullis
start_watchdog $(( 4 * (REPEATS * (DURATION + 4) + 10) + 120 ))
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

# conf FILE PORT SCENARIO
conf() {
    local file=$1 port=$2 scen=$3 auth="auth: { public: true }" store="" limits=""
    case "$scen" in
        jwt) auth="auth: { methods: [jwt:idp] }" ;;
        rl-memory) limits="rate_limits: { before_auth: [per-ip] }" ;;
        rl-redis) limits="rate_limits: { before_auth: [per-ip] }"
                  store="  store: redis
  redis: { url: \"redis://127.0.0.1:$REDIS_PORT\", budget: 20ms }" ;;
    esac
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
  file: ""
YAML
}

ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
printf 'scenario\trps\tcpu_us_per_req\n' >"$RUN_DIR/raw.tsv"
for scen in anon jwt rl-memory rl-redis; do
    port=$(free_port)
    mkdir -p "$RUN_DIR/$scen"
    conf "$RUN_DIR/$scen/portcullis.yaml" "$port" "$scen"
    start_portcullis "$RUN_DIR/$scen/portcullis.yaml" 1 "$RUN_DIR/$scen" "$port"
    pid=$STARTED_PID
    hdr=()
    [ "$scen" = jwt ] && hdr=(-H "Authorization: Bearer $TOKEN")
    code=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "http://127.0.0.1:$port/items")
    [ "$code" = 200 ] || die "$scen: smoke request answered $code (see $RUN_DIR/$scen/portcullis.log)"
    taskset -c 0 wrk -t1 -c"$CONNS" -d2s "${hdr[@]}" "http://127.0.0.1:$port/items" >/dev/null 2>&1 || true
    for ((rep = 1; rep <= REPEATS; rep++)); do
        before=$(ticks "$pid")
        out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$port/items" 2>&1)
        after=$(ticks "$pid")
        reqs=$(echo "$out" | awk '/requests in/ {print $1}')
        rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
        echo "$out" >"$RUN_DIR/$scen/wrk-$rep.txt"
        python3 -c "print('$scen', $rps, round(($after-$before)*1e6/$CLK_TCK/$reqs, 2), sep='\t')" >>"$RUN_DIR/raw.tsv"
    done
    stop_pid "$pid"; forget_pid "$pid"
done

python3 - "$RUN_DIR/raw.tsv" <<'PY' | tee "$RUN_DIR/results.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for s in ["anon", "jwt", "rl-memory", "rl-redis"]:
    r = [x for x in rows if x["scenario"] == s]
    med[s] = (statistics.median(float(x["rps"]) for x in r), statistics.median(float(x["cpu_us_per_req"]) for x in r))
print("| scenario | req/s | gateway CPU µs/req |\n|---|---:|---:|")
for s, (rps, cpu) in med.items():
    print(f"| {s} | {rps:.0f} | {cpu:.1f} |")
print()
print(f"- JWT (ES256, cached) extra CPU per request: {med['jwt'][1] - med['anon'][1]:+.1f} µs (target < 2 µs)")
print(f"- rate limit, memory store: {med['rl-memory'][1] - med['anon'][1]:+.1f} µs per request")
print(f"- Redis store throughput / memory store: {med['rl-redis'][0] / med['rl-memory'][0]:.2f} (target >= 0.80)")
PY
log "results in $RUN_DIR"
