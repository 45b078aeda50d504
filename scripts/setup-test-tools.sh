#!/usr/bin/env bash
# Installs the Python tools the end-to-end tests need (pkilint) into `.venv` at
# the repository root. Idempotent and fast when already done: the packages are
# only (re)installed when the venv is missing or tests/requirements.txt changed
# (a stamp file inside the venv keeps the sha256 of the requirements it holds).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
requirements="$root/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"

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
