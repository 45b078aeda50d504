#!/usr/bin/env bash
# OCSP load test: ocsp-responder against `openssl ocsp -index` and cfssl's
# `ocspserve`, the same prepared requests sent by wrk to each on 127.0.0.1,
# with a population of 100,000 card certificates. Prints a table.
#
#   bench/ocsp/run.sh
#
# Environment (all optional):
#   OCSP_BENCH_DIR          population and results (default target/ocsp-bench;
#                           reused when present: delete it to rebuild)
#   OCSP_BENCH_CERTS        certificates in the population (100000)
#   OCSP_BENCH_SECONDS      seconds per measured run (10)
#   OCSP_BENCH_WARMUP_SECONDS  seconds of unmeasured warm-up before the first run (3)
#   OCSP_BENCH_CONNECTIONS  wrk connections (16)
#   OCSP_BENCH_THREADS      wrk threads (1: on 2 cores, leaves the other to the server)
#   OCSP_BENCH_WORKERS      ocsp-responder HTTP workers (2)
#   OCSP_BENCH_PEERS        peers to run: "openssl,cfssl" (default), "" for none
#   OCSP_BENCH_STRICT       1: a run with any error (connect, read, write,
#                           timeout, non-2xx) fails the script (the smoke run)
#   BENCH_PROFILE           release (default) or debug (the binaries `make test`
#                           builds: for the smoke run, not for figures)
#
# Smoke run (make bench-smoke): OCSP_BENCH_CERTS=1000 OCSP_BENCH_SECONDS=1
#   OCSP_BENCH_WARMUP_SECONDS=1 OCSP_BENCH_STRICT=1 BENCH_PROFILE=debug
#   OCSP_BENCH_DIR=target/ocsp-bench-smoke bench/ocsp/run.sh
#
# Exit status: non-zero when a step fails, when ocsp-responder does not
# pre-sign everything, answers a good, a revoked or a suspended certificate
# of the population wrongly (checked with `openssl ocsp`), or when a run
# gives no result (or, with OCSP_BENCH_STRICT=1, any error); the table is
# printed first.
#
# Steps: installs wrk and cfssl (Debian) if missing (without cfssl when it
# cannot be installed); builds the binaries (bench/profile.sh);
# `ocsp-bench setup` issues the population through ca-core's batch issuance
# (SQLite), activates it (certificates are issued on hold), revokes 1% and
# suspends 1%, and writes the peers' files
# and the prepared requests; cfssl signs its own responses (ocsprefresh, in
# a tmpfs copy of its certificate database). Then everything runs inside a
# fresh network namespace (`unshare -n`, only loopback up): the openssl
# responder listens on every interface (STACK.md pitfall 9). A fresh openssl
# responder serves each run, and its readiness is checked without connecting
# (pitfall 11). Results: $OCSP_BENCH_DIR/results.tsv, logs in logs/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DIR=${OCSP_BENCH_DIR:-$ROOT/target/ocsp-bench}
CERTS=${OCSP_BENCH_CERTS:-100000}
RUN_SECONDS=${OCSP_BENCH_SECONDS:-10}
WARMUP_SECONDS=${OCSP_BENCH_WARMUP_SECONDS:-3}
CONNS=${OCSP_BENCH_CONNECTIONS:-16}
THREADS=${OCSP_BENCH_THREADS:-1}
WORKERS=${OCSP_BENCH_WORKERS:-2}
PEERS=${OCSP_BENCH_PEERS-openssl,cfssl}
. "$ROOT/bench/profile.sh"
BIN=$BENCH_BIN

