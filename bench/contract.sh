#!/usr/bin/env bash
# The full API-protection pipeline on a 2 KB JSON POST, Portcullis against nginx and nginx +
# ModSecurity + the OWASP Core Rule Set, on the pinned layout of bench/run.sh (wrk and the
# upstream on core 0, the proxy under test on core 1, one worker each):
#
#   nginx         nginx as a plain TLS reverse proxy (access log off)
#   nginx-modsec  the same nginx + ModSecurity v3 + OWASP CRS (Debian packages), paranoia level 1,
#                 SecRuleEngine On (blocking), the recommended modsecurity.conf otherwise
#   pc-base       Portcullis: TLS, ES256 JWT, a per-IP rate limit that never refuses, events to a file
#   pc-all        pc-base + OpenAPI request validation (strict) and response filtering + attack
#                 inspection in enforce mode: the issue's "everything on"
#   pc-all-dp     pc-all + data protection (every built-in detector masks) on the response
#
#   bench/contract.sh [-d SECONDS] [-c CONNECTIONS] [-r REPEATS] [-s VARIANT,...] [--no-build]
#
# Every variant is started once, checked (the benign body passes, an attack is refused where a
# check is on), warmed up, then the variants are measured in turns, REPEATS times each, so slow
# drift in background load hits all of them alike. Prints req/s, latency and proxy CPU per
# request (medians) and the ratios to plain nginx: Portcullis all-on (target >= 0.5) and
# nginx + ModSecurity. Everything lands in bench/out/contract-<UTC timestamp>/.
# Only 127.0.0.1 is used; a watchdog bounds the run.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=10
CONNS=64
REPEATS=3
VARIANTS="nginx,nginx-modsec,pc-base,pc-all,pc-all-dp"
BUILD=1
LOAD_CPU=0
PROXY_CPU=1
while [ $# -gt 0 ]; do
    case "$1" in
        -d) DURATION=$2; shift 2 ;;
        -c) CONNS=$2; shift 2 ;;
        -r) REPEATS=$2; shift 2 ;;
        -s) VARIANTS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ "$(nproc)" -ge 2 ] || { echo "needs at least 2 CPUs" >&2; exit 1; }
IFS=',' read -r -a VARIANT_LIST <<<"$VARIANTS"
for v in "${VARIANT_LIST[@]}"; do
    case "$v" in
        nginx|nginx-modsec|pc-base|pc-all|pc-all-dp) ;;
        *) echo "unknown variant $v (nginx, nginx-modsec, pc-base, pc-all, pc-all-dp)" >&2; exit 2 ;;
    esac
