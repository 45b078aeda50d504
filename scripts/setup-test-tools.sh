#!/usr/bin/env bash
# Installs what the end-to-end tests need: Debian's `softhsm2` and `opensc`
# (the PKCS#11 token and `pkcs11-tool`, apt-get, only when missing), and the
# Python tools (pkilint) into `.venv` at the repository root. Idempotent and fast when already done: the packages are
# only (re)installed when the venv is missing or tests/requirements.txt changed
# (a stamp file inside the venv keeps the sha256 of the requirements it holds).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
requirements="$root/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

# SoftHSM2 (module /usr/lib/softhsm/libsofthsm2.so) and pkcs11-tool for the
# PKCS#11 key backend's tests.
missing=()
for pkg in softhsm2 opensc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "setup-test-tools: installing ${missing[*]}" >&2
    sudo_cmd=()
    [[ "$(id -u)" == 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
   && "$venv/bin/python" -c 'import pkilint' 2>/dev/null; then
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup-test-tools: creating $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi

echo "setup-test-tools: installing $requirements" >&2
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
for tool in lint_pkix_cert lint_pkix_signer_signee_cert_chain lint_etsi_cert; do
    [[ -x "$venv/bin/$tool" ]] || { echo "setup-test-tools: $tool missing after install" >&2; exit 1; }
done
echo "$want" > "$stamp"
echo "setup-test-tools: done" >&2
