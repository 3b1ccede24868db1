#!/usr/bin/env bash
# Set up tfgym in .venv (idempotent): a virtual environment, then torch, then tfgym itself
# (editable) with its test extra.
#
#   bash scripts/setup.sh            # uses python3 (3.10 or newer)
#   PYTHON=python3.12 bash scripts/setup.sh
#   VENV=.venv-ray EXTRAS=test,ray bash scripts/setup.sh   # another environment, with Ray RLlib
#
# torch is pinned and installed first, on its own: this machine's package index offers a CPU
# build of torch 2.13.0, while letting pip resolve a plain `torch` requirement could pull a
# CUDA build of several GB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
EXTRAS="${EXTRAS:-test}"
TORCH_VERSION="2.13.0"

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "setup.sh: error: $PYTHON not found; install Python 3.10+ or set PYTHON=" >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "setup.sh: error: tfgym needs Python 3.10+, $PYTHON is $("$PYTHON" -V 2>&1)" >&2
        exit 1
    fi
    echo "setup.sh: creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

PIP=("$VENV/bin/python" -m pip install --progress-bar off)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==${TORCH_VERSION}"
"${PIP[@]}" -e ".[$EXTRAS]"
echo "setup.sh: done. Try: $VENV/bin/tfgym demo   or   $VENV/bin/python -m pytest"
