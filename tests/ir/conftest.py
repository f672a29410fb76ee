"""Fixtures for the IR op tests: each op family's kernels built once per session into a shared
library, with `pqlr_layout_mismatches()` (its C structs vs the module's STRUCT_FIELDS)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))   # `import cdriver` from the tests here

import cdriver  # noqa: E402

from pqlr.ir import ops_elem, ops_nn, ops_pool, ops_shape  # noqa: E402


def family_lib(name: str, sources: list[str], structs: dict, header: str):
    layout = cdriver.write_source(cdriver.layout_source(structs, header), f"{name}_layout")
    return cdriver.load_library(sources, name=f"pqlr_{name}_test", extra=[layout])


@pytest.fixture(scope="session")
def nn_lib():
    return family_lib("nn", cdriver.NN_SOURCES, ops_nn.STRUCT_FIELDS, "pqlr_nn.h")


@pytest.fixture(scope="session")
def elem_lib():
    return family_lib("elem", cdriver.ELEM_SOURCES, ops_elem.STRUCT_FIELDS, "pqlr_elem.h")


@pytest.fixture(scope="session")
def pool_lib():
    return family_lib("pool", cdriver.POOL_SOURCES, ops_pool.STRUCT_FIELDS, "pqlr_pool.h")


@pytest.fixture(scope="session")
def shape_lib():
    return family_lib("shape", cdriver.SHAPE_SOURCES, ops_shape.STRUCT_FIELDS, "pqlr_shape.h")
