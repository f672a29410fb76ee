"""The published tinyML models under examples/models/: every student and teacher builds, runs (eval and
train mode), traces with torch.fx to the same output, uses only the op set PQLR deploys, imports only
torch, and (where the paper's input is ours) has the paper's size.

Run as a script (`.venv/bin/python tests/examples/test_example_models.py`) to print the parameter and MAC
table of examples/models/README.md."""
from __future__ import annotations

import ast
import importlib.util
import math
import operator
from pathlib import Path

import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

MODELS_DIR = Path(__file__).resolve().parents[2] / "examples" / "models"

KWS = (1, 49, 10)
# (file stem, class, role, default input shape, default n_classes); n_classes None: not a classifier
MODELS = [
    ("bc_resnet", "BCResNet1", "student", KWS, 12),
    ("bc_resnet", "BCResNet3", "teacher", KWS, 12),
    ("tc_resnet", "TCResNet8", "student", KWS, 12),
    ("tc_resnet", "TCResNet14_1_5", "teacher", KWS, 12),
    ("matchboxnet", "MatchboxNet3x1x64", "student", KWS, 12),
    ("matchboxnet", "MatchboxNet6x2x64", "teacher", KWS, 12),
    ("hello_edge_cnn", "HelloEdgeCNN", "student", KWS, 12),
    ("hello_edge_cnn", "HelloEdgeCNNL", "teacher", KWS, 12),
    ("mlperf_ds_cnn", "MLPerfDSCNN", "student", KWS, 12),
    ("mlperf_ds_cnn", "MLPerfDSCNNL", "teacher", KWS, 12),
    ("resnet8", "ResNet8", "student", (3, 32, 32), 10),
    ("resnet8", "ResNet8Wide", "teacher", (3, 32, 32), 10),
    ("mobilenet_v1", "MobileNetV1_025", "student", (3, 96, 96), 2),
    ("mobilenet_v1", "MobileNetV1_050", "teacher", (3, 96, 96), 2),
    ("fc_autoencoder", "FCAutoencoder", "student", (640,), None),
    ("fc_autoencoder", "FCAutoencoderWide", "teacher", (640,), None),
]
FILES = sorted({m[0] for m in MODELS})
IDS = [m[1] for m in MODELS]

# The papers' sizes where the paper's input is PQLR's: (class, params, MACs or None)
REFERENCE_SIZES = [
    ("MLPerfDSCNN", 22_600, 2_660_000),
    ("ResNet8", 78_000, 12_500_000),
    ("MobileNetV1_025", 208_000, 7_500_000),
    ("FCAutoencoder", 270_000, None),
]
# The papers' parameter counts at the papers' own inputs: (class, kwargs, params)
PAPER_INPUT_PARAMS = [
    ("BCResNet1", dict(n_classes=12, input_shape=(1, 101, 40)), 9_200),
    ("BCResNet3", dict(n_classes=12, input_shape=(1, 101, 40)), 54_200),
    ("TCResNet8", dict(n_classes=12, input_shape=(1, 98, 40)), 66_000),
    ("TCResNet14_1_5", dict(n_classes=12, input_shape=(1, 98, 40)), 305_000),
    ("MatchboxNet3x1x64", dict(n_classes=30, input_shape=(1, 128, 64)), 77_000),
    ("MatchboxNet6x2x64", dict(n_classes=30, input_shape=(1, 128, 64)), 140_000),
]

# The op set PQLR deploys (task brief): leaf modules, functions and tensor methods in a traced graph.
ALLOWED_MODULES = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.ReLU, nn.ReLU6,
    nn.LeakyReLU, nn.PReLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.SiLU, nn.GELU,
    nn.Dropout, nn.Identity, nn.Flatten, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.Softmax,
)
ALLOWED_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.getitem, getattr,
    torch.cat, torch.split, torch.chunk, torch.flatten, torch.matmul, F.pad,
}
ALLOWED_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose",
                   "contiguous", "mean", "split", "chunk", "size"}


def load(stem: str):
    """examples/models/<stem>.py as a module (examples/ is not a package on sys.path)."""
    path = MODELS_DIR / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"pqlr_example_models_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_CLASSES = {}


def model_class(name: str):
    if not _CLASSES:
        for stem in FILES:
            module = load(stem)
            for m in MODELS:
                if m[0] == stem:
                    _CLASSES[m[1]] = getattr(module, m[1])
    return _CLASSES[name]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape) -> int:
    """Conv/linear multiply-accumulates for one sample (forward hooks): a conv output element costs
    (c_in / groups) * prod(kernel) MACs, a linear output element in_features MACs; BatchNorm, activations,
    pooling and additions are not counted."""
    total = 0

    def hook(mod, inputs, out):
        nonlocal total
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            total += out[0].numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
        elif isinstance(mod, nn.Linear):
            total += out[0].numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.randn(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def expected_shape(n_classes, input_shape, batch=3):
    return (batch, n_classes) if n_classes is not None else (batch, *input_shape)


@pytest.mark.parametrize("stem", FILES)
def test_file_imports_only_torch(stem):
    source = (MODELS_DIR / f"{stem}.py").read_text()
    assert "__import__" not in source and "importlib" not in source
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in {"torch", "math", "__future__"}, f"{stem}.py imports {name}"
            assert "pqlr" not in name


@pytest.mark.parametrize("stem,cls,role,shape,n_classes", MODELS, ids=IDS)
def test_builds_runs_and_traces(stem, cls, role, shape, n_classes):
    torch.manual_seed(0)
    Model = model_class(cls)
    model = Model()                                       # default args
    assert model(torch.randn(3, *shape)).shape == expected_shape(n_classes, shape)

    other = 7 if n_classes is not None else None          # a non-default class count
    model = Model(n_classes=7, input_shape=shape)
    x = torch.randn(3, *shape)
    for train in (False, True):
        model.train(train)
        y = model(x)
        assert y.shape == expected_shape(other, shape)
        assert y.dtype == torch.float32 and torch.isfinite(y).all()

    model.eval()
    gm = torch.fx.symbolic_trace(model)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), model(x))

    for node in gm.graph.nodes:
        if node.op == "call_module":
            sub = gm.get_submodule(node.target)
            assert isinstance(sub, ALLOWED_MODULES), f"{cls}: module {type(sub).__name__} outside the op set"
        elif node.op == "call_function":
            assert node.target in ALLOWED_FUNCTIONS, f"{cls}: function {node.target} outside the op set"
        elif node.op == "call_method":
            assert node.target in ALLOWED_METHODS, f"{cls}: method {node.target} outside the op set"


