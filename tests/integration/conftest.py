"""Shared fixture of the integration tests: the trained, PTQ int8, packaged KWS model (kws_trained.py)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kws_trained  # noqa: E402


@pytest.fixture(scope="session")
def trained_kws(tmp_path_factory) -> kws_trained.TrainedKws:
    return kws_trained.trained_kws(tmp_path_factory.mktemp("trained_kws"))
