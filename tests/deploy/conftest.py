"""Shared fixtures of the deploy tests: small graphs (tests/deploy/graphs.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import graphs  # noqa: E402


@pytest.fixture(scope="session")
def cnn_graph():
    return graphs.cnn()
