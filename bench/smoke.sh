#!/usr/bin/env bash
# make bench-smoke: every `make bench*` target once, at a small size, through
# the Makefile as a user runs it, so that a benchmark cannot break unseen (CI
# runs this after `make test`). It checks that each runs to the end and that
# its own checks pass; its figures mean nothing (debug build, tiny sizes).
#
#   make bench-smoke                        # debug build (the one `make test` built)
#   make bench-smoke BENCH_PROFILE=release  # the release build
#
# The peers (openssl, cfssl, wrk, /usr/bin/time) are installed by the
# benchmark scripts when missing (apt, as root); cfssl is left out when it
# cannot be installed. PostgreSQL (PKI_BENCH_POSTGRES_URL, default
# postgres://postgres@127.0.0.1:5432/test): issuance, reminders and CRL run
# on it too when it is reachable; in CI (CI set) it must be.
#
# Output and logs: $CARGO_TARGET_DIR (or target)/bench-smoke/. Exit status:
# non-zero when any benchmark fails (all are run; the failed ones are named).
set -uo pipefail
cd "$(dirname "$0")/.."
export BENCH_PROFILE=${BENCH_PROFILE:-debug}
. bench/profile.sh

case ${CARGO_TARGET_DIR:-} in
    "") out=$PWD/target/bench-smoke ;;
    /*) out=$CARGO_TARGET_DIR/bench-smoke ;;
    *) out=$PWD/$CARGO_TARGET_DIR/bench-smoke ;;
esac
rm -rf "$out"
mkdir -p "$out"

pg_url=${PKI_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
if command -v pg_isready >/dev/null && pg_isready -q -d "$pg_url" 2>/dev/null; then
    pg=1 backend=both
    elif [ -n "${CI:-}" ]; then
    echo "bench-smoke: PostgreSQL is not reachable at $pg_url, and CI requires it" >&2
    exit 1
else
    pg= backend=sqlite
    unset PKI_BENCH_POSTGRES_URL # reminders-bench would use it
    echo "bench-smoke: NOTE: PostgreSQL is not reachable at $pg_url: SQLite only"
fi
export PKI_BENCH_POSTGRES_URL=$pg_url

start=$(date +%s)
echo "== bench-smoke: build ($BENCH_PROFILE)"
bench_build || exit 1
built=$(date +%s)

failed=()
summary=()
# smoke NAME COMMAND...: runs it, its output on the terminal and in NAME.log.
smoke() {
    local name=$1 t0 rc
    shift
    echo
    echo "== bench-smoke: $name: $*"
    t0=$(date +%s)
    "$@" 2>&1 | tee "$out/$name.log"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 0 ]; then
        summary+=("$(printf '%-18s ok      %4d s' "$name" $(($(date +%s) - t0)))")
    else
        summary+=("$(printf '%-18s FAILED  %4d s  (exit %s, %s)' "$name" $(($(date +%s) - t0)) "$rc" "$out/$name.log")")
        failed+=("$name")
    fi
}

make_() { make --no-print-directory "$@"; }

smoke issuance make_ bench BENCH_ARGS="--holders 200 --sign-seconds 0.5 --backend $backend"
smoke ocsp env OCSP_BENCH_CERTS=1000 OCSP_BENCH_SECONDS=1 OCSP_BENCH_WARMUP_SECONDS=1 \
    OCSP_BENCH_STRICT=1 OCSP_BENCH_DIR="$out/ocsp" make --no-print-directory bench-ocsp
smoke crl-sqlite make_ bench-crl BENCH_ARGS="--sizes 1000 --runs 1"
if [ -n "$pg" ]; then
    smoke crl-postgres make_ bench-crl BENCH_ARGS="--sizes 1000 --runs 1 --backend postgres"
fi
smoke reminders make_ bench-reminders BENCH_ARGS="--certificates 2000${pg:+ --postgres-url $pg_url}"
smoke lifecycle make_ bench-lifecycle BENCH_ARGS="--population 200 --lead-seconds 10 \
    --complete-crl-timeout 0 --timeout-seconds 120 --dir $out/lifecycle"

echo
echo "== bench-smoke ($BENCH_PROFILE build; build step $((built - start)) s, benchmarks $(($(date +%s) - built)) s)"
printf '   %s\n' "${summary[@]}"
if [ "${#failed[@]}" != 0 ]; then
    echo "bench-smoke: FAILED: ${failed[*]}" >&2
    exit 1
fi