done

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RUN_DIR="$BENCH_DIR/out/contract-$STAMP"
mkdir -p "$RUN_DIR"
install_traps
ensure_tools nginx wrk openssl taskset pgrep curl python3
ensure_modsecurity
[ "$BUILD" = 1 ] && build_portcullis
[ -x "$PORTCULLIS_BIN" ] || die "no binary at $PORTCULLIS_BIN (run without --no-build)"
BINARY_INFO=$(snapshot_binary)
PORTCULLIS_BIN="$RUN_DIR/bin/portcullis"
start_watchdog $(( ${#VARIANT_LIST[@]} * (REPEATS * (DURATION + 8) + 30) + 180 ))
CLK_TCK=$(getconf CLK_TCK)

{
    echo "date_utc: $(date -u '+%Y-%m-%d %H:%M:%S')"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel: $(uname -r)"
    echo "loadavg_at_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/^nginx version: //')"
    echo "modsecurity: libmodsecurity3 $(dpkg-query -W -f='${Version}' libmodsecurity3 2>/dev/null || echo '?'), connector $(dpkg-query -W -f='${Version}' libnginx-mod-http-modsecurity 2>/dev/null || echo '?'), CRS $(dpkg-query -W -f='${Version}' modsecurity-crs 2>/dev/null || echo '?')"
    echo "wrk: $(wrk -v 2>&1 | head -n1)"
    echo "$BINARY_INFO"
    echo "portcullis: $("$PORTCULLIS_BIN" version) git $(cd "$BENCH_ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$BENCH_ROOT" && [ -n "$(git status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ' (working tree modified)')"
    echo "params: duration=${DURATION}s connections=$CONNS repeats=$REPEATS wrk_threads=1 load_cpu=$LOAD_CPU proxy_cpu=$PROXY_CPU variants=$VARIANTS"
} >"$RUN_DIR/env.txt"
cat "$RUN_DIR/env.txt" >&2

# ---------------------------------------------------------------------------------------------
# Fixed pieces: upstream, certificate, token, request body, OpenAPI document, wrk script.

UP_PORT=$(free_port)
mkdir -p "$RUN_DIR/upstream"
start_upstream "$RUN_DIR/upstream" "$UP_PORT" "$LOAD_CPU"
log "upstream nginx on 127.0.0.1:$UP_PORT (core $LOAD_CPU)"

make_test_cert "$RUN_DIR"
CERT="$RUN_DIR/cert.pem"
KEY="$RUN_DIR/key.pem"
TOKEN=$(make_es256_jwt "$RUN_DIR")
[ -n "$TOKEN" ] || die "no JWT"

# The API host name: a numeric Host would add CRS rule 920350's anomaly score to every request.
API_HOST=api.bench.test
API_PATH=/v1/orders

# A ~2 KB order: 20 top-level properties (strings, integers, a boolean, arrays, nested
# objects), plain business values that neither the CRS nor Portcullis's detectors flag.
# body.json is what is sent; attack.json carries a SQL injection in one string;
# extra.json has one undeclared property (mass assignment).
python3 - "$RUN_DIR" <<'PY'
import json, sys
d = sys.argv[1]
address = lambda street, city, code: {"street": street, "city": city, "postal_code": code, "country": "DE"}
order = {
    "order_id": "ord-2026-000123457",
    "customer_id": 884213,
    "customer_name": "Maria Schneider",
    "email": "maria.schneider@example.com",
    "phone": "+49 30 1234567",
    "currency": "EUR",
    "total_cents": 25980,
    "item_count": 6,
    "created_at": "2026-11-29T10:15:00Z",
    "channel": "mobile",
    "locale": "de-DE",
    "loyalty_points": 1250,
    "priority": 2,
    "gift": True,
    "gift_message": "Happy birthday and all the best for the coming year, with love from the whole team",
    "notes": "Please leave the parcel with the neighbour at number twelve if nobody is at home in the afternoon, "
             "and ring twice because the bell on the ground floor is quiet",
    "shipping_address": address("Friedrichstrasse 123", "Berlin", "10117"),
    "billing_address": address("Karl Marx Allee 45", "Berlin", "10243"),
    "tags": ["express", "gift", "newsletter", "returning customer", "winter campaign", "mobile app"],
    "items": [
        {"sku": f"SKU-{1000 + i:05d}", "name": name, "quantity": q, "unit_price_cents": p}
        for i, (name, q, p) in enumerate([
            ("Wool scarf in dark green", 1, 3990), ("Leather gloves size M", 1, 5490),
            ("Ceramic coffee mug", 2, 1290), ("Notebook with dotted pages", 1, 990),
            ("Winter socks three pack", 1, 1490), ("Scented candle cedar", 1, 2490),
            ("Wooden phone stand", 1, 1990), ("Reusable water bottle", 1, 2260),
            ("Cotton tote bag natural", 2, 890), ("Hand cream with almond oil", 1, 1150),
            ("Board game for two players", 1, 2990), ("Linen napkins set of four", 1, 1890),
        ])
    ],
}
text = json.dumps(order, separators=(",", ":"))
open(f"{d}/body.json", "w").write(text)
attack = dict(order, notes="1' UNION SELECT username, password FROM users--")
open(f"{d}/attack.json", "w").write(json.dumps(attack, separators=(",", ":")))
extra = dict(order, is_admin=True)
open(f"{d}/extra.json", "w").write(json.dumps(extra, separators=(",", ":")))
print(len(text), file=sys.stderr)
PY
BODY_BYTES=$(wc -c <"$RUN_DIR/body.json")
log "request body: $BODY_BYTES bytes"

cat >"$RUN_DIR/orders.yaml" <<'YAML'
# Written by bench/contract.sh: the one operation the benchmark calls.
openapi: 3.0.3
info: { title: orders (bench), version: "1" }
paths:
  /v1/orders:
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Order" }
      responses:
        "200":
          description: the stored order
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Stored" }
components:
  schemas:
    Address:
      type: object
      required: [street, city, postal_code, country]
      properties:
        street: { type: string, maxLength: 120 }
        city: { type: string, maxLength: 80 }
        postal_code: { type: string, pattern: "^[0-9A-Z -]{3,10}$" }
        country: { type: string, minLength: 2, maxLength: 2 }
    Item:
      type: object
      required: [sku, quantity, unit_price_cents]
      properties:
        sku: { type: string, pattern: "^SKU-[0-9]{5}$" }
        name: { type: string, maxLength: 120 }
        quantity: { type: integer, minimum: 1, maximum: 100 }
        unit_price_cents: { type: integer, minimum: 0 }
    Order:
      type: object
      required: [order_id, customer_id, currency, items]
      properties:
        order_id: { type: string, maxLength: 40 }
        customer_id: { type: integer, format: int64, minimum: 1 }
        customer_name: { type: string, maxLength: 120 }
        email: { type: string, format: email, maxLength: 254 }
        phone: { type: string, maxLength: 32 }
        currency: { type: string, enum: [EUR, USD, GBP, CHF] }
        total_cents: { type: integer, minimum: 0 }
        item_count: { type: integer, minimum: 0, maximum: 1000 }
        created_at: { type: string, format: date-time }
        channel: { type: string, enum: [web, mobile, store, phone] }
        locale: { type: string, maxLength: 10 }
        loyalty_points: { type: integer, minimum: 0 }
        priority: { type: integer, minimum: 0, maximum: 5 }
        gift: { type: boolean }
        gift_message: { type: string, maxLength: 500 }
        notes: { type: string, maxLength: 1000 }
        shipping_address: { $ref: "#/components/schemas/Address" }
        billing_address: { $ref: "#/components/schemas/Address" }
        tags: { type: array, maxItems: 20, items: { type: string, maxLength: 40 } }
        items: { type: array, minItems: 1, maxItems: 100, items: { $ref: "#/components/schemas/Item" } }
    Stored:
      type: object
      properties:
        id: { type: integer }
        name: { type: string }
        price:
          type: object
          properties:
            amount: { type: integer }
            currency: { type: string }
        tags: { type: array, items: { type: string } }
        in_stock: { type: boolean }
YAML

# wrk: POST the body with the token (the body and headers are fixed strings, so wrk builds the
# request once and replays it).
python3 - "$RUN_DIR" "$TOKEN" "$API_HOST" <<'PY'
import sys
d, token, host = sys.argv[1:]
body = open(f"{d}/body.json").read()
assert "]==]" not in body
open(f"{d}/post.lua", "w").write(f"""-- Written by bench/contract.sh.
wrk.method = "POST"
wrk.headers["Host"] = "{host}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.headers["User-Agent"] = "portcullis-bench/wrk"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = [==[{body}]==]
""")
PY

# ---------------------------------------------------------------------------------------------
# Configs.

# nginx_conf DIR PORT MODSEC(0|1): one worker, TLS 1.3, the headers Portcullis adds.
nginx_conf() {
    local dir=$1 port=$2 modsec=$3 load="" rules=""
    mkdir -p "$dir/tmp" && chmod 1777 "$dir/tmp"
    if [ "$modsec" = 1 ]; then
        load="load_module $MODSEC_MODULE;"
        rules="modsecurity on;
        modsecurity_rules_file $dir/modsec-main.conf;"
        # The recommended modsecurity.conf with the engine switched to blocking, files moved
        # into the run folder and the status beacon (a DNS lookup) off.
        sed -e 's/^SecRuleEngine .*/SecRuleEngine On/' \
            -e "s|^SecAuditLog .*|SecAuditLog $dir/tmp/modsec_audit.log|" \
            -e "s|^SecUnicodeMapFile unicode.mapping|SecUnicodeMapFile $(dirname "$MODSEC_RECOMMENDED")/unicode.mapping|" \
            -e "s|^SecTmpDir .*|SecTmpDir $dir/tmp/|" \
            -e "s|^SecDataDir .*|SecDataDir $dir/tmp/|" \
            -e 's/^SecStatusEngine .*/SecStatusEngine Off/' \
            "$MODSEC_RECOMMENDED" >"$dir/modsecurity.conf"
        grep -q '^SecRuleEngine On' "$dir/modsecurity.conf" || die "could not switch SecRuleEngine On"
        cat >"$dir/modsec-main.conf" <<EOF
# Written by bench/contract.sh: recommended base config, CRS setup, paranoia level 1, CRS rules.
Include $dir/modsecurity.conf
Include $CRS_ETC/crs-setup.conf
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=1"
Include $CRS_ETC/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include $CRS_DIR/rules/*.conf
Include $CRS_ETC/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
EOF
    fi
    cat >"$dir/nginx.conf" <<EOF
# Written by bench/contract.sh.
$load
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 16384; }
http {
$(nginx_common_http "$dir")
    server_tokens off;
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream backend {
        server 127.0.0.1:$UP_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port ssl backlog=4096;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.3;
        $rules
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
            proxy_set_header X-Request-Id \$request_id;
            proxy_hide_header Server;
            add_header X-Request-Id \$request_id always;
            add_header X-Content-Type-Options nosniff always;
            add_header Content-Security-Policy "default-src 'none'; frame-ancestors 'none'" always;
            add_header Referrer-Policy no-referrer always;
            add_header Strict-Transport-Security "max-age=31536000" always;
        }
    }
}
EOF
}

# pc_conf FILE PORT VARIANT WORKDIR
pc_conf() {
    local file=$1 port=$2 variant=$3 wd=$4 contract=""
    case "$variant" in
        pc-all) contract="    openapi: { spec: $RUN_DIR/orders.yaml }
    inspect: { mode: enforce }" ;;
        pc-all-dp) contract="    openapi: { spec: $RUN_DIR/orders.yaml }
    inspect: { mode: enforce }
    data_protection: { detectors: { \"*\": mask } }" ;;
    esac
    cat >"$file" <<YAML
# Written by bench/contract.sh ($variant). Admin API off (no admin section).
listeners:
  - name: bench
    address: 127.0.0.1:$port
    tls:
      certificates:
        - cert: $CERT
          key: $KEY
      min_version: "1.3"
limits:
  shutdown_grace: 1s
upstreams:
  app:
    targets: [http://127.0.0.1:$UP_PORT]
    max_idle_per_target: 64
identity:
  jwt:
    - name: idp
      issuer: https://idp.bench
      audiences: [bench]
      algorithms: [ES256]
      keys: [$RUN_DIR/idp.pub]
rate_limit:
  limits:
    per-ip: { rate: 1000000, per: 1s, burst: 1000000, key: ip }
routes:
  - name: orders
    upstream: app
    auth: { methods: [jwt:idp] }
    rate_limits: { before_auth: [per-ip] }
$contract
events:
  file: $wd/events.jsonl
  file_max_bytes: 256MiB
  file_max_files: 1
YAML
}

# ---------------------------------------------------------------------------------------------
# Start and check every variant.

# post_code URL BODY_FILE [AUTH(1|0)] -> HTTP status of one POST (the response body goes to
# $RUN_DIR/last-response.txt).
post_code() {
    local url=$1 body=$2 auth=${3:-1} hdr=()
    [ "$auth" = 1 ] && hdr=(-H "Authorization: Bearer $TOKEN")
    curl -sk --max-time 10 -o "$RUN_DIR/last-response.txt" -w '%{http_code}' -X POST \
        -H "Host: $API_HOST" -H 'Content-Type: application/json' -H 'Accept: application/json' \
        -H 'User-Agent: portcullis-bench/curl' "${hdr[@]}" --data-binary "@$body" "$url" || echo 000
}

# expect_code VARIANT WHAT WANT URL BODY_FILE [AUTH]
expect_code() {
    local variant=$1 what=$2 want=$3 got
    shift 3
    got=$(post_code "$@")
    [ "$got" = "$want" ] || die "$variant: $what answered $got, expected $want: $(head -c 400 "$RUN_DIR/last-response.txt")"
    log "  $variant: $what -> $got"
}

declare -A URL PIDS
for v in "${VARIANT_LIST[@]}"; do
    dir="$RUN_DIR/$v"
    mkdir -p "$dir"
    port=$(free_port)
    while [ "$port" = "$UP_PORT" ]; do port=$(free_port); done
    case "$v" in
        nginx|nginx-modsec)
            modsec=0
            [ "$v" = nginx-modsec ] && modsec=1
            nginx_conf "$dir" "$port" "$modsec"
            taskset -c "$PROXY_CPU" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
                -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
            master=$!
            BENCH_PIDS+=("nginx:$master")
            wait_port "$port" 30 || die "$v did not start (see $dir/error.log, $dir/stdout.log)"
            PIDS[$v]="$master $(pgrep -P "$master" | tr '\n' ' ')"
            ;;
        *)
            pc_conf "$dir/portcullis.yaml" "$port" "$v" "$dir"
            start_portcullis "$dir/portcullis.yaml" "$PROXY_CPU" "$dir" "$port"
            PIDS[$v]=$STARTED_PID
            ;;
    esac
    URL[$v]="https://127.0.0.1:$port$API_PATH"
    log "$v on 127.0.0.1:$port (pids ${PIDS[$v]}, core $PROXY_CPU)"

    expect_code "$v" "benign 2 KB order" 200 "${URL[$v]}" "$RUN_DIR/body.json"
    grep -q '"widget"' "$RUN_DIR/last-response.txt" || die "$v: unexpected body: $(head -c 400 "$RUN_DIR/last-response.txt")"
    case "$v" in
        nginx-modsec)
            # The benign body must pass the CRS without even a warning (a matched rule would
            # also mean an error-log line per request).
            if grep -q 'ModSecurity: Warning' "$dir/error.log"; then
                grep 'ModSecurity: Warning' "$dir/error.log" | head -n 5 >&2
                die "$v: the CRS flagged the benign order (see $dir/error.log)"
            fi
            expect_code "$v" "SQL injection in a JSON string" 403 "${URL[$v]}" "$RUN_DIR/attack.json"
            ;;
        pc-base)
            expect_code "$v" "no token" 401 "${URL[$v]}" "$RUN_DIR/body.json" 0
            ;;
        pc-all|pc-all-dp)
            expect_code "$v" "no token" 401 "${URL[$v]}" "$RUN_DIR/body.json" 0
            expect_code "$v" "undeclared property" 400 "${URL[$v]}" "$RUN_DIR/extra.json"
            expect_code "$v" "SQL injection in a JSON string" 403 "${URL[$v]}" "$RUN_DIR/attack.json"
            ;;
    esac
done

# Warm-up: fill upstream keep-alive pools, JWT caches, fault in memory.
for v in "${VARIANT_LIST[@]}"; do
    timeout 30 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d3s -s "$RUN_DIR/post.lua" "${URL[$v]}" \
        >"$RUN_DIR/$v/wrk-warmup.txt" 2>&1 || true
done

# ---------------------------------------------------------------------------------------------
# Measure.

# wait_idle PID...: a proxy that is slower than the load may still be working off requests
# queued by the previous run when wrk stops; wait (up to 60 s) until its CPU time stops
# growing, so one run's backlog is not counted in the next.
wait_idle() {
    local a b quiet=0 i
    a=$(ticks "$@")
    for ((i = 0; i < 120; i++)); do
        sleep 0.5
        b=$(ticks "$@")
        if ((b - a <= 1)); then quiet=$((quiet + 1)); else quiet=0; fi
        ((quiet >= 2)) && return 0
        a=$b
    done
    log "  still busy after 60 s: $*"
}

ticks() {
    local p t=0 x
    for p in "$@"; do
        x=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || x=0
        t=$((t + ${x:-0}))
    done
    echo "$t"
}

RAW="$RUN_DIR/raw.tsv"
printf 'variant\trep\trps\tp50_ms\tp99_ms\trequests\tcpu_ticks\terrors\n' >"$RAW"
measure() {
    local v=$1 rep=$2 out="$RUN_DIR/$1/wrk-$2.txt" t0 t1
    # shellcheck disable=SC2086
    wait_idle ${PIDS[$v]}
    # shellcheck disable=SC2086
    t0=$(ticks ${PIDS[$v]})
    timeout $((DURATION + 20)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
        --timeout 10s --latency -s "$RUN_DIR/post.lua" "${URL[$v]}" >"$out" 2>&1 \
        || log "wrk exited with an error ($out)"
    # shellcheck disable=SC2086
    t1=$(ticks ${PIDS[$v]})
    python3 - "$out" "$v" "$rep" "$((t1 - t0))" >>"$RAW" <<'PY'
import re, sys
path, v, rep, dt = sys.argv[1:]
text = open(path).read()
def ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m.group(2)] if m else float("nan")
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
print("\t".join(str(x) for x in [v, rep, rps.group(1) if rps else "nan", pct(50), pct(99),
                                 req.group(1) if req else 0, dt, errors]))
PY
    tail -n1 "$RAW" | awk -F'\t' -v tck="$CLK_TCK" \
        '{ printf "  %-13s rep %s: %9.0f req/s  p50 %8.2f ms  p99 %8.2f ms  cpu %8.1f us/req  errors %s\n",
           $1, $2, $3, $4, $5, ($6 > 0 ? $7 / tck * 1e6 / $6 : 0), $8 }' | tee -a "$RUN_DIR/run.log" >&2
}

n=${#VARIANT_LIST[@]}
for ((rep = 1; rep <= REPEATS; rep++)); do
    # Rotate the order each round.
    for ((i = 0; i < n; i++)); do
        measure "${VARIANT_LIST[$(((i + rep - 1) % n))]}" "$rep"
    done
done

for v in "${VARIANT_LIST[@]}"; do
    case "$v" in
        nginx*) echo "$v worker RSS kB: $(for p in ${PIDS[$v]}; do rss_kb "$p"; done | tr '\n' ' ')" ;;
        *) echo "$v RSS kB: $(rss_kb "${PIDS[$v]}")  event lines: $(cat "$RUN_DIR/$v"/events.jsonl* 2>/dev/null | wc -l)" ;;
    esac
done | tee "$RUN_DIR/proc.txt" >&2
# The event files are large: keep a few lines.
for v in "${VARIANT_LIST[@]}"; do
    if [ -f "$RUN_DIR/$v/events.jsonl" ]; then
        grep '"class_uid":4002' "$RUN_DIR/$v/events.jsonl" | head -n 2 >"$RUN_DIR/$v/events.sample.jsonl" || true
        rm -f "$RUN_DIR/$v"/events.jsonl*
    fi
done
echo "loadavg_at_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN_DIR/env.txt"

python3 - "$RAW" "$CLK_TCK" "$BODY_BYTES" <<'PY' | tee "$RUN_DIR/results.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
tck, body = float(sys.argv[2]), sys.argv[3]
title = {
    "nginx": "nginx, plain TLS proxy",
    "nginx-modsec": "nginx + ModSecurity 3 + CRS 3.3 (PL1, blocking)",
    "pc-base": "Portcullis: TLS + JWT + rate limit + events",
    "pc-all": "Portcullis: + OpenAPI + inspect (all on)",
    "pc-all-dp": "Portcullis: all on + data protection",
}
med = {}
for v in title:
    r = [x for x in rows if x["variant"] == v]
    if not r:
        continue
    cpu = [int(x["cpu_ticks"]) / tck * 1e6 / int(x["requests"]) for x in r if int(x["requests"]) > 0]
    med[v] = {
        "rps": statistics.median(float(x["rps"]) for x in r),
        "p50": statistics.median(float(x["p50_ms"]) for x in r),
        "p99": statistics.median(float(x["p99_ms"]) for x in r),
        "cpu": statistics.median(cpu) if cpu else float("nan"),
        "errors": sum(int(x["errors"]) for x in r),
        "n": len(r),
    }
print(f"{body}-byte JSON POST over TLS 1.3, medians of {max(m['n'] for m in med.values())} runs\n")
print("| variant | req/s | p50 ms | p99 ms | proxy CPU µs/req | non-2xx + socket errors |")
print("|---|---:|---:|---:|---:|---:|")
for v, m in med.items():
    print(f"| {title[v]} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['cpu']:.1f} | {m['errors']} |")
print()
base = med.get("nginx", {}).get("rps")
if base:
    if "pc-all" in med:
        r = med["pc-all"]["rps"] / base
        print(f"- Portcullis all-on / nginx plain: {r:.2f} (target >= 0.5 {'met' if r >= 0.5 else 'MISSED'})")
    if "pc-base" in med:
        print(f"- Portcullis TLS+JWT+rate limit+events / nginx plain: {med['pc-base']['rps'] / base:.2f}")
    if "pc-all-dp" in med:
        print(f"- Portcullis all-on + data protection / nginx plain: {med['pc-all-dp']['rps'] / base:.2f}")
    if "nginx-modsec" in med:
        r = med["nginx-modsec"]["rps"] / base
        print(f"- nginx + ModSecurity + CRS / nginx plain: {r:.4f}" + (f" (1/{1 / r:.0f})" if r > 0 else ""))
if "pc-all" in med and "pc-base" in med:
    a, b = med["pc-all"], med["pc-base"]
    print(f"- OpenAPI + inspection stages: req/s {100 * (a['rps'] / b['rps'] - 1):+.1f}% against pc-base, "
          f"{a['cpu'] - b['cpu']:+.1f} µs CPU per request")
if "pc-all-dp" in med and "pc-all" in med:
    a, b = med["pc-all-dp"], med["pc-all"]
    print(f"- data protection on the response: req/s {100 * (a['rps'] / b['rps'] - 1):+.1f}% against pc-all, "
          f"{a['cpu'] - b['cpu']:+.1f} µs CPU per request")
if "nginx-modsec" in med and "pc-all" in med and med["nginx-modsec"]["rps"] > 0:
    print(f"- Portcullis all-on / nginx + ModSecurity: {med['pc-all']['rps'] / med['nginx-modsec']['rps']:.1f}x")
if any(m["errors"] for m in med.values()):
    print("- WARNING: some runs had non-2xx answers or socket errors (see wrk-*.txt)")
PY
log "results in $RUN_DIR"
