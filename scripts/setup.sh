#!/usr/bin/env bash
# Installs everything PQLR needs on a fresh Debian machine: system packages (cross
# toolchains, QEMU, libsndfile), a virtual environment in .venv, and the package itself.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="libsndfile1 gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# torch first and pinned: the CPU wheel, never a CUDA build pulled in by a range.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q "torch==2.13.0"
fi
if ! .venv/bin/python -c "import pqlr, hypothesis, pytest" 2>/dev/null || [ pyproject.toml -nt .venv/.pqlr-installed ]; then
  .venv/bin/pip install -q -e ".[test]"
  touch .venv/.pqlr-installed
fi
echo "setup: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
