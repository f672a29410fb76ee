"""The C runtime: kernels (src/), headers (include/), the audio frontend, and host build helpers."""
from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = RUNTIME_DIR / "include"
SRC_DIR = RUNTIME_DIR / "src"
