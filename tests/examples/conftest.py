"""Example datasets for the example-model tests, made once per session from real offline data
(scikit-learn's digits; the background-noise and FSDD recordings of ../shared/data)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"ex_data_{name}", ROOT / "examples" / "data" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """digits_32.npz and an images/ tree of the 1,797 real 8x8 digits."""
    out = tmp_path_factory.mktemp("digits")
    _script("make_digits").make(str(out), size=32, channels=3, images=True)
    return out


@pytest.fixture(scope="session")
def anomaly_npz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("anomaly") / "anomaly.npz"
    _script("make_anomaly").make(str(out), SHARED)
    return out
