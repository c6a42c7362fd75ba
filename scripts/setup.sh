#!/usr/bin/env bash
# Creates .venv and installs everything Flock and its tests need (idempotent; `make setup`).
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PY:-python3}"
VENV=.venv
pipq() { "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is neither a file nor a directory" >&2); }

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Flock needs Python 3.11 or newer; $PY is $("$PY" --version 2>&1)" >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pipq install -q --disable-pip-version-check -U pip
echo "==> installing Python packages into $VENV"
pipq install -q --disable-pip-version-check -r requirements-dev.txt
bash scripts/engine-wheels.sh "$VENV/bin/python"