if [ "${1:-}" != "--inside" ]; then
    need() {
        if ! command -v "$1" >/dev/null; then
            apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
        fi
    }
    need wrk wrk
    need openssl openssl
    need curl curl
    need ss iproute2
    need unshare util-linux
    need python3 python3
    if [[ ",$PEERS," == *",cfssl,"* ]] && ! command -v cfssl >/dev/null; then
        need cfssl golang-cfssl || true
        if ! command -v cfssl >/dev/null; then
            echo "cfssl not available: measuring without it" >&2
            export OCSP_BENCH_PEERS=${PEERS//cfssl/}
            PEERS=$OCSP_BENCH_PEERS
        fi
    fi
    bench_build
    if [ ! -f "$DIR/setup.json" ]; then
        rm -rf "$DIR"
        echo "== building a population of $CERTS certificates in $DIR"
        "$BIN/ocsp-bench" setup --dir "$DIR" --certs "$CERTS"
    fi
    if [[ ",$PEERS," == *",cfssl,"* ]] && [ ! -s "$DIR/peer/cfssl-responses.txt" ]; then
        echo "== cfssl ocsprefresh: cfssl signs its responses"
        tmp=$(mktemp -d /dev/shm/ocsp-bench-cfssl.XXXXXX)
        python3 "$HERE/cfssl_db.py" "$tmp/certdb.sqlite" "$DIR/peer/cfssl-certs.jsonl"
        printf '{"driver":"sqlite3","data_source":"%s"}\n' "$tmp/certdb.sqlite" > "$tmp/db.json"
        start=$(date +%s.%N)
        cfssl ocsprefresh -db-config "$tmp/db.json" -ca "$DIR/peer/ca.pem" \
            -responder "$DIR/peer/responder.pem" -responder-key "$DIR/peer/responder-key.pem" -loglevel 3
        cfssl ocspdump -db-config "$tmp/db.json" > "$DIR/peer/cfssl-responses.txt"
        echo "   $(wc -l < "$DIR/peer/cfssl-responses.txt") responses in $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $start}") s"
        rm -rf "$tmp"
    fi
    exec unshare -n "$0" --inside
fi

# ---------------------------------------------------------------------------
# Inside the network namespace: only 127.0.0.1 exists.
# ---------------------------------------------------------------------------
ip link set lo up
OURS="" OPENSSL="" CFSSL=""
cleanup() { # the servers this script started, by their process ids
    for pid in $OURS $CFSSL; do kill "$pid" 2>/dev/null || true; done
    if [ -n "$OPENSSL" ]; then kill -KILL -- -"$OPENSSL" 2>/dev/null || kill -KILL "$OPENSSL" 2>/dev/null || true; fi
}
trap cleanup EXIT
LOGS=$DIR/logs
mkdir -p "$LOGS"
RESULTS=$DIR/results.tsv
: > "$RESULTS"
: > "$LOGS/wrk.log"
PASS=$("$BIN/ocsp-bench" passphrase)
REQ=$DIR/requests
PEER=$DIR/peer
POPULATION=$(python3 -c "import json;print(json.load(open('$DIR/setup.json'))['certificates'])")
# The responder also holds the 3 CA and 3 responder certificates.
EXPECTED=$((POPULATION + 6))

FAILURES=0
fail() { echo "   FAILED: $*" >&2; FAILURES=$((FAILURES + 1)); }

