# Sourced (POSIX sh) by the benchmark scripts and the Makefile's bench
# targets: which build the benchmarks run, and how to build it.
#
# In:  BENCH_PROFILE  release (the default: for figures) or debug (the
#                     binaries `make test` has built: for `make bench-smoke`)
#      ROOT           the repository (default: the current directory)
# Out: BENCH_BIN      the directory of the binaries (honours CARGO_TARGET_DIR)
#      bench_build    builds them
#
# Every benchmark builds the same selection, `--workspace --bins` (what
# `make build` builds): cargo unifies dependency features per selection, so
# `-p bench` alone, `-p bench -p crl-publisher`, ... each resolve another
# feature set (aws-lc-rs, actix-web, tokio) and recompile ca-core and the
# services; one selection builds once, and in debug is already built by
# `make test`.

ROOT=${ROOT:-.}
case ${BENCH_PROFILE:-release} in
    release) BENCH_CARGO_PROFILE=--release; BENCH_PROFILE_DIR=release ;;
    debug | dev) BENCH_CARGO_PROFILE=; BENCH_PROFILE_DIR=debug ;;
    *) echo "BENCH_PROFILE: release or debug, not $BENCH_PROFILE" >&2; exit 2 ;;
esac
case ${CARGO_TARGET_DIR:-} in
    "") BENCH_BIN=$ROOT/target/$BENCH_PROFILE_DIR ;;
    /*) BENCH_BIN=$CARGO_TARGET_DIR/$BENCH_PROFILE_DIR ;;
    *) BENCH_BIN=$ROOT/$CARGO_TARGET_DIR/$BENCH_PROFILE_DIR ;;
esac

bench_build() {
    # shellcheck disable=SC2086 # BENCH_CARGO_PROFILE: one word or none
    (cd "$ROOT" && cargo build $BENCH_CARGO_PROFILE --workspace --bins)
}
