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
#
# Needs: openssl (the CRL check counts its `Serial Number` lines).
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release -q -p ocsp-responder -p crl-publisher -p scheduler -p bench \
    --bin ocsp-responder --bin crl-publisher --bin pki-scheduler --bin lifecycle-bench
exec target/release/lifecycle-bench "$@"