metric() { curl -s "http://127.0.0.1:18080/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

wait_listening() { # port [seconds]: waits for a listening socket without connecting
    for _ in $(seq 1 $((${2:-10} * 20))); do
        if ss -ltnH "sport = :$1" | grep -q .; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

wait_free() { # port: waits until nothing listens there any more
    for _ in $(seq 1 200); do
        if ! ss -ltnH "sport = :$1" | grep -q .; then return 0; fi
        sleep 0.05
    done
    echo "port $1 still in use: $(ss -ltnpH "sport = :$1")" >&2
    return 1
}

# wrk_run SERVER METHOD REQUESTS URL FILE
wrk_run() {
    local out line errors
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${RUN_SECONDS}s" --timeout 5s -s "$HERE/ocsp.lua" "$4" -- "$5" "$2" 2>&1) || true
    printf '### %s %s %s\n%s\n' "$1" "$2" "$3" "$out" >> "$LOGS/wrk.log"
    line=$(printf '%s\n' "$out" | grep '^RESULT' | tail -1 || true)
    if [ -z "$line" ]; then
        fail "$1 $2 $3: no result (see $LOGS/wrk.log)"
        return
    fi
    errors=$(printf '%s\n' "$line" | awk '{
        n = 0
        for (i = 2; i <= NF; i++) { split($i, p, "="); if (p[1] ~ /_err$|^timeouts$|^non2xx$/) n += p[2] }
        print n }')
    if [ "${OCSP_BENCH_STRICT:-0}" = 1 ] && [ "$errors" != 0 ]; then
        fail "$1 $2 $3: $errors errors (see $LOGS/wrk.log)"
    fi
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${line#RESULT }" >> "$RESULTS"
    echo "   $1 $2 $3: $(printf '%s\n' "$line" | grep -o 'rps=[0-9.]*') $(printf '%s\n' "$line" | grep -o 'p99_us=[0-9]*')"
}

# start_ours ARGS...: starts ocsp-responder; waits until every response is
# pre-signed; prints start-up time and memory.
start_ours() {
    local presign_per_cert=$1
    shift
    local t0 queue presigned rss ready=""
    t0=$(date +%s.%N)
    PKI_CONFIG=$DIR/pki.toml PKI_OCSP_PASSPHRASE=$PASS "$BIN/ocsp-responder" \
        --listen 127.0.0.1:18080 --workers "$WORKERS" --log-level warn "$@" \
        > "$LOGS/ocsp-responder.out" 2>> "$LOGS/ocsp-responder.err" &
    OURS=$!
    for _ in $(seq 1 1200); do
        queue=$(metric ocsp_refresh_queue || true)
        presigned=$(metric ocsp_presigned_responses || true)
        if [ "$queue" = "0" ] && [ -n "$presigned" ] && [ "$presigned" -ge $((EXPECTED * presign_per_cert)) ]; then
            ready=1
            break
        fi
        kill -0 "$OURS" 2>/dev/null || break
        sleep 0.25
    done
    if [ -z "$ready" ]; then
        fail "ocsp-responder $*: ${presigned:-no} responses pre-signed of $((EXPECTED * presign_per_cert)) (see $LOGS/ocsp-responder.err)"
        kill -0 "$OURS" 2>/dev/null || { echo "ocsp-responder exited" >&2; exit 1; }
    fi
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$OURS/status")
    STARTUP=$(awk "BEGIN {print $(date +%s.%N) - $t0}")
    printf '   ocsp-responder %s: %s responses pre-signed in %.1f s, RSS %d MB, pre-signed bytes %s MB\n' \
        "$*" "$presigned" "$STARTUP" $((rss / 1024)) "$(($(metric ocsp_presigned_bytes) / 1048576))"
    printf 'memory\t%s\t%s\t%s responses pre-signed in %.1f s, RSS %d MB (of which pre-signed responses %d MB)\n' \
        "ocsp-responder" "${*:---presign sha1,sha256}" "$presigned" "$STARTUP" $((rss / 1024)) \
        "$(($(metric ocsp_presigned_bytes) / 1048576))" >> "$RESULTS"
}

# check_status FLAG REASON: asks ocsp-responder, with `openssl ocsp`, about the
# first certificate of index.txt with that flag (V or R) and reason (empty
# for V), and checks the answer (good, or revoked with that reason).
check_status() {
    local serial want out
    serial=$(awk -F'\t' -v f="$1" -v r="$2" '$1 == f && (r == "" || $3 ~ "," r "$") { print $4; exit }' "$PEER/index.txt")
    if [ -z "$serial" ]; then
        fail "no certificate flagged $1 ${2:-} in $PEER/index.txt"
        return
    fi
    if [ "$1" = V ]; then want="good"; else want="revoked"; fi
    out=$(openssl ocsp -issuer "$PEER/ca.pem" -serial "0x$serial" -url http://127.0.0.1:18080 \
        -VAfile "$PEER/responder.pem" -no_nonce 2>&1) || true
    if ! printf '%s\n' "$out" | grep -q '^Response verify OK' \
        || ! printf '%s\n' "$out" | grep -qi "^0x$serial: $want\$" \
        || { [ -n "$2" ] && ! printf '%s\n' "$out" | grep -q "Reason: $2\$"; }; then
        fail "ocsp-responder on $serial (want $want ${2:-}): $(printf '%s' "$out" | tr '\n' ' ')"
    else
        echo "   ocsp-responder on a ${2:-good} certificate: ${want}${2:+ $2}, response verified"
    fi
}

stop_ours() {
    kill "$OURS" 2>/dev/null || true
    wait "$OURS" 2>/dev/null || true
    OURS=""
}

echo "== ocsp-responder ($POPULATION certificates, $WORKERS workers; wrk -t$THREADS -c$CONNS, ${RUN_SECONDS}s per run)"
start_ours 1 --presign sha1
stop_ours
start_ours 2
URL=http://127.0.0.1:18080
check_status V ""
check_status R keyCompromise
check_status R certificateHold
wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP_SECONDS}s" -s "$HERE/ocsp.lua" "$URL" -- "$REQ/sha1.hex" POST > /dev/null 2>&1 || true
wrk_run ocsp-responder POST sha1 "$URL" "$REQ/sha1.hex"
wrk_run ocsp-responder GET sha1 "$URL" "$REQ/sha1.path"
wrk_run ocsp-responder POST sha256 "$URL" "$REQ/sha256.hex"
wrk_run ocsp-responder POST sha1+nonce "$URL" "$REQ/sha1-nonce.hex"
wrk_run ocsp-responder GET sha1+nonce "$URL" "$REQ/sha1-nonce.path"
curl -s "$URL/metrics" > "$LOGS/ocsp-responder.metrics"
stop_ours

if [[ ",$PEERS," == *",openssl,"* ]]; then
    echo "== openssl ocsp -index (OpenSSL $(openssl version | awk '{print $2}'), -multi $WORKERS, fresh per run)"
    for run in "POST sha1 sha1.hex" "GET sha1 sha1.path" "POST sha1+nonce sha1-nonce.hex"; do
        set -- $run
        openssl ocsp -index "$PEER/index.txt" -port 18081 -CA "$PEER/ca.pem" \
            -rsigner "$PEER/responder.pem" -rkey "$PEER/responder-key.pem" -nmin 60 -multi "$WORKERS" \
            > /dev/null 2>> "$LOGS/openssl.err" &
        OPENSSL=$!
        wait_listening 18081
        wrk_run openssl "$1" "$2" http://127.0.0.1:18081 "$REQ/$3"
        # -multi ignores SIGTERM until a child exits (pitfall 11): KILL it and
        # its children at once, through the process group it makes its own
        # (-multi: setpgid); then wait until the port is free, so that the
        # next run's readiness check does not see this socket.
        kill -KILL -- -"$OPENSSL" 2>/dev/null || kill -KILL "$OPENSSL" 2>/dev/null || true
        wait "$OPENSSL" 2>/dev/null || true
        OPENSSL=""
        wait_free 18081
    done
fi

if [[ ",$PEERS," == *",cfssl,"* ]]; then
    echo "== cfssl ocspserve (pre-signed by cfssl ocsprefresh; POST only)"
    cfssl ocspserve -address 127.0.0.1 -port 18082 -responses "$PEER/cfssl-responses.txt" -loglevel 4 \
        > /dev/null 2>> "$LOGS/cfssl.err" &
    CFSSL=$!
    wait_listening 18082 300   # it parses every response before listening
    wrk_run cfssl POST sha1 http://127.0.0.1:18082 "$REQ/sha1.hex"
    wrk_run cfssl POST sha1+nonce http://127.0.0.1:18082 "$REQ/sha1-nonce.hex"
    kill "$CFSSL" 2>/dev/null || true
    wait "$CFSSL" 2>/dev/null || true
    CFSSL=""
fi

echo
echo "| server | method | request | req/s | p50 ms | p99 ms | errors | ocsp-responder ÷ server |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
    $1 == "memory" { next }
    {
        split($4, kv, " "); delete v
        for (i in kv) { split(kv[i], p, "="); v[p[1]] = p[2] }
        key = $2 " " $3
        errors = v["connect_err"] + v["read_err"] + v["write_err"] + v["timeouts"] + v["non2xx"]
        if ($1 == "ocsp-responder") ours[key] = v["rps"]
        ratio = (key in ours && v["rps"] > 0) ? sprintf("%.1f", ours[key] / v["rps"]) : "-"
        if ($1 == "ocsp-responder") ratio = "1.0"
        printf "| %s | %s | %s | %.0f | %.2f | %.2f | %d | %s |\n", $1, $2, $3, v["rps"], v["p50_us"] / 1000, v["p99_us"] / 1000, errors, ratio
    }' "$RESULTS"
echo
awk -F'\t' '$1 == "memory" { printf "memory: ocsp-responder %s: %s\n", $3, $4 }' "$RESULTS"
echo "population: $POPULATION certificates ($(python3 -c "import json;d=json.load(open('$DIR/setup.json'));print(d['revoked_or_suspended'])") revoked or suspended); machine: $(nproc) cores"
if [ "$FAILURES" != 0 ]; then
    echo "bench-ocsp: $FAILURES failure(s), see above" >&2
    exit 1
fi
