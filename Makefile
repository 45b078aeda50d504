# The two commands of the README, and the rest of the routine.
#   make demo   run the whole system on its embedded default (SQLite under ./pki-data):
#               demo CA, OCSP responder, CRL publisher and scheduler, until Ctrl-C
#   make test   run every test (SQLite always; PostgreSQL at 127.0.0.1:5432 when reachable, always in CI)
#   make bench* the benchmarks of the README (release build; BENCH_PROFILE=debug for the debug one,
#               BENCH_ARGS for the options of each); make bench-smoke runs each once at a small size
#               on the debug build (CI, after make test)
#   make check-packaging  the systemd units verified by systemd-analyze, the container image built if an engine runs

PG_URL ?= postgres://postgres@127.0.0.1:5432/test
export PKI_TEST_POSTGRES_URL ?= $(PG_URL)

.PHONY: check-packaging demo test test-tools postgres-check build lint fmt bench bench-ocsp bench-crl bench-reminders bench-lifecycle bench-smoke clean-demo

demo: build
	./target/debug/pki-admin run

test: test-tools build postgres-check
	cargo test --workspace --no-fail-fast

build:
	cargo build --workspace --bins

test-tools:
	./scripts/setup-test-tools.sh

postgres-check:
	@./scripts/postgres-check.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# bench/profile.sh: BENCH_PROFILE (release by default) -> the build and BENCH_BIN.
bench:
	. bench/profile.sh && bench_build && "$$BENCH_BIN/issuance-bench" $(BENCH_ARGS)

bench-ocsp:
	bench/ocsp/run.sh

bench-crl:
	bench/crl/run.sh $(BENCH_ARGS)

bench-reminders:
	. bench/profile.sh && bench_build && "$$BENCH_BIN/reminders-bench" $(BENCH_ARGS)

bench-lifecycle:
	bench/lifecycle/run.sh $(BENCH_ARGS)

bench-smoke:
	bench/smoke.sh

check-packaging: build
	scripts/check-packaging.sh

clean-demo:
	rm -rf pki-data
