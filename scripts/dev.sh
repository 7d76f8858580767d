#!/usr/bin/env bash
# One entry point for a fresh clone: creates .venv (CPU torch 2.13, the package in editable mode, the reference
# implementations for parity tests) on first use, then runs a job.
#
#   scripts/dev.sh demo            render outputs/demo.mp4 (video + sound) from tiny random models, no downloads
#   scripts/dev.sh test [ARGS...]  ruff + the pytest suite (ARGS go to pytest)
#   scripts/dev.sh python ARGS...  run the venv's python
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${RS_LTXV_VENV:-.venv}"
PY="$VENV/bin/python"
STAMP="$VENV/.rs-ltxv-setup"

setup() {
  [ -x "$PY" ] || python3 -m venv "$VENV"
  if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ scripts/dev.sh -nt "$STAMP" ]; then
    echo "[dev] setting up $VENV (first run takes a few minutes)" >&2
    "$PY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
    "$PY" -m pip install -q --disable-pip-version-check -e ".[test]" "scipy>=1.14"
    # Lightricks' reference; --no-deps because its torchaudio requirement would replace torch with a CUDA build.
    "$PY" -m pip install -q --disable-pip-version-check --no-deps "ltx-core==1.0.0" "ltx-pipelines==1.0.0"
    touch "$STAMP"
  fi
}

job="${1:-demo}"
shift || true
setup
case "$job" in
  demo)
    out="${RS_LTXV_OUT:-outputs}"
    "$PY" -m rs_ltxv demo -o "$out/demo.mp4" "$@"
    "$PY" -m rs_ltxv info "$out/tiny-models/tiny-ltx-2.3.safetensors"
    ;;
  test)
    "$VENV/bin/ruff" check .
    "$PY" -m pytest -q "$@"
    ;;
  python)
    "$PY" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test [pytest args]|python ARGS" >&2
    exit 64
    ;;
esac
