#!/usr/bin/env bash
# CRL generation benchmark: crl-publisher against `openssl ca -gencrl` and
# `cfssl gencrl` over the same revoked serials (10,000, 100,000, 1,000,000),
# wall time and peak memory from /usr/bin/time -v. Prints a Markdown table.
#
#   bench/crl/run.sh                         # SQLite, all three sizes
#   bench/crl/run.sh --backend postgres      # PostgreSQL (PKI_BENCH_POSTGRES_URL)
#   bench/crl/run.sh --sizes 10000 --runs 1  # any crl-bench option
#
# Needs: openssl, /usr/bin/time (Debian `time`), cfssl (Debian `golang-cfssl`,
# installed here when missing and running as root; otherwise pass --no-cfssl).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/time ]; then
    if [ "$(id -u)" = 0 ]; then apt-get install -y time >/dev/null; else echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; fi
fi
extra=()
if ! command -v cfssl >/dev/null; then
    if [ "$(id -u)" = 0 ] && apt-get install -y golang-cfssl >/dev/null 2>&1; then
        :
    else
        echo "cfssl not available: measuring without it" >&2
        extra+=(--no-cfssl)
    fi
fi

cargo build --release -q -p crl-publisher -p bench --bin crl-publisher --bin crl-bench
exec target/release/crl-bench "${extra[@]}" "$@"
