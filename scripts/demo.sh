#!/usr/bin/env bash
# Run the default workflow headless and print the path of the PNG it writes.
# Extra arguments go to `cli.py run` (e.g. --seed 7, --set 3.steps=40, --output-dir out).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/env.sh"
exec "$ROOT/.venv/bin/python" "$ROOT/cli.py" run "$ROOT/workflows/default.json" --output-dir "$ROOT/output" "$@"
