#!/usr/bin/env bash
# Slow clients against a real ocsp-responder: a demo CA on SQLite in a
# temporary directory, the responder on a free port, then
# bench/hostile/slowloris.py (its output: slow connections still open, the
# responder's file descriptors and resident memory over time).
#
#   bench/hostile/run.sh [BIN_DIR] [slowloris.py options...]
#   bench/hostile/run.sh target/release --connections 300 --duration 130
#
# BIN_DIR holds pki-admin and ocsp-responder (default: target/release).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-$ROOT/target/release}
shift || true
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/pki.toml" <<TOML
data_dir = "$WORK/data"
database_url = "sqlite://$WORK/data/pki.sqlite"
TOML
export PKI_CONFIG=$WORK/pki.toml PKI_CA_PASSPHRASE=bench-ca PKI_OCSP_PASSPHRASE=bench-ocsp
"$BIN/pki-admin" migrate > /dev/null   # the schema first (the only command that changes it)
"$BIN/pki-admin" init > /dev/null
env -u PKI_CA_PASSPHRASE "$BIN/ocsp-responder" --listen 127.0.0.1:0 > "$WORK/out" 2> "$WORK/log" &
PID=$!
for _ in $(seq 1 600); do grep -q "listening on" "$WORK/out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(sed -n 's/.*listening on http:\/\///p' "$WORK/out" | head -1)
until curl -sf "http://$ADDR/health" > /dev/null; do sleep 0.2; done
echo "ocsp-responder $("$BIN/ocsp-responder" --version) pid $PID on $ADDR"
python3 "$ROOT/bench/hostile/slowloris.py" --addr "$ADDR" --pid "$PID" "$@"
echo "a normal client meanwhile: $(curl -s -o /dev/null -w '%{http_code} in %{time_total} s' "http://$ADDR/health")"
