#!/usr/bin/env bash
# Set up tfgym in .venv (idempotent): a virtual environment, then torch, then tfgym itself
# (editable) with its test extra.
#
#   bash scripts/setup.sh            # uses python3 (3.10 or newer)
#   PYTHON=python3.12 bash scripts/setup.sh
#
# torch is pinned and installed first, on its own: this machine's package index offers a CPU
# build of torch 2.13.0, while letting pip resolve a plain `torch` requirement could pull a
# CUDA build of several GB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"

if [[ ! -x .venv/bin/python ]]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        echo "setup.sh: error: $PYTHON not found; install Python 3.10+ or set PYTHON=" >&2
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "setup.sh: error: tfgym needs Python 3.10+, $PYTHON is $("$PYTHON" -V 2>&1)" >&2
        exit 1
    fi
    echo "setup.sh: creating .venv with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv .venv
fi

PIP=(.venv/bin/python -m pip install --progress-bar off)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==${TORCH_VERSION}"
"${PIP[@]}" -e ".[test]"
echo "setup.sh: done. Try: .venv/bin/tfgym demo   or   .venv/bin/python -m pytest"
