"""Quantization: BN folding on the captured graph, LSQ+ quantizers (exactness vs primitives,
finite-difference gradients), the quantized program's decisions (fusion, quantizer placement),
prepare / QAT step / convert, and loud failures for unsupported layers and bad configs."""
import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from pqlr import primitives as P
from pqlr.capture import capture
from pqlr.compress.fold import fold_bn
from pqlr.compress.qmodules import ActQuant, WeightQuant
from pqlr.compress.quantize import QuantConfig, build_program, quantize_
from pqlr.errors import PqlrError, UnsupportedError
from pqlr.models import build_model

SHAPE = (1, 49, 10)


def _dscnn(**kw):
    return capture(build_model("ds-cnn-s", 12, seed=0, **kw), SHAPE)


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=g))
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.3)


def test_fold_bn_keeps_eval_outputs():
    model = build_model("ds-cnn-s", 12, seed=1, channels=(16, 24, 20))
    _randomize_bn(model)
    gm = capture(model.eval(), SHAPE)
    x = torch.randn(8, 1, 49, 10, generator=torch.Generator().manual_seed(2))
    ref = gm(x)
    folded = fold_bn(gm)
    assert folded == ["bn", "blocks.0.dw_bn", "blocks.0.pw_bn", "blocks.1.dw_bn", "blocks.1.pw_bn"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in gm.modules()) and not gm.graph.by_op("batchnorm")
    assert gm.module("conv").bias is not None
    torch.testing.assert_close(gm(x), ref, rtol=1e-4, atol=1e-4)


