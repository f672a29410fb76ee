"""Fixtures for the IR op tests: the CNN kernels built once per session into a shared library."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # `import cdriver` from the tests here

import cdriver  # noqa: E402

from cdriver import NN_SOURCES  # noqa: E402
from pqlr.ir.ops_nn import STRUCT_FIELDS  # noqa: E402


@pytest.fixture(scope="session")
def nn_lib():
    """All CNN kernels plus `pqlr_layout_mismatches()` (struct layout vs ops_nn.STRUCT_FIELDS)."""
    layout = cdriver.write_source(cdriver.layout_source(STRUCT_FIELDS, "pqlr_nn.h"), "nn_layout")
    return cdriver.load_library(NN_SOURCES, name="pqlr_nn_test", extra=[layout])
