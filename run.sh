#!/usr/bin/env bash
# Set up (once) and run the project on a fresh machine with Python 3.11.
#   ./run.sh demo [args]   the main job on embedded defaults (embedded Redis)
#   ./run.sh test [args]   lint, type checks and the whole test suite
#   ./run.sh setup         only create .venv and install
# Torch is installed FIRST and pinned to the CPU build where wanted, so that the project's
# "torch>=2.3" requirement is already satisfied and pip does not pull GBs of CUDA wheels.
# Elsewhere set TORCH_PIP_ARGS, e.g. "--index-url https://download.pytorch.org/whl/cpu".
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC" ${TORCH_PIP_ARGS:-}
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    touch "$stamp"
  fi
}

cmd=${1:-demo}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/nowcast" demo "$@" ;;
  test)
    setup
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *) echo "usage: ./run.sh {demo|test|setup} [args]" >&2; exit 2 ;;
esac