class NormAfterAdd(nn.Module):
    """BatchNorms that cannot fold: after an add, and a BatchNorm1d over a Linear's (C, L) output."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv1d(4, 4, 3, padding=1), nn.BatchNorm1d(4)
        self.lin, self.bn2 = nn.Linear(6, 6), nn.BatchNorm1d(4)

    def forward(self, x):                       # (B, 4, 6)
        y = self.bn(x + self.conv(x))
        return self.bn2(self.lin(y))


def test_unfoldable_batchnorms_stay_as_per_channel_affines():
    m = NormAfterAdd()
    _randomize_bn(m)
    for bn in (m.bn, m.bn2):
        bn.running_mean.copy_(torch.randn(4) * 0.3)
        bn.running_var.copy_(torch.rand(4) + 0.5)
    gm = capture(m.eval(), (4, 6))
    assert fold_bn(gm) == [] and len(gm.graph.by_op("batchnorm")) == 2
    prog = build_program(gm)
    assert [op.kind for op in prog.ops] == ["input", "conv", "add", "affine", "linear", "affine"]
    assert prog.affines == ["bn", "bn2"]
    x = torch.randn(16, 4, 6)
    qm = quantize_(copy.deepcopy(gm), QuantConfig(method="ptq"), calib=[x])
    with torch.no_grad():
        with qm.float_mode():
            torch.testing.assert_close(qm(x), gm(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- exactness vs primitives
def test_act_quant_forward_equals_primitives():
    q = ActQuant(8)
    q.scale.data.fill_(0.037)
    q.beta.data.fill_(-0.037 * 11.3)                  # z = round(11.3) = 11
    s, z = q.qparams()
    assert z == 11
    x = torch.linspace(-8, 8, 2001, dtype=torch.float64)
    with torch.no_grad():
        x_hat = q.double()(x)
    ref = P.dequantize(P.quantize_act(x.numpy(), s, z, 8), s, z)
    np.testing.assert_array_equal(np.round(x_hat.numpy() / s), np.round(ref / s))


@pytest.mark.parametrize("bits", [8, 4, 2, 1])
def test_weight_quant_equals_primitives(bits):
    w = torch.randn(6, 3, 3, 3, generator=torch.Generator().manual_seed(bits), dtype=torch.float64)
    wq = WeightQuant(6, bits).double()
    wq.init_from(w, "mse")
    with torch.no_grad():
        w_hat = wq(w)
    s = wq.scale.detach().numpy()
    q_int = wq.integer(w)
    np.testing.assert_array_equal(np.round(w_hat.numpy() / s[:, None, None, None]), q_int)
    lo, hi = P.weight_range(bits)
    assert q_int.min() >= lo and q_int.max() <= hi
    if bits == 1:
        assert set(np.unique(q_int)) <= {-1, 1}


# ---------------------------------------------------------------- LSQ+ gradients, finite differences
def _surrogate_act(x, s, beta, lo, hi):
    """LSQ+ activation fake-quant with round -> identity (what the straight-through estimator assumes)."""
    z = np.clip(-beta / s, lo, hi)
    return (np.clip(x / s + z, lo, hi) - z) * s


def test_lsq_plus_activation_gradients_match_finite_differences():
    """Where STE is exact (x / s and beta / s on the integer grid, away from clamp edges) autograd
    of (s, beta, x), with the LSQ gradient scale g undone, equals central finite differences of
    the straight-through surrogate."""
    s0, z0, lo, hi = 0.05, 7, -128, 127
    rng = np.random.default_rng(3)
    ints = np.concatenate([rng.integers(-120, 120, 40), [-300, -200, 250, 400]]).astype(np.float64)
    x0 = (ints - z0) * s0                              # x / s integer; the last four clamp
    w = rng.standard_normal(x0.size)
    q = ActQuant(8).double()
    q.scale.data.fill_(s0)
    q.beta.data.fill_(-z0 * s0)
    x = torch.tensor(x0[None], requires_grad=True)    # one sample of N features: g = 1 / sqrt(N Q_p)
    loss = (q(x)[0] * torch.tensor(w)).sum()
    loss.backward()
    g = 1.0 / math.sqrt(x0.size * hi)
    f = lambda s, b, xx: float((_surrogate_act(xx, s, b, lo, hi) * w).sum())  # noqa: E731
    eps = 1e-7
    fd_s = (f(s0 + eps, -z0 * s0, x0) - f(s0 - eps, -z0 * s0, x0)) / (2 * eps)
    fd_b = (f(s0, -z0 * s0 + eps, x0) - f(s0, -z0 * s0 - eps, x0)) / (2 * eps)
    assert q.scale.grad.item() / g == pytest.approx(fd_s, rel=1e-5, abs=1e-6)
    assert q.beta.grad.item() / g == pytest.approx(fd_b, rel=1e-5, abs=1e-6)
    assert abs(fd_s) > 1 and abs(fd_b) > 0.1           # the clamped entries make both non-trivial
    fd_x = np.array([(f(s0, -z0 * s0, x0 + eps * e) - f(s0, -z0 * s0, x0 - eps * e)) / (2 * eps)
                     for e in np.eye(x0.size)])
    np.testing.assert_allclose(x.grad.numpy()[0], fd_x, rtol=1e-5, atol=1e-6)


def test_lsq_weight_step_gradient_matches_finite_differences():
    bits, s0 = 4, np.array([0.1, 0.02])
    lo, hi = P.weight_range(bits)
    rng = np.random.default_rng(4)
    ints = np.stack([np.concatenate([rng.integers(-7, 7, 10), [12, -20]]) for _ in s0]).astype(np.float64)
    w0 = ints * s0[:, None]
    c = rng.standard_normal(w0.shape)
    wq = WeightQuant(2, bits).double()
    wq.scale.data.copy_(torch.tensor(s0))
    (wq(torch.tensor(w0)) * torch.tensor(c)).sum().backward()
    g = 1.0 / math.sqrt(w0.shape[1] * hi)
    f = lambda s: float((np.clip(w0 / s[:, None], lo, hi) * s[:, None] * c).sum())  # noqa: E731
    eps = 1e-7
    for ch in range(2):
        d = np.eye(2)[ch] * eps
        fd = (f(s0 + d) - f(s0 - d)) / (2 * eps)
        assert wq.scale.grad[ch].item() / g == pytest.approx(fd, rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- prepare / train / convert
def _calib(n=32, seed=5):
    return [torch.randn(n, 1, 49, 10, generator=torch.Generator().manual_seed(seed))]


def test_prepare_qat_step_and_convert():
    model = _dscnn(channels=(16, 16, 16))
    qm = quantize_(model, QuantConfig(wbits=4, abits=8), calib=_calib())
    assert qm.training
    params = [p for p in qm.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01)
    x, y = _calib(16, 6)[0], torch.randint(0, 12, (16,), generator=torch.Generator().manual_seed(0))
    before = qm.act("conv").scale.item(), qm.wquant("conv").scale.detach().clone()
    loss = nn.functional.cross_entropy(qm(x), y)
    loss.backward()
    assert qm.act("conv").scale.grad is not None and qm.act("conv").beta.grad is not None
    opt.step()
    assert qm.act("conv").scale.item() != before[0]
    assert not torch.equal(qm.wquant("conv").scale.detach(), before[1])
    qm = quantize_(qm, QuantConfig(), step="convert")
    assert not any(p.requires_grad for p in qm.parameters())
    w_int, b_int = qm.integer_layer("blocks.0.pw")
    assert w_int.dtype == np.int8 and b_int.dtype == np.int32 and w_int.min() >= -8 and w_int.max() <= 7
    with torch.no_grad():
        out1, out2 = qm(x), qm(x)
    torch.testing.assert_close(out1, out2)


@pytest.mark.parametrize("init", ["minmax", "percentile", "mse"])
def test_ptq_init_methods_give_close_logits(init):
    model = build_model("ds-cnn-s", 12, seed=0, channels=(16, 16, 16))
    _randomize_bn(model)
    qm = quantize_(model, QuantConfig(method="ptq", init=init), calib=_calib(), input_shape=SHAPE)
    qm.eval()
    x = _calib(32, 9)[0]
    with torch.no_grad():
        with qm.float_mode():
            ref = qm(x)
        y = qm(x)
    sqnr = 10 * torch.log10((ref ** 2).sum() / ((ref - y) ** 2).sum())
    assert sqnr > 20, f"{init}: W8A8 PTQ logits SQNR {sqnr:.1f} dB"


def test_mixed_and_first_last_bits_reach_quantizers():
    model = _dscnn(channels=(16, 16, 16))
    cfg = QuantConfig(wbits=2, first_last_8bit=True, per_layer_wbits={"blocks.0.pw": 1})
    qm = quantize_(model, cfg, calib=_calib())
    assert qm.weight_bits() == {"conv": 8, "blocks.0.dw": 2, "blocks.0.pw": 1, "blocks.1.dw": 2,
                                "blocks.1.pw": 2, "fc": 8}


def test_bad_config_values_fail_loudly():
    for kw in ({"wbits": 3}, {"abits": 2}, {"method": "gptq"}, {"init": "kl"}, {"calib": 0},
               {"per_layer_wbits": {"fc": 5}}):
        with pytest.raises(PqlrError):
            QuantConfig(**kw)
    with pytest.raises(PqlrError, match="calibration"):
        quantize_(_dscnn(), QuantConfig(), calib=None)
    with pytest.raises(PqlrError, match=r"unknown layers \['blocks.9.pw'\]"):
        quantize_(_dscnn(), QuantConfig(per_layer_wbits={"blocks.9.pw": 4}), calib=_calib())
    with pytest.raises(PqlrError, match="step"):
        quantize_(_dscnn(), QuantConfig(), step="train", calib=_calib())
    with pytest.raises(PqlrError, match="input_shape"):
        quantize_(build_model("ds-cnn-s", 12, seed=0), QuantConfig(), calib=_calib())


class Fused(nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 0, 1))
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu6(self.conv(self.pad(x))) if hasattr(torch, "relu6") else nn.functional.relu6(self.conv(self.pad(x)))
        a = y.mean((2, 3))
        return self.fc(torch.relu(a + a)) * 0.5


def test_program_fuses_clamps_pads_and_scales():
    gm = capture(Fused(), (1, 6, 5))
    prog = build_program(gm)
    kinds = [op.kind for op in prog.ops]
    assert kinds == ["input", "conv", "mean", "add", "linear", "scale"]
    conv = prog.ops[1]
    assert conv.attrs["padding"] == ((0, 1), (1, 2)) and conv.attrs["act"] == ("hardtanh", 0.0, 6.0)
    assert prog.ops[3].attrs["act"] == ("relu",)
    assert set(prog.quantizers) == {op.output for op in prog.ops} and prog.quantizers[prog.output] == 8
    prog4 = build_program(gm, abits=4)
    assert prog4.quantizers["conv"] == 4 and prog4.quantizers[prog4.output] == 8   # logits stay 8 bit


def test_aliases_share_their_source_quantizer():
    tf = capture(build_model("microbert-fast", 12, seed=0), SHAPE)
    prog = build_program(tf)
    view = prog.tensors["view"]
    assert view.quant == "blocks.0.attn.q" and "view" not in prog.quantizers
    sm = [op for op in prog.ops if op.kind == "softmax"][0]
    assert prog.fixed[sm.output] == "softmax"
    mm = [op for op in prog.ops if op.kind == "matmul"][0]
    assert mm.attrs["alpha"] == pytest.approx(1 / 4)        # 1/sqrt(d_head) folded in
    prog16 = build_program(tf, abits=16)
    assert prog16.ops[1].kind == "widen" and all(t.bits == 16 for k, t in prog16.tensors.items() if k != "input")


def test_unsupported_layer_is_named():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = nn.Parameter(torch.zeros(10))

        def forward(self, x):                       # (B, 49, 10): an activation of a parameter
            return x * torch.sigmoid(self.gate)
    with pytest.raises(UnsupportedError, match=r"node sigmoid .*expected an activation tensor"):
        quantize_(Gate(), QuantConfig(), calib=[torch.randn(4, 49, 10)], input_shape=(49, 10))
    with pytest.raises(UnsupportedError, match=r"module .*GRU.* is not supported"):
        quantize_(nn.GRU(10, 8), QuantConfig(), calib=_calib(), input_shape=(49, 10))
