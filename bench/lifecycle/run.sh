#!/usr/bin/env bash
# Lifecycle benchmark: a wave of 10,000 `residency-ended` events (residents
# leaving on the same day) and a wave of 10,000 `card-lost` events, executed
# by pki-scheduler and published by ocsp-responder and crl-publisher (the
# real services, started from target/release), timed from due to published
# in OCSP and in a CRL. Setup (issuance and activation of the population)
# is timed separately. JSON on stdout, a summary on stderr; pki.toml, CRLs
# and service logs in target/lifecycle-bench/<backend>/.
#
#   bench/lifecycle/run.sh                                                  # SQLite
#   bench/lifecycle/run.sh --database postgres://postgres@127.0.0.1:5432/test
#   bench/lifecycle/run.sh --population 1000 --scenario card-lost           # any lifecycle-bench option
#   make bench-lifecycle BENCH_ARGS="--database postgres://postgres@127.0.0.1:5432/test"
#   BENCH_PROFILE=debug bench/lifecycle/run.sh --population 200 --lead-seconds 10 \
#       --complete-crl-timeout 0 --timeout-seconds 120                     # smoke (make bench-smoke)
#
# Needs: openssl (the CRL check counts its `Serial Number` lines).
set -euo pipefail
cd "$(dirname "$0")/../.."
# BENCH_PROFILE=debug: the debug build (make bench-smoke); release by default.
. bench/profile.sh

bench_build
exec "$BENCH_BIN/lifecycle-bench" "$@"
