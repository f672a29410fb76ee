"""The MLPerf Tiny anomaly-detection fully connected autoencoder, in plain PyTorch.

Written from: Colby Banbury et al., "MLPerf Tiny Benchmark", NeurIPS Datasets and Benchmarks 2021,
arXiv:2106.07597 (anomaly detection on ToyADMOS / DCASE 2020 Task 2 machine sounds), whose reference is
the DCASE 2020 Task 2 baseline dense autoencoder (Koizumi et al., "Description and Discussion on DCASE2020
Challenge Task2: Unsupervised Anomalous Sound Detection for Machine Condition Monitoring", 2020,
arXiv:2006.05822): input 640 = 5 frames x 128 log-mel bins, 128*128*128*128*8*128*128*128*128*640.

Classes (constructor `Class(n_classes=..., input_shape=(640,))`, input (B, 640)):
  FCAutoencoder      the student, the reference: hidden width 128, bottleneck 8
  FCAutoencoderWide  the teacher, hidden width 256, bottleneck 8
Both return the reconstruction (B, 640), not logits: they accept n_classes (the pipeline passes it)
and ignore it. The anomaly score is the reconstruction error, computed outside the model.
Imports only torch.
"""
from torch import nn


class FCAutoencoderBase(nn.Module):
    """Dense autoencoder of the MLPerf Tiny anomaly-detection benchmark (arXiv:2106.07597; the DCASE 2020
    Task 2 baseline, arXiv:2006.05822). Base class; use FCAutoencoder (student) or FCAutoencoderWide
    (teacher).

    Topology as implemented (input (B, D) = (B, 640)):
      encoder: 4 x [Linear hidden + BatchNorm1d + ReLU], Linear bottleneck (8) + BatchNorm1d + ReLU
      decoder: 4 x [Linear hidden + BatchNorm1d + ReLU], Linear D (no activation)   -> (B, 640)
    n_classes is accepted and ignored: the output is the reconstruction of the input, (B, D).

    Deviations from the reference: none in the topology. Parameter counts include BatchNorm's weight
    and bias; Keras additionally lists the moving mean and variance as non-trainable parameters.
    """

    def __init__(self, n_classes: int = 0, input_shape: tuple = (640,), hidden: int = 128,
                 bottleneck: int = 8):
        super().__init__()
        del n_classes                                   # not a classifier: output is (B, D)
        (dim,) = (int(v) for v in input_shape)
        widths = [dim] + [hidden] * 4 + [bottleneck] + [hidden] * 4
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, dim)

    def forward(self, x):                               # (B, 640)
        h = self.body(x)                                # (B, hidden) after the 8-wide bottleneck
        return self.out(h)                              # (B, 640) reconstruction


class FCAutoencoder(FCAutoencoderBase):
    """The MLPerf Tiny anomaly-detection autoencoder, the student. Papers: Banbury et al. 2021, "MLPerf
    Tiny Benchmark", arXiv:2106.07597; Koizumi et al. 2020, "Description and Discussion on DCASE2020
    Challenge Task2: Unsupervised Anomalous Sound Detection for Machine Condition Monitoring",
    arXiv:2006.05822 (the baseline autoencoder).

    Topology: 640-128-128-128-128-8-128-128-128-128-640, every hidden Linear followed by BatchNorm1d +
    ReLU, the output Linear plain. Returns the reconstruction (B, 640); n_classes is accepted and
    ignored.
    Deviations: none from the Keras reference.

    At the default input (640,): 267,928 parameters (265,864 dense weights and biases + 2,064 BatchNorm
    weights and biases; Keras' ~270 K adds the 2,064 BatchNorm moving statistics), 264,192 MACs (linear multiply-accumulates, counted with
    forward hooks)."""

    def __init__(self, n_classes: int = 0, input_shape: tuple = (640,)):
        super().__init__(n_classes, input_shape, hidden=128, bottleneck=8)


class FCAutoencoderWide(FCAutoencoderBase):
    """The autoencoder with hidden width 256, the teacher. Papers: Banbury et al. 2021, "MLPerf Tiny
    Benchmark", arXiv:2106.07597; Koizumi et al. 2020, arXiv:2006.05822 (the baseline autoencoder).

    Topology: 640-256-256-256-256-8-256-256-256-256-640 (BatchNorm1d + ReLU after each hidden Linear).
    Returns the reconstruction (B, 640); n_classes is accepted and ignored.
    Deviations: only the hidden width (256 instead of 128).

    At the default input (640,): 731,800 parameters, 724,992 MACs (linear multiply-accumulates, counted
    with forward hooks)."""

    def __init__(self, n_classes: int = 0, input_shape: tuple = (640,)):
        super().__init__(n_classes, input_shape, hidden=256, bottleneck=8)
