#!/usr/bin/env bash
# Make (or reuse) the local virtual environment .venv with what the pack, its CLI and its tests need.
# Safe to run again: it reinstalls only when the requirement files change.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_SPEC="${WALK_TORCH:-torch==2.13.0}"  # the CPU build on this machine kind; set WALK_TORCH to change
STAMP="$VENV/.walk-env-stamp"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt"; echo "$TORCH_SPEC")"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[env] creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "[env] installing $TORCH_SPEC and the requirements into .venv" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "$TORCH_SPEC" -r "$ROOT/requirements.txt" -r "$ROOT/requirements-dev.txt" >&2
  printf '%s' "$WANT" > "$STAMP"
fi
