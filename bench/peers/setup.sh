#!/usr/bin/env bash
# Creates bench/peers/.venv with torch 2.13.0 (CPU), PQLR (editable) and the pinned peers.
# Idempotent: a venv whose stamp matches requirements.txt + constraints.txt is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.peers-stamp"
want="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "bench/peers/.venv is up to date"; exit 0
fi
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet)
"${pip[@]}" --upgrade pip wheel
"${pip[@]}" torch==2.13.0                         # first: the CPU wheel lying on disk
"${pip[@]}" -c "$here/constraints.txt" -e "$root"  # PQLR, with its own dependencies only
"${pip[@]}" -c "$here/constraints.txt" -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0") and not torch.cuda.is_available() and "+cpu" in torch.__version__, torch.__version__
PY
echo "$want" > "$stamp"
echo "bench/peers/.venv ready"
