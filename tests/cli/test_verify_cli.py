"""`pqlr verify` from the command line: a model file with classes + feature config in its meta,
verified on the host on real FSDD clips (JSON report, exit 0); a failed check exits 1; bad input
(missing/corrupt file, unknown target, other classes, --limit 0) is one line and exit 2."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from pqlr.cli import main
from pqlr.data import FeatureConfig
from pqlr.deploy.binfmt import write_bin

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "deploy"))
import graphs  # noqa: E402

FSDD = TESTS.parents[1] / "shared" / "data" / "fsdd"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
pytestmark = pytest.mark.skipif(not (FSDD / "recordings").is_dir(), reason=f"{FSDD} not present")


def _bin(path: Path, classes=DIGITS) -> Path:
    """A hand-built int8 CNN over the 49x10 MFCC input, with the meta `pqlr verify` reads."""
    g = graphs.cnn(seed=3, h=49, w=10, c_in=1, c=6, classes=10)
    g.meta = {"classes": list(classes), "feature": asdict(FeatureConfig())}
    write_bin(path, g)
    return path


def _verify(*args) -> list[str]:
    return ["verify", *map(str, args), "--dataset", f"fsdd:{FSDD}", "--holdout-speaker", "george",
            "--per-class", "2"]


def test_verify_host_writes_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    rc = main(_verify(_bin(tmp_path / "m.bin"), "--target", "host", "--limit", "3", "--json", out))
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["mismatches"] == 0 and r["samples"] == 3 and r["target"] == "host"
    assert r["split"] == "test" and r["dataset"] == "fsdd" and r["accuracy_int"] == r["accuracy_c"]
    assert r["accuracy_fakequant"] is None and any("fake-quant" in n for n in r["notes"])
    assert r["macs"] > 0 and len(r["layers"]) == 5 and r["soft_float_symbols"] == []
    assert "PASS" in capsys.readouterr().out


def test_failed_check_exits_1(tmp_path, monkeypatch, capsys):
    import pqlr.deploy.verify as verify_mod

    orig = verify_mod.run_graph
    monkeypatch.setattr(verify_mod, "run_graph", lambda g, x: orig(g, x) ^ 1)   # an oracle that disagrees
    rc = main(_verify(_bin(tmp_path / "m.bin"), "--target", "host", "--limit", "2", "--json", tmp_path / "v.json"))
    assert rc == 1
    r = json.loads((tmp_path / "v.json").read_text())
    assert r["mismatches"] == 2 and r["mismatched_bytes"] == 20
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("case,needle", [
    ("missing", "no such model file"), ("corrupt", "CRC mismatch"), ("target", "unknown target 'esp32'"),
    ("classes", "classes"), ("limit", "--limit must be >= 1")])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, case, needle):
    model = _bin(tmp_path / "m.bin", classes=[f"k{i}" for i in range(10)] if case == "classes" else DIGITS)
    if case == "missing":
        model = tmp_path / "nope.bin"
    if case == "corrupt":
        data = bytearray(model.read_bytes())
        data[-5] ^= 0x40
        model.write_bytes(bytes(data))
    target = "esp32" if case == "target" else "host"
    limit = "0" if case == "limit" else "2"
    rc = main(_verify(model, "--target", target, "--limit", limit))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err
