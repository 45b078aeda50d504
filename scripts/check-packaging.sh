#!/usr/bin/env bash
# Checks the host packaging (packaging/): every systemd unit passes
# `systemd-analyze verify` against the binaries `make build` made, and its
# offline security exposure is reported (`systemd-analyze security`); the
# container image is built when a container engine runs here. Skips, saying
# so, what the machine lacks.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${BIN_DIR:-$root/target/debug}"

if ! command -v systemd-analyze >/dev/null; then
    echo "check-packaging: systemd-analyze not found: units not checked" >&2
else
    fake="$(mktemp -d)"
    trap 'rm -rf "$fake"' EXIT
    mkdir -p "$fake/usr/bin" "$fake/etc/systemd/system"
    for b in pki-admin ocsp-responder crl-publisher crl-server pki-scheduler; do
        if [[ -x "$bin/$b" ]]; then
            cp "$bin/$b" "$fake/usr/bin/$b"
        else
            echo "check-packaging: $bin/$b missing: run make build first" >&2
            exit 1
        fi
    done
    cp "$root"/packaging/systemd/*.service "$fake/etc/systemd/system/"
    # The units depend on the system's own targets (sysinit.target, ...).
    mkdir -p "$fake/usr/lib/systemd"
    cp -r /usr/lib/systemd/system "$fake/usr/lib/systemd/"
    status=0
    for unit in "$fake"/etc/systemd/system/*.service; do
        name="$(basename "$unit")"
        if out="$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --root="$fake" "/etc/systemd/system/$name" 2>&1)" && [[ -z "$out" ]]; then
            exposure="$(systemd-analyze security --offline=yes --root="$fake" "/etc/systemd/system/$name" 2>/dev/null | tail -1 || true)"
            echo "check-packaging: $name verified; ${exposure:-exposure not reported}"
        else
            echo "check-packaging: $name FAILED systemd-analyze verify:" >&2
            echo "$out" >&2
            status=1
        fi
    done
    [[ $status -eq 0 ]] || exit 1
fi

engine=""
for e in podman docker; do
    if command -v "$e" >/dev/null && "$e" info >/dev/null 2>&1; then engine="$e"; break; fi
done
if [[ -n "$engine" ]]; then
    "$engine" build -f "$root/packaging/container/Containerfile" -t eid-pki:check "$root"
    echo "check-packaging: container image built with $engine"
else
    echo "check-packaging: no running container engine (podman or docker): image not built"
fi