@pytest.mark.parametrize("stem,cls,role,shape,n_classes", MODELS, ids=IDS)
def test_sizes_follow_input_shape(stem, cls, role, shape, n_classes):
    """Sizes are derived from input_shape, not hard-coded: another input size builds and runs."""
    other = {KWS: (1, 98, 40), (3, 32, 32): (3, 40, 48), (3, 96, 96): (3, 64, 80), (640,): (320,)}[shape]
    model = model_class(cls)(n_classes=5, input_shape=other).eval()
    with torch.no_grad():
        y = model(torch.randn(2, *other))
    assert y.shape == expected_shape(5 if n_classes else None, other, batch=2)


@pytest.mark.parametrize("cls,params,macs", REFERENCE_SIZES, ids=[r[0] for r in REFERENCE_SIZES])
def test_reference_sizes(cls, params, macs):
    stem, _, _, shape, n_classes = next(m for m in MODELS if m[1] == cls)
    model = model_class(cls)()
    assert abs(n_params(model) - params) / params < 0.15
    if macs is not None:
        assert abs(count_macs(model, shape) - macs) / macs < 0.03


@pytest.mark.parametrize("cls,kwargs,params", PAPER_INPUT_PARAMS, ids=[r[0] for r in PAPER_INPUT_PARAMS])
def test_paper_sizes_at_paper_inputs(cls, kwargs, params):
    assert abs(n_params(model_class(cls)(**kwargs)) - params) / params < 0.15


def test_ds_cnn_reproduces_the_keras_reference_padding_and_pooling():
    model = model_class("MLPerfDSCNN")().eval()
    assert model.pad.padding == (1, 1, 4, 5)              # TF "same" for 10x4 stride 2 on 49x10
    assert tuple(model.pool.kernel_size) == (24, 5)
    shapes = {}
    hooks = [getattr(model, n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, o.shape))
             for n in ("conv", "blocks", "pool")]
    x = torch.randn(1, *KWS)
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    assert shapes["conv"] == (1, 64, 25, 5) and shapes["pool"] == (1, 64, 1, 1)
    # the pool ignores the last row of the 25x5 map: changing it does not change the logits
    feats = {}
    h = model.blocks.register_forward_hook(lambda m, i, o: feats.setdefault("o", o))
    with torch.no_grad():
        model(x)
    h.remove()
    bumped = feats["o"].clone()
    bumped[:, :, -1, :] += 10.0
    with torch.no_grad():
        tail = model.fc(model.flatten(model.pool(bumped)))
    torch.testing.assert_close(tail, y)


def test_tf_same_padding_on_image_models():
    """Stride-2 3x3 convs pad (0, 1) as TensorFlow does, through an explicit ZeroPad2d."""
    pads = [m.padding for m in model_class("ResNet8")().modules() if isinstance(m, nn.ZeroPad2d)]
    assert pads == [(0, 1, 0, 1)] * 2
    pads = [m.padding for m in model_class("MobileNetV1_025")().modules() if isinstance(m, nn.ZeroPad2d)]
    assert pads == [(0, 1, 0, 1)] * 5                     # stem and four strided depthwise convs


def test_bc_resnet_broadcast_residual_and_subspectral_norm():
    model = model_class("BCResNet1")()
    assert model.freq_last == 5                           # 10 coefficients -> head stride 2 -> 5 bins
    ssn = [m for m in model.modules() if type(m).__name__ == "SubSpectralNorm"]
    assert len(ssn) == 12 and all(m.subbands == 5 for m in ssn)
    paper = model_class("BCResNet1")(input_shape=(1, 101, 40))   # the paper's 40 bins: 20 -> 10 -> 5
    assert [b.freq_out for b in paper.blocks] == [20, 20, 10, 10, 5, 5, 5, 5, 5, 5, 5, 5]


def test_autoencoder_ignores_n_classes():
    Model = model_class("FCAutoencoder")
    a, b = Model(n_classes=3), Model(n_classes=50)
    assert n_params(a) == n_params(b)
    assert a.eval()(torch.randn(2, 640)).shape == (2, 640)


def table() -> str:
    rows = ["| file | class | role | input | params | MACs |", "|---|---|---|---|---|---|"]
    for stem, cls, role, shape, n_classes in MODELS:
        model = model_class(cls)()
        rows.append(f"| {stem}.py | {cls} | {role} | {shape} | {n_params(model):,} | "
                    f"{count_macs(model, shape):,} |")
    for cls, kwargs, params in PAPER_INPUT_PARAMS:
        model = model_class(cls)(**kwargs)
        rows.append(f"| (paper input) | {cls} | {kwargs} | | {n_params(model):,} (paper {params:,}) | "
                    f"{count_macs(model, kwargs['input_shape']):,} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
