"""The documentation's generated parts match their sources: the tables of README.md and
docs/benchmarks.md equal what bench/doc_tables.py makes of bench/results, docs/ops.md equals the op
table, and every `--flag` the README shows exists."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pqlr.capture.optable import markdown

ROOT = Path(__file__).resolve().parents[1]


def test_tables_come_from_the_results_files():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "doc_tables.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_ops_doc_is_the_op_table():
    assert (ROOT / "docs" / "ops.md").read_text() == markdown()


def test_readme_commands_use_real_flags():
    from pqlr.cli import build_parser
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    known = {flag for p in sub.choices.values() for a in p._actions for flag in a.option_strings}
    used = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", readme))
    assert used - known - {"--standalone", "--nproc-per-node"} == set()
