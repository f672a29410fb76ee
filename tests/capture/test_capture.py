"""Capture (torch.fx): any nn.Module -> the canonical graph. The captured model computes exactly
what the user's model computes; what cannot deploy is refused before training, naming the node, the
operation and the user's line; the graph saves as JSON and loads without running code."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pqlr.capture import CGraph, GraphModel, capture
from pqlr.capture.optable import OPS, markdown
from pqlr.capture.stats import graph_stats
from pqlr.errors import PqlrError, UnsupportedError
from pqlr.models import build_model

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"


def _load_examples():
    out = []
    for f in sorted(EXAMPLES.glob("*.py")):
        if f.name == "__init__.py":
            continue
        spec = importlib.util.spec_from_file_location(f"ex_{f.stem}", f)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name, cls in vars(mod).items():
            if isinstance(cls, type) and issubclass(cls, nn.Module) and cls.__module__ == mod.__name__ \
                    and "n_classes" in cls.__init__.__code__.co_varnames:
                out.append((f"{f.stem}.{name}", cls))
    return out


class Functional(nn.Module):
    """Functional calls count the same as modules: squeeze/transpose, split + cat, F.relu, scalar
    arithmetic, strided slicing, mean, a residual add, a parameter added by broadcasting."""

    def __init__(self, n_classes=4, input_shape=(1, 49, 10)):
        super().__init__()
        self.conv = nn.Conv1d(10, 8, 3, padding="same")
        self.bias = nn.Parameter(torch.randn(8, 1) * 0.1)
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x):
        x = x.squeeze(1).transpose(1, 2)                  # (B, 10, 49)
        a, b = torch.split(x, 5, dim=1)
        y = torch.cat([b, a], 1)
        y = F.relu(self.conv(y)) * 0.5 + 1                # (B, 8, 49)
        y = y + self.bias
        y = y[:, :, 2:40:3]
        return self.fc(y.mean(-1))


def _check_same(model, shape, atol=0.0):
    model.eval()
    gm = capture(model, shape)
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x), rtol=0, atol=atol)
    return gm


@pytest.mark.parametrize("name", ["ds-cnn-s", "microbert-2l", "microbert-fast"])
def test_zoo_models_capture_exactly(name):
    gm = _check_same(build_model(name, 12, seed=0), (1, 49, 10))
    assert gm.graph.input.shape == (1, 49, 10)
    assert {n.op for n in gm.graph.nodes} <= set(OPS)


def test_functional_calls_capture_exactly():
    gm = _check_same(Functional(), (1, 49, 10))
    ops = [n.op for n in gm.graph.nodes]
    for op in ("reshape", "permute", "slice", "cat", "conv", "act", "scale", "add", "const", "mean", "linear"):
        assert op in ops, op
    conv = gm.graph.node("conv")
    assert conv.attrs["dims"] == 1 and conv.attrs["padding"] == ((1, 1),)
    assert gm.graph.node(conv.inputs[0]).op == "cat"
    assert conv.source.startswith("test_capture.py:") and "self.conv(y)" in conv.source


@pytest.mark.parametrize("key,cls", _load_examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_example_models_capture_exactly(key, cls):
    """The tinyML architectures in examples/models, written from their papers, capture exactly."""
    model = cls()
    shape = tuple(next(v for k, v in vars(model).items() if k == "input_shape") if hasattr(model, "input_shape")
                  else cls.__init__.__defaults__[1])
    _check_same(model, shape, atol=1e-6)


class Bad(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind, self.conv, self.gru = kind, nn.Conv2d(1, 4, 3), nn.GRU(10, 8, batch_first=True)

    def forward(self, x):
        if self.kind == "control":
            if x.sum() > 0:
                return x
        if self.kind == "gru":
            return self.gru(x[:, 0])[0]
        if self.kind == "flip":
            return torch.flip(self.conv(x), [3])
        if self.kind == "batchmix":
            return self.conv(x).view(-1)
        if self.kind == "meanall":
            return self.conv(x).mean()
        if self.kind == "interp":
            return F.interpolate(self.conv(x), scale_factor=2)
        if self.kind == "tuple":
            return self.conv(x), x
        return x


@pytest.mark.parametrize("kind,msg", [
    ("control", r"cannot be captured by torch.fx"),
    ("gru", r"node gru \(test_capture.py:\d+: return self.gru\(x\[:, 0\]\)\[0\]\): module gru \(GRU\) is not supported"),
    ("flip", r"node flip \(test_capture.py:\d+: .*\): flip is not supported"),
    ("batchmix", r"does not keep the batch"),
    ("meanall", r"mean over every dim would include the batch"),
    ("interp", r"interpolate is not supported"),
    ("tuple", r"must return one tensor"),
])
def test_unsupported_is_refused_naming_node_and_line(kind, msg):
    with pytest.raises(UnsupportedError, match=msg) as e:
        capture(Bad(kind), (1, 49, 10))
    if kind != "control":
        assert "docs/ops.md" in str(e.value)


def test_wrong_input_shape_is_one_clear_error():
    with pytest.raises(PqlrError, match=r"fails on an input of shape \(B, 3, 32, 32\)"):
        capture(build_model("ds-cnn-s", 12, seed=0), (3, 32, 32))


def test_spec_round_trip_without_code():
    model = Functional().eval()
    gm = capture(model, (1, 49, 10))
    spec = json.loads(json.dumps(gm.spec()))
    back = GraphModel.from_spec(spec)
    back.load_state_dict(gm.state_dict())
    x = torch.randn(3, 1, 49, 10)
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(x), gm(x), rtol=0, atol=0)
    bad = json.loads(json.dumps(spec))
    bad["graph"]["nodes"][2]["op"] = "os.system"
    with pytest.raises(PqlrError, match="unknown op"):
        GraphModel.from_spec(bad)
    bad = json.loads(json.dumps(spec))
    bad["modules"]["conv"]["type"] = "Eval"
    with pytest.raises(PqlrError, match="unknown type"):
        GraphModel.from_spec(bad)
    bad = json.loads(json.dumps(spec))
    bad["graph"]["nodes"][3]["inputs"] = ["later"]
    with pytest.raises(PqlrError, match="before it is produced"):
        GraphModel.from_spec(bad)
    with pytest.raises(PqlrError):
        CGraph.from_dict({"nodes": "x", "output": 1})


def _crafted(spec, path, value):
    bad = json.loads(json.dumps(spec))
    *head, last = path
    obj = bad
    for k in head:
        obj = obj[k]
    obj[last] = value
    return bad


@pytest.mark.parametrize("path, value, needle", [
    (("graph", "nodes", 2, "op"), ["act"], "unknown op"),
    (("graph", "nodes", 2, "inputs"), 5, "bad field types"),
    (("graph", "nodes", 2, "shape"), 12, "bad field types"),
    (("modules",), [1, 2], "'modules' must be a mapping"),
    (("consts",), [1], "'consts' must be a mapping"),
    (("modules", "conv", "args", "in_channels"), "x", "bad arguments"),
    (("graph", "nodes", 6, "shape"), [99, 49], r"node conv \(conv\) computes shape \(8, 49\), the graph says \(99, 49\)"),
    (("graph", "nodes", 7, "attrs"), {"fn": "system"}, r"node relu \(act\) does not run"),
])
def test_crafted_specs_fail_in_one_line(path, value, needle):
    spec = json.loads(json.dumps(capture(Functional().eval(), (1, 49, 10)).spec()))
    with pytest.raises(PqlrError, match=needle) as e:
        GraphModel.from_spec(_crafted(spec, path, value))
    assert "\n" not in str(e.value)


def test_captured_model_trains_with_the_users_modules():
    model = Functional()
    gm = capture(model, (1, 49, 10))
    assert gm.module("conv") is model.conv                 # the same objects: training one trains both
    gm.train()
    loss = gm(torch.randn(4, 1, 49, 10)).pow(2).mean()
    loss.backward()
    assert model.conv.weight.grad is not None and model.bias.grad is not None


def test_stats_count_every_op():
    gm = capture(Functional().eval(), (1, 49, 10))
    s = graph_stats(gm)
    assert s["macs"] == 8 * 49 * 10 * 3 + 4 * 8             # Conv1d (T x C_out x C_in x k) + Linear
    assert s["params"] == sum(p.numel() for p in Functional().parameters())
    tf = capture(build_model("microbert-2l", 12, seed=0).eval(), (1, 49, 10))
    mm = [l for l in graph_stats(tf)["layers"] if l["op"] == "matmul"]
    assert len(mm) == 4 and mm[0]["macs"] == 4 * 49 * 49 * 36   # Q.K^T: H x T x T x d_head


def test_ops_doc_is_generated_from_the_table():
    assert (ROOT / "docs" / "ops.md").read_text() == markdown()


class StackSumClamp(nn.Module):
    """torch.stack, x.sum(dims), torch.clamp / clamp_min: spelled the common ways."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv1d(10, 6, 3, padding=1), nn.Conv1d(10, 6, 5, padding=2)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):                                   # (B, 49, 10)
        x = x.transpose(1, 2)
        y = torch.stack([self.a(x).clamp(-1.0, 2.0), torch.clamp_min(self.b(x), 0)], dim=1)   # (B, 2, 6, 49)
        y = y.sum(-1) / 49.0                                # (B, 2, 6)
        return self.fc(y.flatten(1)).clip(max=5.0)


def test_stack_sum_and_clamp_capture_as_cat_mean_scale_and_clamps():
    gm = _check_same(StackSumClamp(), (49, 10), atol=1e-6)
    acts = [n.attrs for n in gm.graph.nodes if n.op == "act"]
    assert {"fn": "hardtanh", "min": -1.0, "max": 2.0} in acts and {"fn": "relu"} in acts
    assert {"fn": "hardtanh", "min": None, "max": 5.0} in acts
    ops = [n.op for n in gm.graph.nodes]
    assert "cat" in ops and "mean" in ops and ops.count("scale") == 2       # sum x 49, then / 49
    from pqlr.compress.program import build_program
    kinds = [op.kind for op in build_program(gm).ops]
    assert "scale" not in kinds and kinds.count("mean") == 1    # x * 49 / 49 folds away: a plain mean
