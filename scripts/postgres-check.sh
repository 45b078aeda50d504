#!/usr/bin/env bash
# Says plainly whether the PostgreSQL tests will run. Outside CI an
# unreachable server only skips them; in CI (CI set) it is an error.
set -u
url="${PKI_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$url" 2>/dev/null; then
    echo "PostgreSQL reachable at $url: the PostgreSQL tests will run."
    exit 0
fi
if [ -n "${CI:-}" ]; then
    echo "error: PostgreSQL is not reachable at $url, and CI requires the PostgreSQL tests." >&2
    exit 1
fi
echo "NOTE: PostgreSQL is not reachable at $url: the PostgreSQL tests will be SKIPPED (SQLite tests still run)."
