#!/usr/bin/env bash
# CRL generation benchmark: crl-publisher against `openssl ca -gencrl` and
# `cfssl gencrl` over the same revoked serials (10,000, 100,000, 1,000,000),
# wall time and peak memory from /usr/bin/time -v. Prints a Markdown table.
#
#   bench/crl/run.sh                         # SQLite, all three sizes
#   bench/crl/run.sh --backend postgres      # PostgreSQL (PKI_BENCH_POSTGRES_URL)
#   bench/crl/run.sh --sizes 10000 --runs 1  # any crl-bench option
#   BENCH_PROFILE=debug bench/crl/run.sh --sizes 1000 --runs 1   # smoke: debug build
#
# Needs: openssl, /usr/bin/time (Debian `time`), cfssl (Debian `golang-cfssl`,
# installed here when missing and running as root; otherwise pass --no-cfssl).
set -euo pipefail
cd "$(dirname "$0")/../.."
# BENCH_PROFILE=debug: the debug build (make bench-smoke); release by default.
. bench/profile.sh

apt_install() { # as root: the package lists are fetched once when missing
    [ "$(id -u)" = 0 ] || return 1
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null 2>&1; }
}
if [ ! -x /usr/bin/time ]; then
    apt_install time || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }
fi
extra=()
if ! command -v cfssl >/dev/null; then
    if apt_install golang-cfssl; then
        :
    else
        echo "cfssl not available: measuring without it" >&2
        extra+=(--no-cfssl)
    fi
fi

bench_build
exec "$BENCH_BIN/crl-bench" "${extra[@]}" "$@"
