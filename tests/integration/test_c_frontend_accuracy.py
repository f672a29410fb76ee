"""The deployed input path keeps the model's accuracy: on the whole test split, the integer model
(pqlr.ir.interp.run_graph, the oracle the generated C is bit-exact to) fed by the fixed-point C
frontend scores within 0.5 points of the same model fed by the float features quantized in Python
(pqlr.deploy.inputs.input_int8) -- the path the pipeline reports its integer accuracy on."""
import numpy as np

from kws_trained import FEATURES, labels
from pqlr.deploy.inputs import input_int8
from pqlr.deploy.frontend import c_features
from pqlr.ir.interp import run_graph
from pqlr.train import DEFAULT_CACHE


def test_c_frontend_accuracy_matches_python_features(trained_kws):
    kws, test = trained_kws, trained_kws.data.test
    y = labels(test)
    feats, _ = DEFAULT_CACHE.get(test, FEATURES)
    x_py = input_int8(kws.graph, feats)                                           # (N, 49, 10, 1) int8
    x_c = c_features(test.audio, FEATURES, kws.quant.scale, kws.quant.zero_point).reshape(x_py.shape)
    err = np.abs(x_c.astype(np.int16) - x_py.astype(np.int16))
    assert err.max() <= 1, err.max()                                              # the frontend's contract
    acc_py = float((run_graph(kws.graph, x_py).reshape(len(y), -1).argmax(1) == y).mean())
    acc_c = float((run_graph(kws.graph, x_c).reshape(len(y), -1).argmax(1) == y).mean())
    print(f"\n{len(y)} test clips: float {100 * kws.float_test_accuracy:.2f}%, int8 with Python features "
          f"{100 * acc_py:.2f}%, int8 with C frontend {100 * acc_c:.2f}% (features: {np.mean(err == 0):.6f} exact, "
          f"max {err.max()} LSB); model built in {kws.seconds} s, trained now: {kws.trained_now}")
    assert kws.float_test_accuracy >= 0.85                                        # a real model, not noise
    assert acc_py >= kws.float_test_accuracy - 0.02                               # PTQ int8 kept it
    assert acc_c >= acc_py - 0.005
