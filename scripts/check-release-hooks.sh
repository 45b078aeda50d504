#!/usr/bin/env bash
# Proves that release binaries ignore the test hooks (pki-store/src/test_hooks.rs):
# builds the whole workspace in release as an operator might (`--workspace`
# builds the test crates too, so a cargo feature they switched on would be
# unified into the binaries), then sets PKI_FAKE_NOW and
# CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN on the release `pki-admin` and
# `crl-publisher` and checks that neither has any effect.
#
#   scripts/check-release-hooks.sh        # exit 0: hooks ignored; 1: a hook took effect
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release -q --workspace --bins
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export PKI_CA_PASSPHRASE=release-hooks-ca PKI_OCSP_PASSPHRASE=release-hooks-ocsp
unset PKI_CONFIG

fail() { echo "check-release-hooks: FAIL: $*" >&2; exit 1; }

"$BIN/pki-admin" migrate > migrate.out 2>&1 || fail "pki-admin migrate: $(tail -3 migrate.out)"

# 1. PKI_FAKE_NOW: the hierarchy made "in 2001" must start today.
PKI_FAKE_NOW=2001-02-03T04:05:06Z "$BIN/pki-admin" init > init.out 2> init.err
grep -q "PKI_FAKE_NOW is set and ignored" init.err || fail "pki-admin did not report PKI_FAKE_NOW as ignored"
"$BIN/pki-admin" ca list --json > cas.json
python3 - "$(date -u +%Y)" <<'PY'
import json, sys
year = sys.argv[1]
cas = json.load(open("cas.json"))
assert cas, "no CA listed"
for ca in cas:
    if not ca["not_before"].startswith(year):
        sys.exit(f"check-release-hooks: FAIL: {ca['name']} starts {ca['not_before']}: PKI_FAKE_NOW took effect")
print(f"check-release-hooks: PKI_FAKE_NOW ignored ({len(cas)} CAs start in {year})")
PY

# 2. CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN: the publisher must not abort.
CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN=1 "$BIN/crl-publisher" --out-dir crl publish > crl.out 2> crl.err \
    || fail "crl-publisher exited $? with the crash hook set: $(tail -3 crl.err)"
grep -q "CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN is set and ignored" crl.err \
    || fail "crl-publisher did not report the crash hook as ignored"
n=$(find crl -name '*.crl' | wc -l)
[ "$n" -gt 0 ] || fail "crl-publisher published no CRL"
echo "check-release-hooks: CRL_PUBLISHER_TEST_CRASH_AFTER_SIGN ignored ($n CRLs published)"
