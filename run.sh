#!/usr/bin/env bash
# Set up (once) and run the project on a fresh machine with Python 3.11.
#   ./run.sh demo [args]   the main job on embedded defaults (embedded Redis)
#   ./run.sh test [args]   lint, type checks and the whole test suite
#   ./run.sh setup         only create .venv and install
#   ./run.sh lock          rewrite constraints.txt from .venv (after changing a dependency)
# Torch is installed FIRST and pinned to the CPU build where wanted, so that the project's
# "torch>=2.3" requirement is already satisfied and pip does not pull GBs of CUDA wheels.
# Elsewhere set TORCH_PIP_ARGS, e.g. "--index-url https://download.pytorch.org/whl/cpu".
# Everything else installs at the exact versions of constraints.txt (the tested set).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC" ${TORCH_PIP_ARGS:-}
    "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    touch "$stamp"
  fi
}

# Debian's chromium for the dashboard's browser test, prometheus (promtool and a real server:
# checks of deploy/ and of the live /metrics) and prometheus-alertmanager (alerts delivered to a
# receiver); the tests skip, saying why, without them.
test_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null && sudo="sudo -n" || { echo "run.sh: no ${missing[*]} (not root); their tests will skip" >&2; return 0; }
  fi
  if command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing Debian's ${missing[*]} for the tests ..." >&2
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; } \
      || echo "run.sh: ${missing[*]} could not be installed; their tests will skip" >&2
  fi
}

usage() {
  echo "usage: ./run.sh {demo|test|setup|lock} [args]   (demo: the whole service on embedded defaults; test: lint, types and the test suite; setup: only create .venv; lock: rewrite constraints.txt)" >&2
}

if [ $# -eq 0 ]; then
  usage
  exit 2
fi
cmd=$1
shift
case "$cmd" in
  setup) setup ;;
  lock) setup; "$VENV/bin/python" deploy/lock_constraints.py > constraints.txt ;;
  demo) setup; exec "$VENV/bin/nowcast" demo "$@" ;;
  test)
    setup
    test_tools
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *) usage; exit 2 ;;
esac
